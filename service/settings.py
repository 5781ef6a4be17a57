"""Service settings: command-line flags and ``LEXSEARCH_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LEXSEARCH_"


class Settings(BaseSettings):
    """Everything the service can be told; each field is also ``LEXSEARCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    index: Path = Field(description="index folder written by `python -m indexer build`")
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
