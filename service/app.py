"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .engine import EngineBusyError, ModelMismatchError, NotFoundError
from .index_handle import IndexOpenError
from .limits import BodyLimitMiddleware
from .metrics import Metrics, MetricsMiddleware
from .query_edit import UnknownWordError
from .routes import admin, health, images, page, search
from .routes.page import STATIC
from .settings import Settings, get_settings
from .startup import open_engine
from .uploads import UploadError

log = logging.getLogger(__name__)

DESCRIPTION = """\
Cross-modal search over a LexVLA index: images and captions are sparse vectors over
one English vocabulary, and every score is a sum over the words query and document
share, returned with each hit."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and open the index once; stop the worker and close them at exit."""
    engine = await run_in_threadpool(open_engine, app.state.settings, app.state.metrics)
    engine.start()
    app.state.engine = engine
    try:
        yield
    finally:
        await run_in_threadpool(engine.close)


def _problem(status: int, detail: object) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _validation_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query'))}: {e['msg']}"
        for e in errors
    )
    return JSONResponse({"detail": summary, "errors": errors}, status_code=422)


STATUS_OF = {
    UploadError: None,  # carries its own status
    UnknownWordError: 422,
    NotFoundError: 404,
    EngineBusyError: 503,
    IndexOpenError: 503,
    ModelMismatchError: 409,
}


def _known_problem(_: Request, exc: Exception) -> JSONResponse:
    status = exc.status if isinstance(exc, UploadError) else STATUS_OF[type(exc)]
    assert status is not None
    return _problem(status, str(exc))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: :func:`get_settings`, i.e. the environment)."""
    settings = settings or get_settings()
    app = FastAPI(title="LexSearch", description=DESCRIPTION, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    for error in STATUS_OF:
        app.add_exception_handler(error, _known_problem)
    for router in (search.router, images.router, health.router, admin.router, page.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
