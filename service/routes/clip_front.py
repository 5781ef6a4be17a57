"""clip-front, clip-retrieval's web page, served from the installed clip-retrieval wheel
at ``/clip-front/`` and pointed at this service (its ``config.json``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from fastapi import APIRouter, Request

from ..deps import EngineDep

PREFIX = "/clip-front"

router = APIRouter(include_in_schema=False)


def front_folder() -> Path | None:
    """The built clip-front in the installed clip-retrieval wheel, if there is one."""
    try:
        folder = Path(str(distribution("clip-retrieval").locate_file("front/build")))
    except PackageNotFoundError:
        return None
    return folder if (folder / "index.html").is_file() else None


@router.get(f"{PREFIX}/config.json")
def config(request: Request, engine: EngineDep) -> dict[str, str]:
    """Where clip-front sends its queries (here), the index it opens with, its URL column."""
    return {
        "defaultBackend": str(request.base_url).rstrip("/"),
        "defaultIndex": engine.indexes.default,
        "urlColumn": "url",
    }
