"""Image decoding in the service: a few at a time, and memory handed back afterwards.

A decode holds the full-size pixels however small the file (a 7000 x 7000 PNG of 150 KB
is 147 MB as RGB), so parallel uploads of large images multiply that: at most
``max_decodes`` run at once and the others wait. Pictures are decoded at a reduced
scale where the format allows (:func:`indexer.decode_image`), and after a large decode
glibc is asked to return its freed memory to the system (its arenas otherwise keep the
high-water mark of every thread that decoded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

from PIL import Image

from indexer import DecodedImage, ImageSkipped, decode_image

from .image_files import IndexedFile
from .metrics import Metrics

LARGE_PIXELS = 4_000_000  # decodes at least this large are followed by a trim


def _malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``, or nothing where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return (lambda: trim(0)) if trim is not None else (lambda: None)


class UndecodableError(ValueError):
    """An indexed file the service's own limits refuse to decode (422)."""


class Decoder:
    """:func:`indexer.decode_image` with at most ``max_decodes`` running at once."""

    def __init__(self, max_decodes: int, metrics: Metrics) -> None:
        self.metrics = metrics
        self._slots = threading.BoundedSemaphore(max_decodes)
        self._lock = threading.Lock()
        self._running = self._peak = 0
        self._trim = _malloc_trim()

    def decode(
        self, data: bytes, size: int | None = None, min_side: int | None = None
    ) -> DecodedImage:
        """``decode_image(data, size, min_side=...)`` once a slot is free (raises as it does)."""
        with self._slots:
            self._count(1)
            try:
                decoded = decode_image(data, size, min_side=min_side)
            finally:
                self._count(-1)
        if decoded.width * decoded.height >= LARGE_PIXELS:
            self._trim()
        return decoded

    def indexed(
        self, file: IndexedFile, size: int | None = None, min_side: int | None = None
    ) -> Image.Image:
        """An indexed file's checked bytes decoded as the indexer decoded them."""
        try:
            return self.decode(file.data, size, min_side).image
        except ImageSkipped as skipped:  # e.g. more pixels than this service's limit
            raise UndecodableError(
                f"image {file.image_id!r} cannot be decoded: {skipped}"
            ) from skipped

    def _count(self, change: int) -> None:
        with self._lock:
            self._running += change
            self._peak = max(self._peak, self._running)
            self.metrics.decodes_running.set(self._running)
            self.metrics.decodes_peak.set(self._peak)
