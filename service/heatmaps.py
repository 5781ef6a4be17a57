"""Per-patch word weights of indexed images (what a heatmap draws), kept in a small cache."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from indexer import decode_image
from model import LexVLA

from .index_handle import IndexHandle
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

    def __init__(self, model: LexVLA, metrics: Metrics, cache_size: int = 16) -> None:
        self.model = model
        self.metrics = metrics
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], PatchWeights] = OrderedDict()

    def patch_weights(self, image_id: str, handle: IndexHandle) -> PatchWeights:
        key = (handle.version, image_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        rows = handle.store.images([image_id])
        if not rows:
            raise NotFoundError(f"no image with id {image_id!r} in the index")
        size = int(self.model.image.image_size)
        with self.metrics.timed("encode_patches"):
            picture = decode_image(Path(rows[0].path), size).image
            encoded = self.model.encode_images([picture], with_patches=True)
        assert encoded.patch_word_weights is not None and encoded.grid is not None
        result = PatchWeights(encoded.patch_word_weights[0].half(), encoded.grid)
        if self.cache_size:
            self._cache[key] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def clear(self) -> None:
        """Forget every cached image (a new index version was swapped in)."""
        self._cache.clear()
