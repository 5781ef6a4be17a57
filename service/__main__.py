"""``python -m service --index INDEX``: serve an index over HTTP, with the search page at /."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .index_handle import IndexOpenError
from .settings import ENV_PREFIX, Settings
from .startup import StartupError, check_index, check_model_source

EXIT_CONFIG = 2  # a bad setting, or no usable index: nothing was served

# list settings: a flag given once per item
REPEATED = {
    "index": ("--index", "[NAME=]PATH"),
    "cors_origins": ("--cors-origin", "ORIGIN"),
    "image_url_hosts": ("--image-url-host", "HOST"),
}

EPILOG = f"""\
Every flag can also be set as an environment variable {ENV_PREFIX}<NAME> (for example
{ENV_PREFIX}ADMIN_API_KEY, {ENV_PREFIX}CORS_ORIGINS='["https://example.org"]'); flags win.

examples:
  python -m indexer build --images photos/ --out indexes/photos
  python -m service --index indexes/photos --port 8000
  python -m service --index photos=indexes/photos --index archive=indexes/archive
  python -m service --index /shared/index --ray auto --shard-replicas 2 --host 0.0.0.0"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve a LexVLA index: search API, per-word explanations, search page.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, field in Settings.model_fields.items():
        flag = f"--{name.replace('_', '-')}"
        if name in REPEATED:
            flag, metavar = REPEATED[name]
            parser.add_argument(
                flag, dest=name, action="append", metavar=metavar, help=field.description
            )
        else:  # values are strings here; the Settings model converts and checks them
            parser.add_argument(flag, dest=name, metavar=name.upper(), help=field.description)
    return parser


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One setting's validation error, named as its flag and variable (none: the whole)."""
    if not loc:
        return message
    name = str(loc[0])
    return f"--{name.replace('_', '-')} ({ENV_PREFIX}{name.upper()}): {message}"


def settings_from(argv: list[str] | None) -> Settings:
    """Flags over environment variables over defaults."""
    args = build_parser().parse_args(argv)
    given = {name: value for name, value in vars(args).items() if value is not None}
    return Settings(**given)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = settings_from(argv)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        print(f"python -m service: error: {problems}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if settings.ray is not None:  # the shard searchers open the index on their nodes
            from .cluster import serve_on_ray

            serve_on_ray(settings)
            return 0
        sources = [check_index(root) for root in settings.index.values()]
        check_model_source(settings.model or sources[0])
    except (IndexOpenError, StartupError) as exc:
        print(f"python -m service: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        # the pure-Python parser and loop whatever else is installed (Ray Serve brings
        # httptools, which answers an over-long URL with a bare 400 instead of the API's 422)
        http="h11",
        loop="asyncio",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
