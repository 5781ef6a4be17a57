"""What streaming training fine-tunes besides the adapters: LoRA on the LM (peft) and the
last blocks of the image backbone; and checkpoints that ``LexVLA.from_pretrained`` reads
back (``model.finetuned``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
from safetensors.torch import save_file
from torch import nn

from ..backbones.dinov2 import DinoV2Backbone
from ..backbones.efficientnet_lite import EfficientNetLite
from ..finetuned import BACKBONE, LORA_DIR, LORA_WEIGHTS, PEFT_PREFIX
from ..lexvla import LexVLA


def add_lora(
    lm: nn.Module,
    rank: int,
    alpha: int,
    dropout: float,
    targets: tuple[str, ...],
    generator: torch.Generator,
) -> LoraConfig:
    """Inject LoRA layers into ``lm`` (in place, peft); ``A`` drawn from ``generator``
    (peft's default Kaiming-uniform), ``B`` zero, so the LM starts unchanged."""
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets)
    )
    inject_adapter_in_model(config, lm)
    found = False
    for name, param in lm.named_parameters():
        if ".lora_A." in name:
            nn.init.kaiming_uniform_(param, a=math.sqrt(5), generator=generator)
            found = True
    if not found:
        raise ValueError(f"no LoRA target {list(targets)} in the LM")
    return config


def backbone_tail(backbone: nn.Module, blocks: int) -> list[nn.Module]:
    """The backbone's last ``blocks`` blocks and the layers after them."""
    if isinstance(backbone, EfficientNetLite):
        stack, after = list(backbone._blocks), [backbone._conv_head, backbone._bn1]
    elif isinstance(backbone, DinoV2Backbone):
        stack, after = list(backbone.model.encoder.layer), [backbone.model.layernorm]
    else:
        raise ValueError(f"cannot unfreeze blocks of {type(backbone).__name__}")
    if not 0 < blocks <= len(stack):
        raise ValueError(f"the backbone has {len(stack)} blocks; cannot unfreeze {blocks}")
    return [*stack[-blocks:], *after]


def unfreeze_backbone(model: LexVLA, blocks: int) -> list[str]:
    """Make the backbone's last ``blocks`` blocks trainable; their parameter names.

    Batch-norm statistics stay frozen (the backbone runs in eval mode).
    """
    if blocks == 0:
        return []
    for module in backbone_tail(model.image.backbone, blocks):
        module.requires_grad_(True)
    return [
        f"image.backbone.{name}"
        for name, p in model.image.backbone.named_parameters()
        if p.requires_grad
    ]


def trainable_parameters(model: LexVLA) -> dict[str, nn.Parameter]:
    """Adapters, biases, LoRA and unfrozen backbone parameters, by name (made trainable).

    Other query encoders (``queries.*``: sentence, lookup) keep their weights: the live
    loss scores the LM's caption vectors (the cached recipe trains those encoders).
    """
    adapters = {k for k in model.trainable_state() if not k.startswith("queries.")}
    for name, param in model.named_parameters():
        if name in adapters:
            param.requires_grad_(True)
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def parameter_groups(
    params: dict[str, nn.Parameter], lr: float, finetune_lr: float
) -> list[dict[str, Any]]:
    """Optimizer groups: the adapters and biases at ``lr``; LoRA and backbone parameters
    (pretrained weights, moved gently) at ``finetune_lr``."""
    tuned = {n for n in params if ".lora_" in n or n.startswith("image.backbone.")}
    groups = [
        {"params": [p for n, p in params.items() if n not in tuned], "lr": lr},
        {"params": [p for n, p in params.items() if n in tuned], "lr": finetune_lr},
    ]
    return [group for group in groups if group["params"]]


def save_checkpoint(model: LexVLA, folder: Path, lora: LoraConfig | None, tuned: list[str]) -> None:
    """A checkpoint folder: ``save_pretrained``'s files, the LoRA adapter in peft's format
    and the unfrozen backbone parameters; written beside, then moved into place."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if lora is not None:
        lora.save_pretrained(str(tmp / LORA_DIR))
        state = get_peft_model_state_dict(model.text.lm)
        weights = {PEFT_PREFIX + k: v.detach().float().cpu().contiguous() for k, v in state.items()}
        save_file(weights, str(tmp / LORA_DIR / LORA_WEIGHTS))
    if tuned:
        params = dict(model.named_parameters())
        save_file({k: params[k].detach().cpu().contiguous() for k in tuned}, str(tmp / BACKBONE))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
