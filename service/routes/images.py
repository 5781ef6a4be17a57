"""Indexed images: the original file, a thumbnail and word heatmaps over its patches."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse

from indexer import ImageRow

from ..deps import EngineDep, SettingsDep
from ..engine import SearchEngine
from ..errors import problems
from ..heatmaps import NotFoundError
from ..query_edit import check_words, searchable
from ..schemas import Heatmap
from ..thumbnails import thumbnail

router = APIRouter(tags=["images"])

CACHE_IMMUTABLE = "public, max-age=3600"


def _image(engine: SearchEngine, image_id: str) -> tuple[ImageRow, Path]:
    with engine.lease() as handle:
        rows = handle.store.images([image_id])
    if not rows:
        raise HTTPException(404, f"no image with id {image_id!r} in the index")
    path = Path(rows[0].path)
    if not path.is_file():
        raise HTTPException(404, f"the file of image {image_id!r} is gone ({path})")
    return rows[0], path


@router.get("/images/{image_id:path}", response_class=FileResponse, responses=problems(404))
def image_file(image_id: str, engine: EngineDep) -> FileResponse:
    """The indexed image file as it is on disk."""
    _, path = _image(engine, image_id)
    return FileResponse(path, headers={"Cache-Control": CACHE_IMMUTABLE})


@router.get(
    "/thumbnails/{image_id:path}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **problems(404)},
)
def image_thumbnail(image_id: str, engine: EngineDep, settings: SettingsDep) -> Response:
    """The image shrunk to ``thumbnail_size`` on its long side (JPEG)."""
    _, path = _image(engine, image_id)
    data = thumbnail(str(path), path.stat().st_mtime_ns, settings.thumbnail_size)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": CACHE_IMMUTABLE})


@router.get("/heatmaps/{image_id:path}", response_model=Heatmap, responses=problems(404, 422, 503))
async def image_heatmap(
    image_id: str,
    word: Annotated[str, Query(min_length=1, max_length=64, description="a vocabulary word")],
    engine: EngineDep,
) -> Heatmap:
    """How strongly each patch of the image activates ``word`` (the model's per-patch weights)."""
    word = searchable(word).lower()
    if not word:
        raise HTTPException(422, "word: no word given (only blanks or control characters)")
    check_words([word], engine.vocabulary)
    try:
        patches = await engine.patch_weights(image_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
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
