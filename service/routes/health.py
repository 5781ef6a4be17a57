"""Liveness, readiness, statistics and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import EngineDep
from ..engine import SearchEngine
from ..schemas import Health, Ready, Stats

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
def readyz(request: Request) -> Ready | JSONResponse:
    """The model and index are loaded and the search worker runs."""
    engine: SearchEngine | None = getattr(request.app.state, "engine", None)
    if engine is None or not engine.alive:
        return JSONResponse(Ready(status="not ready").model_dump(), status_code=503)
    version, name = engine.handle.version, engine.model.config.name
    return Ready(status="ready", index_version=version, model=name)


@router.get("/stats", response_model=Stats)
def stats(engine: EngineDep) -> Stats:
    """Counts, vocabulary size, the model and the served index's manifest."""
    manifest = engine.handle.published.manifest
    return Stats(
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
        reloads=engine.reloads,
        queued=engine.queued,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency histograms, errors, search stages."""
    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
