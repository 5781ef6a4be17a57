"""ImageNet class words: what the backbone's own classifier sees, as words.

EfficientNet's ImageNet head knows 1,000 classes, among them objects Flickr8k hardly
shows (20 of its 7,000 photos mention a cat), so adapters trained on it never learn
those words. Each class has a lexical vector (its top words, computed by
``model.training.class_prior`` from the trained text side); an image's prior is the
mixture of the class vectors under the classifier's probabilities. The class vectors
ship in the checkpoint as ``class_words.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import CONFIG_DIR

CLASS_NAMES = CONFIG_DIR / "imagenet-classes.txt"  # the 1,000 ImageNet-1k labels, in order
CLASS_WORDS = "class_words.safetensors"


def class_names() -> list[str]:
    """The ImageNet-1k class labels in the classifier's order."""
    return CLASS_NAMES.read_text().splitlines()


@dataclass
class ClassWords:
    """Each class's top words: ``indices`` into the vocabulary and their ``values``."""

    indices: torch.Tensor  # (classes, k) int64
    values: torch.Tensor  # (classes, k) float

    @classmethod
    def from_weights(cls, weights: torch.Tensor, k: int) -> ClassWords:
        """Keep the ``k`` largest words of each class vector, L2-normalised."""
        values, indices = weights.topk(k, dim=-1)
        return cls(indices, torch.nn.functional.normalize(values, dim=-1))

    def mix(self, probs: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """``probs @ class vectors``: the prior over the vocabulary.  # (..., vocab)"""
        flat = probs.reshape(-1, probs.shape[-1])
        contributions = (flat.unsqueeze(-1) * self.values.to(flat)).reshape(len(flat), -1)
        index = self.indices.reshape(1, -1).expand(len(flat), -1).to(flat.device)
        prior = flat.new_zeros(len(flat), vocab_size).scatter_add_(1, index, contributions)
        return prior.reshape(*probs.shape[:-1], vocab_size)

    def save(self, path: Path) -> None:
        save_file({"indices": self.indices.int(), "values": self.values.half()}, str(path))

    @classmethod
    def load(cls, path: Path) -> ClassWords:
        state = load_file(str(path))
        return cls(state["indices"].long(), state["values"].float())
