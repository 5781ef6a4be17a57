"""Image side: backbone patch features -> lexical projector -> per-patch word logits.

The projector is a small adapter into the LM's hidden size followed by the shared
frozen codebook (the LM's output embedding restricted to the vocabulary), so only
the adapter and a per-word bias are learned. Patch logits pool into the image's
word weights (``model.sparse.pool_patches``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

POOLINGS = ("features", "latent", "max")


class MLPAdapter(nn.Module):
    """``LayerNorm -> Linear -> GELU -> Linear``: features (of patches, of a sentence) into
    the LM hidden size, where the codebook reads them."""

    def __init__(self, feature_dim: int, width: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(feature_dim)
        self.up = nn.Linear(feature_dim, width)
        self.down = nn.Linear(width, hidden)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.down(nn.functional.gelu(self.up(self.norm(features))))


def load_image(path: Path) -> Image.Image:
    """Decode an image file upright (EXIF orientation applied) in RGB."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def preprocess(
    images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """RGB images -> normalised ``(batch, 3, size, size)`` floats (whole image, squashed)."""
    arrays = [
        np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        for img in images
    ]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (pixels - m) / s


def smooth_patches(features: torch.Tensor, window: int) -> torch.Tensor:
    """Each patch's features replaced by their mean over a ``window x window``
    neighbourhood of the square patch grid (1: unchanged).  # (batch, patches, dim)

    The adapter is trained on image-wide means; a neighbourhood mean is closer to what it
    saw than a single patch, so per-patch word maps become cleaner (PatchDis).
    """
    if window == 1:
        return features
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the patch window must be an odd number >= 1, not {window}")
    batch, patches, dim = features.shape
    side = round(patches**0.5)
    grid = features.transpose(1, 2).reshape(batch, dim, side, side)
    pooled = nn.functional.avg_pool2d(grid, window, 1, window // 2, count_include_pad=False)
    return pooled.reshape(batch, dim, patches).transpose(1, 2)


class ImageEncoder(nn.Module):
    """Images -> patch features (frozen backbone) -> patch latents (trained adapter)."""

    def __init__(self, backbone: nn.Module, image_size: int, width: int, hidden: int, vocab: int):
        super().__init__()
        self.backbone = backbone
        self.image_size = image_size
        self.mean: tuple[float, ...] = tuple(backbone.mean)  # type: ignore[arg-type]
        self.std: tuple[float, ...] = tuple(backbone.std)  # type: ignore[arg-type]
        self.adapter = MLPAdapter(int(backbone.feature_dim), width, hidden)  # type: ignore[arg-type]
        self.bias = nn.Parameter(torch.zeros(vocab))

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        self.backbone.eval()  # frozen batch-norm statistics
        return self

    def pixels(self, images: Sequence[Image.Image], size: int | None = None) -> torch.Tensor:
        return preprocess(images, size or self.image_size, self.mean, self.std).to(self.bias.device)

    @torch.inference_mode()
    def patch_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Frozen backbone features ``(batch, patches, feature_dim)`` (cacheable)."""
        return self.backbone(pixels.contiguous(memory_format=torch.channels_last)).clone()

    def patch_logits(self, features: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Per-patch vocabulary logits.  # (batch, patches, vocab)"""
        return self.adapter(features) @ codebook.T + self.bias

    def pooled_logits(
        self, features: torch.Tensor, codebook: torch.Tensor, pooling: str
    ) -> torch.Tensor:
        """The image's vocabulary logits from its patches; ``activate`` gives its word
        weights.  # (batch, vocab)

        ``features``: the adapter reads the mean patch feature (cheapest: one adapter
        pass per image); ``latent``: the mean of the patch logits (computed on the
        mean patch latent, as the codebook is linear); ``max``: the paper's max over
        the patches (the same as the max of their activated weights: ``activate`` is
        monotonic).
        """
        if pooling == "features":
            return self.adapter(features.mean(dim=1)) @ codebook.T + self.bias
        if pooling == "latent":
            return self.adapter(features).mean(dim=1) @ codebook.T + self.bias
        if pooling == "max":
            return self.patch_logits(features, codebook).amax(dim=1)
        raise ValueError(f"unknown pooling {pooling!r} (use one of {', '.join(POOLINGS)})")
