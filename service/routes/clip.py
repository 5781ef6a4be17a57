"""clip-retrieval's back-end endpoints, so its client and front end work unchanged:
``GET /indices-list``, ``POST /knn-service``, ``POST /metadata``
(:mod:`service.clip_protocol` says what is honoured and what differs)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from ..clip_protocol import (
    KnnRequest,
    KnnResult,
    MetadataItem,
    MetadataRequest,
    ignored_fields,
    knn_results,
    metadata,
)
from ..dedup import distinct
from ..deps import EngineDep, SettingsDep
from ..engine import SearchEngine
from ..errors import problems
from ..index_handle import IndexHandle
from ..query import Query, Target
from ..query_edit import check_words, searchable
from ..ranked import RankedDoc, ranked
from ..settings import Settings
from ..uploads import decode_upload
from ..url_fetch import UrlPolicy, fetch_image

router = APIRouter(tags=["clip-retrieval"])
Body = TypeVar("Body", bound=BaseModel)


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _body(request: Request, model: type[Body]) -> Body:
    """The body as ``model``, read as JSON whatever its content type (clip-front sends
    ``text/plain``, ClipClient none), or the API's 422 answer."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from exc


async def _image(knn: KnnRequest, settings: Settings, size: int, engine: SearchEngine) -> Any:
    if knn.image is not None:
        try:
            data = base64.b64decode(knn.image, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(
                422, "image: not base64 (send the image file base64-encoded)"
            ) from exc
    else:
        assert knn.image_url is not None
        data = await fetch_image(knn.image_url, UrlPolicy.from_settings(settings))
    return await run_in_threadpool(
        decode_upload, data, size, settings.max_upload_bytes, engine.decoder
    )


async def _query(knn: KnnRequest, index: str, engine: SearchEngine, settings: Settings) -> Query:
    """The search ``knn`` asks for: its text, else image, image URL or lexical vector."""
    text = searchable(knn.text or "")
    if text:
        return Query(index, knn.target, knn.k, text=text)
    if knn.image is not None or knn.image_url is not None:
        size = int(engine.model.image.image_size)
        image = await _image(knn, settings, size, engine)
        return Query(index, knn.target, knn.k, image=image)
    if knn.embedding_input is not None:
        terms = {word.lower(): weight for word, weight in knn.embedding_input.items()}
        check_words(terms, engine.vocabulary)
        return Query(index, knn.target, knn.k, terms=terms)
    raise HTTPException(422, "give one of text, image, image_url or embedding_input")


@router.get("/indices-list", response_model=list[str])
def indices_list(engine: EngineDep) -> list[str]:
    """The names of the indexes served, the default first (``indice_name`` takes one)."""
    return engine.indexes.names


@router.post(
    "/knn-service",
    response_model=list[KnnResult],
    openapi_extra=_json_body(KnnRequest),
    responses=problems(400, 403, 404, 413, 415, 422, 429, 503),
)
async def knn_service(request: Request, engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    """Search as clip-retrieval's back end does: by text, a base64 image, an image URL or a
    lexical vector, for images (``modality: image``) or captions (``text``). Results carry
    ``score`` and ``matches`` besides clip-retrieval's fields; ignored fields that were set
    are named in the ``X-Ignored-Fields`` header."""
    knn = await _body(request, KnnRequest)
    index = engine.indexes.get(knn.indice_name).name
    result = await engine.search(await _query(knn, index, engine, settings))
    hits = await run_in_threadpool(distinct, result.hits) if knn.deduplicate else result.hits
    results = knn_results(
        hits,
        result.query_terms,
        knn.num_images,
        engine.model.config.sparse.quant_scale,
        str(request.base_url).rstrip("/"),
        engine.indexes.link_name(index),
    )
    ignored = ignored_fields(knn)
    headers = {"X-Ignored-Fields": ", ".join(ignored)} if ignored else None
    return JSONResponse(results, headers=headers)


@router.post(
    "/metadata",
    response_model=list[MetadataItem],
    openapi_extra=_json_body(MetadataRequest),
    responses=problems(404, 413, 422),
)
async def metadata_service(request: Request, engine: EngineDep) -> list[MetadataItem]:
    """Metadata of result ids (images or captions) in their order; unknown ids are left out."""
    asked = await _body(request, MetadataRequest)
    index = engine.indexes.get(asked.indice_name).name
    docs = await run_in_threadpool(_documents, engine, index, [str(i) for i in asked.ids])
    base, link = str(request.base_url).rstrip("/"), engine.indexes.link_name(index)
    found = {doc.doc_id: metadata(doc.image, doc.caption, base, link) for doc in docs}
    return [MetadataItem(id=i, metadata=found[str(i)]) for i in asked.ids if str(i) in found]


def _documents(engine: SearchEngine, index: str, ids: list[str]) -> list[RankedDoc]:
    """The rows of ``ids``, each an image id or a caption id."""
    with engine.lease(index) as handle:
        if not isinstance(handle, IndexHandle):
            raise HTTPException(501, "/metadata is not served for an index on search shards yet")
        store = handle.store
        docs = ranked([(i, 0.0) for i in ids], Target.images, store)
        images = {doc.doc_id for doc in docs}
        return docs + ranked([(i, 0.0) for i in ids if i not in images], Target.captions, store)
