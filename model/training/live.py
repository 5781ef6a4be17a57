"""The live forward of streaming training and its loss over the global batch.

The backbones run each step (unlike ``model.training.trainer``, which reads cached
features): images through the backbone (with gradients only into unfrozen blocks),
captions through the LM's differentiable path when LoRA tunes it
(``TextEncoder.trainable_lm_features``), else through its cached-prefix inference path.
"""

from __future__ import annotations

import torch
from torch import nn

from ..lexvla import LexVLA
from .losses import info_nce, search_info_nce, sparsity_penalty
from .stream_settings import StreamSettings


class LiveLexVLA(nn.Module):
    """``(pixels, captions) -> (image word weights, caption word weights)``, the module
    that ``DistributedDataParallel`` wraps."""

    def __init__(self, model: LexVLA, tune_lm: bool, tune_backbone: bool) -> None:
        super().__init__()
        self.model = model
        self.tune_lm = tune_lm
        self.tune_backbone = tune_backbone

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Backbone patch features.  # (batch, patches, dim)"""
        with torch.set_grad_enabled(self.tune_backbone and torch.is_grad_enabled()):
            return self.model.image.backbone(pixels.contiguous(memory_format=torch.channels_last))

    def text_features(self, captions: list[str]) -> torch.Tensor:
        """Stacked LM (and sentence) features of the captions.  # (batch, 2 * hidden [+ dim])"""
        text = self.model.text
        if not self.tune_lm:
            return text.features(captions).stacked().clone()  # a normal tensor, not inference
        features = text.trainable_lm_features(captions)
        if text.sentence is not None:
            features.sentence = text.sentence(captions).clone()
        return features.stacked()

    def forward(
        self, pixels: torch.Tensor, captions: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Word weights of the images and captions.  # (batch, vocab) each"""
        image_w = self.model.image_weights(self.image_features(pixels))
        return image_w, self.model.text_weights(self.text_features(captions))


def batch_loss(
    model: LexVLA,
    image_w: torch.Tensor,
    text_w: torch.Tensor,
    settings: StreamSettings,
    reg: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE over a (global) batch's lexical similarities plus the weighted sparsity
    penalty on its activations; ``image_w``/``text_w`` (N, vocab), pair i in row i."""
    if settings.train_top_k:
        loss = search_info_nce(image_w, text_w, model.truncate, settings.temperature)
    else:
        loss = info_nce(image_w @ text_w.T, settings.temperature)
    parts = {"nce": loss.item()}
    if settings.regulariser != "none" and reg > 0:
        sparsity = sparsity_penalty(settings.regulariser, image_w, text_w)
        loss = loss + reg * sparsity
        parts["reg"] = sparsity.item()
    return loss, parts
