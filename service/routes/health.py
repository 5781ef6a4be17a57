"""Liveness, readiness, statistics and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import EngineDep, IndexParam
from ..engine import SearchEngine
from ..errors import problems
from ..schemas import Health, Ready, Stats

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
def readyz(request: Request) -> Ready | JSONResponse:
    """The model and indexes are loaded and the search worker runs."""
    engine: SearchEngine | None = getattr(request.app.state, "engine", None)
    if engine is None or not engine.alive:
        return JSONResponse(Ready(status="not ready").model_dump(), status_code=503)
    versions = {index.name: index.current.version for index in engine.indexes}
    return Ready(
        status="ready",
        index_version=versions[engine.indexes.default],
        indexes=versions,
        model=engine.model.config.name,
    )


@router.get("/stats", response_model=Stats, responses=problems(404, 422))
def stats(
    engine: EngineDep,
    index: IndexParam = None,
) -> Stats:
    """Counts, vocabulary size, the model and the manifest of one served index."""
    versions = engine.indexes.get(index)
    manifest = versions.current.published.manifest
    return Stats(
        index=versions.name,
        indexes=engine.indexes.names,
        images=manifest.images,
        captions=manifest.captions,
        vocabulary_size=len(engine.vocabulary),
        model={
            "name": engine.model.config.name,
            "fingerprint": engine.fingerprint,
            **engine.model.config.sparse.__dict__,
        },
        index_version=manifest.version,
        manifest=manifest.to_json(),
        reloads=versions.reloads,
        queued=engine.queued,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency histograms, errors, search stages."""
    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
