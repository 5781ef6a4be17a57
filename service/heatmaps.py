"""Per-patch word weights of indexed images (what a heatmap draws), kept in a small cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model import LexVLA

from .decoding import Decoder
from .image_files import read_indexed
from .index_handle import ServedIndex
from .lru import Lru
from .metrics import Metrics


class NotFoundError(LookupError):
    """An unknown image id (404)."""


@dataclass(frozen=True)
class PatchWeights:
    """Per-patch word weights of one indexed image, in float16.  # (patches, vocab)"""

    weights: torch.Tensor
    grid: tuple[int, int]


class Heatmaps:
    """Encodes an indexed image's patches on request; the last ``cache_size`` stay."""

    def __init__(
        self, model: LexVLA, metrics: Metrics, decoder: Decoder, cache_size: int = 16
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.decoder = decoder
        self._cache: Lru[tuple[str, str, str], PatchWeights] = Lru(cache_size)

    def patch_weights(self, image_id: str, handle: ServedIndex) -> PatchWeights:
        key = (str(handle.published.root), handle.version, image_id)
        return self._cache.get(key, lambda: self._encode(image_id, handle))

    def _encode(self, image_id: str, handle: ServedIndex) -> PatchWeights:
        rows = handle.images([image_id])
        if not rows:
            raise NotFoundError(f"no image with id {image_id!r} in the index")
        file = read_indexed(rows[0])
        with self.metrics.timed("encode_patches"):
            picture = self.decoder.indexed(file, int(self.model.image.image_size))
            encoded = self.model.encode_patches([picture])
        return PatchWeights(encoded.patch_word_weights[0].half(), encoded.grid)

    def clear(self) -> None:
        """Forget every cached image (a new index version was swapped in)."""
        self._cache.clear()
