"""Image backbones by name: each returns patch features ``(batch, patches, dim)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..random_init import frozen_random
from .dinov2 import build_dinov2
from .efficientnet_lite import build_efficientnet_lite0, build_efficientnet_lite2

BACKBONES: dict[str, Callable[[str | None, dict[str, Any] | None], nn.Module]] = {
    "efficientnet-lite0": build_efficientnet_lite0,
    "efficientnet-lite2": build_efficientnet_lite2,
    "dinov2": build_dinov2,
}


def build_backbone(name: str, weights: str | None, overrides: dict[str, Any] | None) -> nn.Module:
    """Build a registered backbone in eval mode with frozen parameters."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    net = frozen_random(lambda: BACKBONES[name](weights, overrides))
    net.eval().requires_grad_(False)
    return net
