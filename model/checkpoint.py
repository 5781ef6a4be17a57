"""A LexVLA checkpoint folder: what is written and read besides the config.

``adapters.safetensors`` holds what training changes (float16); a randomly initialised
frozen part (tests' tiny LMs and backbones) goes to ``frozen.safetensors`` with its
tokenizer file; the class words and the streaming run's fine-tuned parts have their
own files (``model.class_words``; ``model.finetuned`` reads the latter).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from .class_words import CLASS_WORDS, ClassWords
from .config import CONFIG_DIR, LexVLAConfig
from .finetuned import base_state_dict
from .image_encoder import ImageEncoder
from .text_encoder import TextEncoder
from .vocabulary import Vocabulary


class Checkpointed(Protocol):
    """What a checkpoint is written from and read into (a ``LexVLA``)."""

    config: LexVLAConfig
    vocab: Vocabulary
    text: TextEncoder
    image: ImageEncoder
    class_words: ClassWords | None

    def trainable_state(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(
        self, state_dict: Any, strict: bool = True, assign: bool = False
    ) -> Any: ...


ADAPTERS = "adapters.safetensors"
FROZEN = "frozen.safetensors"


def resolve_file(name: str, folder: Path | None) -> Path:
    """A file named in a config: absolute, in the checkpoint folder, or in model/configs."""
    for base in (folder, CONFIG_DIR):
        if base is not None and (base / name).exists():
            return base / name
    return Path(name)


def tokenizer_path(config: LexVLAConfig, folder: Path | None) -> Path | None:
    """The tokenizer file a config names (a random LM's), or None (the LM's own)."""
    return resolve_file(config.text.tokenizer, folder) if config.text.tokenizer else None


def is_trainable(key: str) -> bool:
    """Whether a state-dict key is an adapter, query encoder or per-word bias."""
    return (
        ".adapter." in key
        or key.startswith("queries.")
        or (key.endswith(".bias") and key.count(".") == 1)
    )


def load_checkpoint(model: Checkpointed, folder: Path) -> None:
    """Load a checkpoint's trained (and random frozen) weights into ``model`` built from
    its config; every trainable weight must be there."""
    state = load_file(str(folder / ADAPTERS))
    if (folder / FROZEN).is_file():
        state.update(load_file(str(folder / FROZEN)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if is_trainable(k)]
    if missing or unexpected:
        raise ValueError(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    if model.config.class_prior > 0:
        if not (folder / CLASS_WORDS).is_file():
            raise FileNotFoundError(f"{folder} sets class_prior but has no {CLASS_WORDS}")
        model.class_words = ClassWords.load(folder / CLASS_WORDS)


def save_checkpoint(model: Checkpointed, folder: Path) -> None:
    """Write ``model`` as a checkpoint folder that :func:`load_checkpoint` reads back."""
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config
    # float16 halves the file; the weights load back into float32 parameters.
    trained = {k: v.half().contiguous() for k, v in model.trainable_state().items()}
    save_file(trained, folder / ADAPTERS)
    model.vocab.save(folder / "vocab.json")
    frozen: dict[str, torch.Tensor] = {}
    if config.text.sentence_encoder == "random":
        assert model.text.sentence is not None
        frozen |= {f"text.sentence.{k}": v for k, v in model.text.sentence.state_dict().items()}
    if config.text.lm == "random":
        frozen |= {f"text.lm.{k}": v for k, v in base_state_dict(model.text.lm).items()}
        assert config.text.tokenizer is not None
        source = resolve_file(config.text.tokenizer, None)
        if source.resolve() != (folder / source.name).resolve():
            shutil.copyfile(source, folder / source.name)
        config = replace(config, text=replace(config.text, tokenizer=source.name))
    if config.vision.weights is None:
        frozen |= {f"image.backbone.{k}": v for k, v in model.image.backbone.state_dict().items()}
    if frozen:
        save_file({k: v.detach().clone() for k, v in frozen.items()}, folder / FROZEN)
    if config.class_prior > 0:
        if model.class_words is None:
            raise ValueError("class_prior is set but the model has no class words")
        model.class_words.save(folder / CLASS_WORDS)
    config.save(folder / "config.json")
