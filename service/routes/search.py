"""``/search``: text or image queries against images or captions, explained word by word.

An image comes as an upload (multipart) or as a URL (``url``) where image URLs are
allowed (:mod:`service.url_fetch`); ``index`` picks one of the served indexes.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ..deps import EngineDep, SettingsDep
from ..engine import SearchEngine
from ..errors import problems
from ..query import Query as EngineQuery
from ..query import Target
from ..query_edit import QueryEdits, parse_query
from ..results import hits, query_info
from ..schemas import MAX_EDIT_WORDS, MAX_K, SearchOptions, SearchResponse, TextSearch
from ..settings import Settings
from ..uploads import decode_upload
from ..url_fetch import UrlPolicy, fetch_image

router = APIRouter(tags=["search"])
Options = TypeVar("Options", bound=SearchOptions)

FORM_FIELDS = ("image", "index", "k", "target", "explain", "boost", "drop")
MAX_FORM_FIELDS = 2 * MAX_EDIT_WORDS + len(FORM_FIELDS)  # boost and drop may repeat

TEXT_SCHEMA = TextSearch.model_json_schema(ref_template="#/components/schemas/{model}")
TEXT_SCHEMA.pop("$defs", None)  # Target is a component already (responses use it)
IMAGE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "the query image"},
        "index": {"type": "string", "maxLength": 64},
        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
        "target": {"type": "string", "enum": [t.value for t in Target]},
        "explain": {"type": "boolean"},
        "boost": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_EDIT_WORDS},
        "drop": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_EDIT_WORDS},
    },
}
POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TEXT_SCHEMA},
            "multipart/form-data": {"schema": IMAGE_FORM_SCHEMA},
        },
    }
}


def _edits(
    engine: SearchEngine, options: SearchOptions, text: str | None
) -> tuple[str | None, QueryEdits]:
    """The text to encode and every edit (typed in the text or given as fields), checked."""
    edits = QueryEdits(tuple(options.boost), tuple(options.drop))
    if text is not None:
        text, typed = parse_query(text)
        edits = typed.merged(edits)
        if not text and not edits.boost:
            raise HTTPException(
                422,
                "the query has no words to search for (nothing but -word edits, "
                "punctuation or control characters)",
            )
    edits.check(engine.vocabulary)
    return text, edits


async def _run(
    engine: SearchEngine,
    settings: Settings,
    options: SearchOptions,
    text: str | None = None,
    upload: bytes | None = None,
    url: str | None = None,
) -> SearchResponse:
    started = time.perf_counter()
    index = engine.indexes.get(options.index).name
    text, edits = _edits(engine, options, text)
    if url is not None:
        upload = await fetch_image(url, UrlPolicy.from_settings(settings))
    image = None
    if upload is not None:
        size = int(engine.model.image.image_size)
        image = await run_in_threadpool(
            decode_upload, upload, size, settings.max_upload_bytes, engine.decoder
        )
    k = options.k or settings.default_k
    query = EngineQuery(index, options.target, k, edits, text=text, image=image)
    result = await engine.search(query)
    return SearchResponse(
        query=query_info("image" if image is not None else "text", text, edits, result.query_terms),
        index=index,
        target=options.target,
        k=k,
        hits=hits(result, options.explain, engine.metrics, engine.indexes.link_name(index)),
        quant_scale=engine.model.config.sparse.quant_scale,
        index_version=result.version,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )


@router.get(
    "/search",
    response_model=SearchResponse,
    responses=problems(400, 403, 404, 413, 415, 422, 429, 503),
)
async def search_get(
    params: Annotated[TextSearch, Query()], engine: EngineDep, settings: SettingsDep
) -> SearchResponse:
    """Search by text (``q``; ``+word`` / ``-word`` in it, or ``boost`` / ``drop``, edit the
    query) or by the image at ``url`` (where the service allows image URLs)."""
    return await _run(engine, settings, params, text=params.q, url=params.url)


def _validated(model: type[Options], data: bytes) -> Options:
    """A JSON document as ``model`` (strictly: no 0 for false), or the API's 422 answer."""
    try:
        return model.model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from exc


def _form_json(form: FormData) -> bytes:
    """Form fields as the JSON they stand for: ``k`` an integer, ``explain`` true or false.

    Anything else stays a string, which strict validation then rejects by name.
    """
    values: dict[str, Any] = {"boost": form.getlist("boost"), "drop": form.getlist("drop")}
    for name in ("index", "k", "target", "explain"):
        if name in form:
            value = form[name]
            if not isinstance(value, str):
                raise HTTPException(422, f"{name}: must be a form field, not a file")
            if name == "k" and value.isascii() and value.isdigit():
                values[name] = int(value)
            elif name == "explain" and value in ("true", "false"):
                values[name] = value == "true"
            else:
                values[name] = value
    if not all(isinstance(w, str) for w in values["boost"] + values["drop"]):
        raise HTTPException(422, "boost and drop must be form fields, not files")
    return json.dumps(values).encode()


@router.post(
    "/search",
    response_model=SearchResponse,
    openapi_extra=POST_BODY,
    responses=problems(400, 403, 404, 413, 415, 422, 429, 503),
)
async def search_post(request: Request, engine: EngineDep, settings: SettingsDep) -> SearchResponse:
    """Search by text or an image URL (JSON body, as ``GET``) or by an image (multipart
    upload, field ``image``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        params = _validated(TextSearch, await request.body())
        return await _run(engine, settings, params, text=params.q, url=params.url)
    if content_type != "multipart/form-data":
        raise HTTPException(
            415, "send a JSON text query (application/json) or an image (multipart/form-data)"
        )
    async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS) as form:
        unknown = sorted(set(form.keys()) - set(FORM_FIELDS))
        if unknown:
            raise HTTPException(422, f"unknown form fields: {', '.join(unknown)}")
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "an image search needs the image as a file field 'image'")
        options = _validated(SearchOptions, _form_json(form))
        data = await upload.read()
    return await _run(engine, settings, options, upload=data)
