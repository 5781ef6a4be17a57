"""JPEG thumbnails of indexed images, kept in a small in-memory cache."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from indexer import decode_image


@lru_cache(maxsize=1024)
def thumbnail(path: str, modified_ns: int, size: int) -> bytes:
    """The upright image at ``path`` shrunk to ``size`` on its long side, as JPEG.

    ``modified_ns`` is part of the cache key, so a replaced file gets a new thumbnail.
    """
    image = decode_image(Path(path)).image
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
