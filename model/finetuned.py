"""Fine-tuned parts of the otherwise frozen models, as a checkpoint folder stores them.

Streaming training (``model.training.stream``) may fine-tune the text LM with LoRA and
unfreeze the last blocks of the image backbone. A checkpoint then also holds:

- ``lora/``: the LM's LoRA adapter in peft's own format (``adapter_config.json`` and
  ``adapter_model.safetensors``, loadable with ``peft.PeftModel.from_pretrained``);
- ``backbone.safetensors``: the unfrozen backbone parameters (``image.backbone.*``).

At load the LoRA update ``W += (alpha / r) B A`` is merged into the LM's linear layers
(peft is not needed at run time and inference pays nothing for it), and the backbone
parameters replace the pretrained ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

LORA_DIR = "lora"
LORA_CONFIG = "adapter_config.json"
LORA_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # how peft names the wrapped model's modules
BACKBONE = "backbone.safetensors"

# LoRA options that change the update's form; only their plain values can be merged here.
PLAIN_LORA = {
    "peft_type": "LORA",
    "fan_in_fan_out": False,
    "use_dora": False,
    "lora_bias": False,
    "bias": "none",
    "rank_pattern": {},
    "alpha_pattern": {},
    "modules_to_save": None,
}


def lora_scale(config: dict) -> float:
    """peft's scaling of ``B A``: ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA."""
    rank = config["r"]
    return config["lora_alpha"] / (rank**0.5 if config.get("use_rslora") else rank)


def merge_lora(lm: nn.Module, folder: Path) -> None:
    """Merge a saved peft LoRA adapter into ``lm``'s linear layers, in place."""
    config = json.loads((folder / LORA_CONFIG).read_text())
    unsupported = {k: config.get(k) for k, v in PLAIN_LORA.items() if config.get(k, v) != v}
    if unsupported:
        raise ValueError(f"{folder}: LoRA options this loader cannot merge: {unsupported}")
    weights = load_file(str(folder / LORA_WEIGHTS))
    scale = lora_scale(config)
    modules = sorted({key.rsplit(".lora_", 1)[0] for key in weights})
    if not modules:
        raise ValueError(f"{folder / LORA_WEIGHTS} holds no LoRA weights")
    for name in modules:
        if not name.startswith(PEFT_PREFIX):
            raise ValueError(f"{folder}: unexpected LoRA key {name!r}")
        layer = lm.get_submodule(name.removeprefix(PEFT_PREFIX))
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"{folder}: LoRA on {name}, which is not a linear layer")
        down, up = weights[f"{name}.lora_A.weight"], weights[f"{name}.lora_B.weight"]
        with torch.no_grad():
            layer.weight += scale * (up.float() @ down.float()).to(layer.weight)


def base_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state without injected LoRA layers, under the original key names."""
    return {
        key.replace(".base_layer.", "."): value
        for key, value in module.state_dict().items()
        if ".lora_" not in key
    }


def load_finetuned(model: nn.Module, folder: Path) -> str:
    """Apply a checkpoint's LoRA adapter and backbone parameters to a ``LexVLA`` model.

    Returns a digest of those files ("" when the folder has neither), which the model's
    fingerprint includes.
    """
    digest = hashlib.sha256()
    found = False
    if (folder / BACKBONE).is_file():
        state = load_file(str(folder / BACKBONE))
        missing = set(state) - set(model.state_dict())
        if missing or not all(k.startswith("image.backbone.") for k in state):
            raise ValueError(f"{folder / BACKBONE} names parameters the model lacks")
        model.load_state_dict(state, strict=False)
        digest.update((folder / BACKBONE).read_bytes())
        found = True
    if (folder / LORA_DIR).is_dir():
        merge_lora(model.get_submodule("text.lm"), folder / LORA_DIR)
        digest.update((folder / LORA_DIR / LORA_WEIGHTS).read_bytes())
        digest.update((folder / LORA_DIR / LORA_CONFIG).read_bytes())
        found = True
    return digest.hexdigest()[:16] if found else ""
