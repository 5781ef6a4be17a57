"""A dense teacher for distillation: image features + MiniLM sentence embeddings.

all-MiniLM-L6-v2 (``model.sentence``) understands captions far better than a 135M
LM's hidden states. A dense model on its embeddings and the same image features is
trained first; the lexical student then also matches the teacher's in-batch match
distributions. The teacher is used in training only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .dense import DenseBaseline, train_dense_baseline
from .splits import SplitFeatures


@dataclass
class Teacher:
    """A trained dense model and the MiniLM embeddings of the training captions."""

    model: DenseBaseline
    captions: torch.Tensor  # (train captions, 384)

    @torch.no_grad()
    def logits(self, images: torch.Tensor, caption_rows: torch.Tensor) -> torch.Tensor:
        """The teacher's scaled image-caption similarities for a batch.  # (B, B)"""
        sims = self.model(images, self.captions[caption_rows])
        return sims * self.model.log_scale.exp()


def train_teacher(train: SplitFeatures, embeddings: torch.Tensor, seed: int = 0) -> Teacher:
    """Fit the dense teacher on the training split's image features and MiniLM embeddings."""
    split = SplitFeatures(train.images, train.flipped, embeddings, train.per)
    return Teacher(train_dense_baseline(split, seed=seed), embeddings)
