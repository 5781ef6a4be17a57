"""The encoder stage: batches of decoded images and captions -> index term vectors.

Runs the model on the chosen device and turns its word weights into ``{word: impact}``
with the model's own ``term_dicts(..., "document")`` (top-k + the project's quantizer).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from model import LexVLA

Terms = dict[str, int]


def resolve_device(name: str) -> torch.device:
    """``auto`` (a GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is available (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    return device


class TermEncoder:
    """Encodes images and captions into document term vectors on one device."""

    def __init__(
        self,
        model: LexVLA,
        device: torch.device,
        caption_batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.caption_batch_size = caption_batch_size
        if threads is not None and device.type == "cpu":
            torch.set_num_threads(threads)

    @property
    def image_size(self) -> int:
        return int(self.model.image.image_size)

    def images(self, images: Sequence[Image.Image]) -> list[Terms]:
        """One batch of RGB images (already at ``image_size``) -> term vectors."""
        if not images:
            return []
        weights = self.model.encode_images(images, batch_size=len(images)).word_weights
        return self.model.term_dicts(weights.float().cpu(), "document")

    def captions(self, texts: Sequence[str]) -> list[Terms]:
        """Captions -> term vectors, encoded shortest first (less padding), returned in order."""
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        weights = self.model.encode_texts(
            [texts[i] for i in order], batch_size=self.caption_batch_size
        ).word_weights
        terms = self.model.term_dicts(weights.float().cpu(), "document")
        result: list[Terms] = [{} for _ in texts]
        for rank, i in enumerate(order):
            result[i] = terms[rank]
        return result
