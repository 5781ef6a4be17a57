"""DINOv2 through transformers' ``Dinov2Model``: its patch tokens are the patch features."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Dinov2Config, Dinov2Model


class DinoV2Backbone(nn.Module):
    """Wraps ``Dinov2Model``; drops the CLS (and register) tokens, keeps the patch grid."""

    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, model: Dinov2Model) -> None:
        super().__init__()
        self.model = model
        self.feature_dim = int(model.config.hidden_size)
        self.skip_tokens = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(batch, 3, H, W)`` -> ``(batch, (H/14) * (W/14), hidden)``."""
        tokens = self.model(pixel_values=pixels).last_hidden_state
        return tokens[:, self.skip_tokens :]


def build_dinov2(weights: str | None, overrides: dict[str, Any] | None) -> nn.Module:
    """A local path or hub name (``facebook/dinov2-base``), or a random ``Dinov2Config``."""
    if weights is None:
        return DinoV2Backbone(Dinov2Model(Dinov2Config(**(overrides or {}))))
    return DinoV2Backbone(Dinov2Model.from_pretrained(weights))
