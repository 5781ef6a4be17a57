"""``python -m service --ray ADDRESS``: the service on Ray Serve over an index's search shards.

One deployment per search shard (``shard-000``, ...; ``shard_replicas`` replicas each, every
replica its own process with its JVM: :class:`~service.shard_searcher.ShardSearcher`) and
the service's FastAPI app as the ingress deployment (``api``), which encodes each query
once and serves the version it has open from the shards (:mod:`service.shards`): the HTTP
API and the page are the single-process service's.
"""

from __future__ import annotations

import logging
import signal
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING

from fastapi import FastAPI

from indexer import IndexNotFoundError, open_published

from .app import create_app
from .index_handle import IndexOpenError
from .settings import Settings
from .shard_searcher import ShardSearcher
from .shards import open_sharded, shard_name
from .startup import check_model_source

if TYPE_CHECKING:
    from ray.serve import Application
    from ray.serve.handle import DeploymentHandle

log = logging.getLogger(__name__)

APP_NAME = "lexsearch"


class Ingress:
    """The ingress deployment: the service's app, serving the index from the shards."""

    def __init__(self, settings: Settings, *shards: DeploymentHandle) -> None:
        self.settings = settings
        self.shards = shards

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Ray Serve calls this after ``__init__`` and runs the app's lifespan."""
        opener = partial(open_sharded, shards=self.shards, timeout_s=self.settings.shard_timeout_s)
        return create_app(self.settings, opener)


def application(settings: Settings, shards: int) -> Application:
    """The shard deployments and the ingress, bound for ``serve.run``."""
    from ray import serve

    bound = [
        serve.deployment(
            name=shard_name(number),
            num_replicas=settings.shard_replicas,
            ray_actor_options={"num_cpus": settings.shard_cpus},
        )(ShardSearcher).bind(str(settings.first_index), number)
        for number in range(shards)
    ]
    return serve.deployment(name="api")(serve.ingress()(Ingress)).bind(settings, *bound)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_on_ray(settings: Settings) -> None:
    """Deploy the service on the cluster at ``settings.ray`` and serve until interrupted
    (SIGINT or SIGTERM), then remove it from the cluster."""
    import ray
    from ray import serve

    assert settings.ray is not None
    try:
        published = open_published(settings.first_index)
    except IndexNotFoundError as exc:
        raise IndexOpenError(str(exc)) from exc
    check_model_source(settings.model or published.manifest.model.source)
    ray.init(address=settings.ray, logging_level=logging.WARNING)
    # one HTTP address, the head node's, as the single-process service has one
    serve.start(
        proxy_location="HeadOnly", http_options={"host": settings.host, "port": settings.port}
    )
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve.run(
            application(settings, published.shards),
            name=APP_NAME,
            route_prefix="/",
            logging_config={"log_level": settings.log_level.upper()},
        )
        log.info(
            "ready on Ray: %d search shards x %d replicas; search page at http://%s:%d/",
            published.shards,
            settings.shard_replicas,
            settings.host,
            settings.port,
        )
        signal.pause()
    except KeyboardInterrupt:
        log.info("stopping: removing the service from the Ray cluster")
    finally:
        serve.delete(APP_NAME)
