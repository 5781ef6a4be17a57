"""The dense baseline: CLIP-style latent alignment on the same frozen features.

Mean-pooled backbone patch features and the LM's caption features each go through
an MLP into one dense space; trained with the same contrastive loss, it is the
point of comparison for the lexical model (as CLIP is for LexVLA in the paper).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .losses import info_nce
from .optim import make_optimizer
from .splits import SplitFeatures, sample_batches

log = logging.getLogger(__name__)


def _mlp(dim_in: int, width: int, dim_out: int) -> nn.Module:
    return nn.Sequential(
        nn.LayerNorm(dim_in), nn.Linear(dim_in, width), nn.GELU(), nn.Linear(width, dim_out)
    )


class DenseBaseline(nn.Module):
    """Two MLP towers into a ``dim``-dimensional space, compared by cosine."""

    def __init__(self, image_dim: int, text_dim: int, width: int = 1024, dim: int = 512) -> None:
        super().__init__()
        self.image = _mlp(image_dim, width, dim)
        self.text = _mlp(text_dim, width, dim)
        self.log_scale = nn.Parameter(torch.tensor(2.9957))  # exp = 20 = 1 / 0.05

    def forward(self, images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        img = nn.functional.normalize(self.image(images.mean(dim=1)), dim=-1)
        txt = nn.functional.normalize(self.text(captions), dim=-1)
        return img @ txt.T

    @torch.no_grad()
    def encode(
        self, split: SplitFeatures, average_mirror: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense vectors of every image and caption of a split; with ``average_mirror``
        an image's is the mean of its own and its mirror image's unit vectors (the
        test-time averaging a lexical model with ``vision.average_mirror`` gets)."""
        self.eval()

        def unit(images: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.image(images.float().mean(dim=1)), dim=-1)

        images = unit(split.images)
        if average_mirror:
            if split.flipped is None:
                raise ValueError("averaging mirror images needs the split's mirrored features")
            images = (images + unit(split.flipped)) / 2
        return images, self.text(split.captions)


def train_dense_baseline(
    train: SplitFeatures,
    epochs: int = 40,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 1024,
) -> DenseBaseline:
    """Fit the baseline on a split's cached features (about a minute on two cores)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DenseBaseline(train.images.shape[-1], train.captions.shape[-1], width)
    steps = epochs * (len(train.images) // batch_size)
    optimizer, schedule = make_optimizer(model.parameters(), lr, 0.01, steps, steps // 20)
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for images, captions, _ in sample_batches(train, batch_size, generator):
            loss = info_nce(model(images, captions), 1 / model.log_scale.exp().clamp(max=100))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        log.debug("dense baseline epoch %d loss %.3f", epoch, total)
    return model.eval()
