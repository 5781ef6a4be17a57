"""JPEG thumbnails of indexed images, kept in a small in-memory cache by content digest."""

from __future__ import annotations

import io

from .decoding import Decoder
from .image_files import IndexedFile
from .lru import Lru


class Thumbnails:
    """Thumbnails ``size`` pixels on their long side; the last ``cache_size`` stay."""

    def __init__(self, size: int, decoder: Decoder, cache_size: int = 1024) -> None:
        self.size = size
        self.decoder = decoder
        self._cache: Lru[str, bytes] = Lru(cache_size)

    def of(self, file: IndexedFile) -> bytes:
        """The upright image shrunk, as JPEG."""
        return self._cache.get(file.sha256, lambda: self._encode(file))

    def _encode(self, file: IndexedFile) -> bytes:
        image = self.decoder.indexed(file, min_side=self.size)  # reduced where it can be
        image.thumbnail((self.size, self.size))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return out.getvalue()
