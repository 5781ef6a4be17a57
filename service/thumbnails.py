"""JPEG thumbnails of indexed images, kept in a small in-memory cache by content digest."""

from __future__ import annotations

import io

from .image_files import IndexedFile, decode_indexed
from .lru import Lru


class Thumbnails:
    """Thumbnails ``size`` pixels on their long side; the last ``cache_size`` stay."""

    def __init__(self, size: int, cache_size: int = 1024) -> None:
        self.size = size
        self._cache: Lru[str, bytes] = Lru(cache_size)

    def of(self, file: IndexedFile) -> bytes:
        """The upright image shrunk, as JPEG."""
        return self._cache.get(file.sha256, lambda: self._encode(file))

    def _encode(self, file: IndexedFile) -> bytes:
        image = decode_indexed(file)
        image.thumbnail((self.size, self.size))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return out.getvalue()
