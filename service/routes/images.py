"""Indexed images: the original file, a thumbnail and word heatmaps over its patches.

Files are served only while they are what was indexed (:mod:`service.image_files`), as
the image type Pillow detects in them, whatever their name says.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from ..deps import EngineDep, IndexParam, ThumbnailsDep
from ..engine import SearchEngine
from ..errors import problems
from ..image_files import IndexedFile, media_type, read_indexed
from ..query_edit import check_words, searchable
from ..schemas import Heatmap

router = APIRouter(tags=["images"])

CACHE_IMMUTABLE = "public, max-age=3600"


def _file(engine: SearchEngine, image_id: str, index: str | None) -> IndexedFile:
    with engine.lease(index) as handle:
        rows = handle.images([image_id])
    if not rows:
        raise HTTPException(404, f"no image with id {image_id!r} in the index")
    return read_indexed(rows[0])


@router.get(
    "/images/{image_id:path}",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **problems(404, 422, 503)},
)
def image_file(image_id: str, engine: EngineDep, index: IndexParam = None) -> Response:
    """The indexed image file as it was indexed, typed by its image format."""
    file = _file(engine, image_id, index)
    headers = {"Cache-Control": CACHE_IMMUTABLE}
    return Response(file.data, media_type=media_type(file.data), headers=headers)


@router.get(
    "/thumbnails/{image_id:path}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **problems(404, 422, 503)},
)
def image_thumbnail(
    image_id: str, engine: EngineDep, thumbnails: ThumbnailsDep, index: IndexParam = None
) -> Response:
    """The image shrunk to ``thumbnail_size`` on its long side (JPEG)."""
    data = thumbnails.of(_file(engine, image_id, index))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": CACHE_IMMUTABLE})


@router.get(
    "/heatmaps/{image_id:path}", response_model=Heatmap, responses=problems(404, 422, 429, 503)
)
async def image_heatmap(
    image_id: str,
    word: Annotated[str, Query(min_length=1, max_length=64, description="a vocabulary word")],
    engine: EngineDep,
    index: IndexParam = None,
) -> Heatmap:
    """How strongly each patch of the image activates ``word`` (the model's per-patch weights)."""
    word = searchable(word).lower()
    if not word:
        raise HTTPException(422, "word: no word given (only blanks or control characters)")
    check_words([word], engine.vocabulary)
    patches = await engine.patch_weights(image_id, engine.indexes.get(index).name)
    rows, cols = patches.grid
    column = patches.weights[:, engine.vocabulary[word]].float().reshape(rows, cols)
    return Heatmap(
        image_id=image_id,
        word=word,
        rows=rows,
        cols=cols,
        weights=[[round(float(v), 5) for v in row] for row in column.tolist()],
        max=round(float(patches.weights.max()), 5),
    )
