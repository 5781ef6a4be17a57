"""Error answers: exceptions to HTTP statuses, one JSON shape (``Problem``), documented."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .decoding import UndecodableError
from .heatmaps import NotFoundError
from .image_files import FileUnavailableError
from .index_registry import UnknownIndexError
from .query_edit import UnknownWordError
from .schemas import Problem
from .shards import ShardUnavailableError
from .uploads import UploadError
from .worker import OverloadedError, WorkerStoppedError

DESCRIPTIONS = {
    400: "The upload is not a usable image",
    401: "Missing or wrong X-API-Key",
    403: "Admin endpoints are disabled, or an image URL this service may not fetch",
    404: "No such index or image, or the image's file is gone",
    409: "The new index was written by another model",
    413: "The request body or image is too large",
    415: "Not JSON or multipart, or the upload (or what an image URL returns) is not an image",
    422: "Invalid parameters (each listed in `errors`), an image the limits refuse, or an "
    "image URL that cannot be fetched in time",
    429: "Too busy to start the request soon: retry after `Retry-After` seconds",
    503: "The search worker is not running, the new index version is unusable, or a search "
    "shard did not answer (the detail names it)",
}

STATUS_OF: dict[type[Exception], int] = {
    UnknownWordError: 422,
    NotFoundError: 404,
    UnknownIndexError: 404,
    FileUnavailableError: 404,
    UndecodableError: 422,
    OverloadedError: 429,
    WorkerStoppedError: 503,
    ShardUnavailableError: 503,
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    return {code: {"model": Problem, "description": DESCRIPTIONS[code]} for code in codes}


def _validation_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    fields = [
        ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")) for e in errors
    ]
    summary = "; ".join(
        f"{field}: {e['msg']}" if field else e["msg"] for field, e in zip(fields, errors)
    )
    return JSONResponse({"detail": summary, "errors": errors}, status_code=422)


def _known_problem(_: Request, exc: Exception) -> JSONResponse:
    status = exc.status if isinstance(exc, UploadError) else STATUS_OF[type(exc)]
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_problem)
    errors: list[type[Exception]] = [UploadError, *STATUS_OF]
    for error in errors:
        app.add_exception_handler(error, _known_problem)
