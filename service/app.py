"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .errors import add_error_handlers
from .index_handle import Opener, open_index
from .limits import BodyLimitMiddleware
from .methods import MethodsMiddleware
from .metrics import Metrics, MetricsMiddleware
from .routes import admin, clip, clip_front, health, images, page, search
from .routes.page import STATIC
from .security import SecurityHeadersMiddleware
from .settings import Settings, get_settings
from .startup import open_engine
from .thumbnails import Thumbnails

log = logging.getLogger("service")

DESCRIPTION = """\
Cross-modal search over a LexVLA index: images and captions are sparse vectors over
one English vocabulary, and every score is a sum over the words query and document
share, returned with each hit."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and open the index once; stop the worker and close them at exit."""
    engine = await run_in_threadpool(
        open_engine, app.state.settings, app.state.metrics, app.state.opener
    )
    engine.start()
    app.state.engine = engine
    app.state.thumbnails = Thumbnails(app.state.settings.thumbnail_size, engine.decoder)
    settings = app.state.settings
    for versions in engine.indexes:
        manifest = versions.current.published.manifest
        log.info(
            "index %s: %d images, %d captions", versions.name, manifest.images, manifest.captions
        )
    log.info("ready: search page at http://%s:%d/", settings.host, settings.port)
    try:
        yield
    finally:
        await run_in_threadpool(engine.close)


def create_app(settings: Settings | None = None, opener: Opener = open_index) -> FastAPI:
    """The service for ``settings`` (default: :func:`get_settings`, i.e. the environment),
    serving the index ``opener`` opens (in this process by default; the search shards'
    processes on Ray: :mod:`service.cluster`)."""
    settings = settings or get_settings()
    app = FastAPI(title="LexSearch", description=DESCRIPTION, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.opener = opener
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MethodsMiddleware, routes=app.router.routes)  # inside CORS: preflights
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    docs = [url for url in (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url) if url]
    front = clip_front.front_folder()
    fronts = [clip_front.PREFIX] if front else []
    app.add_middleware(SecurityHeadersMiddleware, pages=["/"], docs=docs, fronts=fronts)
    add_error_handlers(app)
    for router in (search.router, clip.router, images.router, health.router, admin.router):
        app.include_router(router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if front:  # clip-retrieval's web page, where its wheel is installed
        app.include_router(clip_front.router)
        app.mount(clip_front.PREFIX, StaticFiles(directory=front, html=True), name="clip-front")
    return app
