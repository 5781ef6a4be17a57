"""Service settings: command-line flags and ``LEXSEARCH_*`` environment variables."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer import TwoPhase

ENV_PREFIX = "LEXSEARCH_"
INDEX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def named_indexes(specs: list[str | Path]) -> dict[str, Path]:
    """``NAME=PATH`` or ``PATH`` specs as ``{name: folder}``, in order; a plain path is
    named after its folder. Raises ValueError for a bad or repeated name."""
    named: dict[str, Path] = {}
    for spec in specs:
        name, _, path = str(spec).partition("=")
        if isinstance(spec, Path) or not path or not INDEX_NAME.fullmatch(name):
            name, path = Path(spec).name, str(spec)
        if not INDEX_NAME.fullmatch(name):
            raise ValueError(
                f"cannot name the index {str(spec)!r} after its folder: give it as NAME=PATH "
                "(letters, digits, '.', '_' and '-')"
            )
        if name in named:
            raise ValueError(f"two indexes are named {name!r}: give one as NAME=PATH")
        named[name] = Path(path)
    if not named:
        raise ValueError("no index given")
    return named


class Settings(BaseSettings):
    """Everything the service can be told; each field is also ``LEXSEARCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    index: Annotated[dict[str, Path], NoDecode] = Field(
        description="an index folder written by `python -m indexer build`, as PATH or NAME=PATH "
        "(a plain PATH is named after its folder); repeat the flag to serve several, the first "
        "is the default (the env var takes one, or a JSON list)"
    )
    model: str | None = Field(
        default=None,
        description="checkpoint folder or config name; default: the model the index was built with",
    )
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on")
    default_k: int = Field(default=10, ge=1, le=1000, description="hits when a query gives no k")
    max_batch: int = Field(
        default=8, ge=1, le=256, description="queries the search worker encodes together"
    )
    max_queue: int = Field(
        default=64,
        ge=1,
        description="requests waiting for the search worker before more are answered 429",
    )
    queue_deadline_s: float = Field(
        default=2.0,
        gt=0,
        description="a request the search worker has not started within this many seconds "
        "is answered 429 with Retry-After (load shedding)",
    )
    boost_factor: float = Field(
        default=2.0,
        gt=0,
        description="a boosted word's weight, as a multiple of the query's highest weight",
    )
    two_phase_lead: int = Field(
        default=0,
        ge=0,
        description="0: exact search; N: search in two phases, a query's N highest-impact words "
        "finding candidates that the whole query then scores exactly (faster on large indexes, "
        "approximate: bench.search measures its recall)",
    )
    two_phase_candidates: int = Field(
        default=200, ge=1, description="the candidates of a two-phase search (at least k)"
    )

    @property
    def search_plan(self) -> TwoPhase | None:
        """How the indexes are searched: exactly (None) or in two phases."""
        if not self.two_phase_lead:
            return None
        return TwoPhase(self.two_phase_lead, self.two_phase_candidates)

    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="largest request body (uploads included)"
    )
    max_image_pixels: int = Field(
        default=50_000_000, ge=1, description="larger images are rejected as decompression bombs"
    )
    max_decodes: int = Field(
        default=2,
        ge=1,
        description="images decoded at once (uploads, thumbnails, heatmaps); each holds its "
        "full-size pixels while it decodes",
    )
    thumbnail_size: int = Field(default=320, ge=16, le=2048, description="thumbnail long side")
    heatmap_cache: int = Field(
        default=16,
        ge=0,
        description="images whose per-patch word weights stay in memory (2 MB each by default)",
    )
    reload_interval_s: float = Field(
        default=2.0, gt=0, description="how often to look for a newly published index version"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="an origin allowed by CORS; repeat the flag (the env var takes a JSON list)",
    )
    image_url_hosts: list[str] = Field(
        default_factory=list,
        description="a host that image-URL queries (`url` on /search, `image_url` on "
        "/knn-service) may fetch from; repeat the flag (the env var takes a JSON list); none: "
        "image URLs are refused. A host resolving to a private, loopback or link-local address "
        "is refused unless that address (or its network, as CIDR) is listed too",
    )
    image_url_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="largest image an image URL may return"
    )
    image_url_timeout_s: float = Field(
        default=5.0, gt=0, description="time limit for fetching an image URL, redirects included"
    )
    admin_api_key: SecretStr | None = Field(
        default=None, description="key for /admin endpoints (X-API-Key); unset: admin disabled"
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="PyTorch intra-op threads (default: PyTorch's choice)"
    )
    log_level: str = Field(default="info", description="debug, info, warning or error")
    ray: str | None = Field(
        default=None,
        description="serve on a Ray cluster (Ray Serve) at this address (HOST:PORT, "
        "ray://HOST:10001, or auto): the API encodes each query once and asks every search "
        "shard of the index (python -m indexer build --search-shards N) in its own processes",
    )
    shard_replicas: int = Field(
        default=1, ge=1, description="with --ray: searcher processes per search shard"
    )
    shard_cpus: float = Field(
        default=1.0, gt=0, description="with --ray: Ray CPUs each shard searcher reserves"
    )
    shard_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="with --ray: a search shard that has not answered within this many "
        "seconds fails the request (503 naming the shard, never a partial answer)",
    )

    @field_validator("index", mode="before")
    @classmethod
    def _named(cls, given: object) -> object:
        if isinstance(given, str) and given.startswith("["):
            given = json.loads(given)
        if isinstance(given, str | Path):
            given = [given]
        if isinstance(given, dict):
            given = [f"{name}={path}" for name, path in given.items()]
        return named_indexes(given) if isinstance(given, list) else given

    @model_validator(mode="after")
    def _one_index_on_ray(self) -> Settings:
        """The shard deployments serve one index."""
        if self.ray is not None and len(self.index) != 1:
            raise ValueError("with --ray the service serves one index: give one --index")
        return self

    @property
    def first_index(self) -> Path:
        """The first (default) index's folder; with ``--ray``, the only one."""
        return next(iter(self.index.values()))

    @field_validator("admin_api_key")
    @classmethod
    def _key_not_blank(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty key would open the admin endpoints to anyone who sends an empty header."""
        if key is not None and not key.get_secret_value().strip():
            raise ValueError("admin_api_key is empty: unset it to disable admin, or set a key")
        return key


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment (``LEXSEARCH_INDEX`` is required); tests override it."""
    return Settings()  # type: ignore[call-arg]
