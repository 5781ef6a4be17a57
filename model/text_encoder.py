"""Text side: in-context lexical prediction with a causal LM.

The caption goes into a prompt with one worked example::

    The focus of "The man is riding a white horse." lies on important words:
    man, riding, white, horse. The focus of "<caption>" lies on important words:

The fixed prefix (up to the caption) runs once; its KV cache is reused for every
batch. The LM's final hidden state at the prompt's end, together with the mean of
the caption tokens' states (and, when the config names one, a sentence embedding of
the caption: ``model.sentence``), goes through a small residual adapter (identity at
start) and the LM's output embedding restricted to the vocabulary (the shared,
frozen codebook), then ``log(1 + relu(.))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from .config import TextConfig
from .sentence import SentenceEncoder


@dataclass
class TextFeatures:
    """What the frozen models say about a batch of captions (cacheable for training)."""

    end: torch.Tensor  # (batch, hidden): final state at the prompt's end
    mean: torch.Tensor  # (batch, hidden): mean final state over the caption's tokens
    sentence: torch.Tensor | None = None  # (batch, dim): sentence embedding, if configured

    def stacked(self) -> torch.Tensor:
        """``[end; mean; sentence]``.  # (batch, 2 * hidden [+ dim])"""
        parts = [self.end, self.mean] + ([] if self.sentence is None else [self.sentence])
        return torch.cat(parts, dim=-1)


class TextAdapter(nn.Module):
    """``end + MLP(LayerNorm([end; mean; sentence]))``; the last layer starts at zero."""

    def __init__(self, hidden: int, width: int, sentence_dim: int = 0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(2 * hidden + sentence_dim)
        self.up = nn.Linear(2 * hidden + sentence_dim, width)
        self.down = nn.Linear(width, hidden)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        end = stacked[:, : self.down.out_features]
        return end + self.down(nn.functional.gelu(self.up(self.norm(stacked))))


def prompt_parts(cfg: TextConfig) -> tuple[str, str]:
    """The text before the caption and the text after it."""
    words = ", ".join(cfg.example_words)
    prefix = f'The focus of "{cfg.example}" lies on important words: {words}. The focus of "'
    return prefix, '" lies on important words:'


class TextEncoder(nn.Module):
    """Captions -> vocabulary logits through a frozen LM and a trained adapter."""

    def __init__(
        self,
        lm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        cfg: TextConfig,
        vocab_size: int,
        adapter_hidden: int,
        sentence: SentenceEncoder | None = None,
    ) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.sentence = sentence
        hidden = int(lm.config.hidden_size)
        self.adapter = TextAdapter(hidden, adapter_hidden, sentence.dim if sentence else 0)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        prefix, tail = prompt_parts(cfg)
        self.prefix_ids: list[int] = tokenizer(prefix)["input_ids"]
        self.tail_ids: list[int] = tokenizer(tail, add_special_tokens=False)["input_ids"]
        self._prefix_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        self.lm.eval()  # the LM stays frozen and deterministic
        if self.sentence is not None:
            self.sentence.eval()
        return self

    def _prefix_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self._prefix_cache is None:
            ids = torch.tensor([self.prefix_ids], device=self.bias.device)
            with torch.inference_mode():
                cache = self.lm(input_ids=ids, use_cache=True).past_key_values
            self._prefix_cache = [(k.clone(), v.clone()) for k, v, *_ in cache]
        return self._prefix_cache

    def _tokenize(self, captions: list[str]) -> tuple[list[list[int]], list[int]]:
        """Suffix token ids (caption + tail) per caption, and each caption's token count."""
        encoded = self.tokenizer(captions, add_special_tokens=False)["input_ids"]
        caption_ids = [ids[: self.cfg.max_caption_tokens] for ids in encoded]
        return [ids + self.tail_ids for ids in caption_ids], [len(ids) for ids in caption_ids]

    @torch.inference_mode()
    def lm_features(self, captions: list[str]) -> TextFeatures:
        """Run the frozen LM on the captions (right-padded after the cached prefix).

        The sentence embedding is left out (``features`` adds it).
        """
        return self._suffix_features(captions, self._prefix_kv())

    def trainable_lm_features(self, captions: list[str]) -> TextFeatures:
        """``lm_features`` with gradients, for fine-tuning the LM (LoRA).

        The prefix runs once per batch, with gradients, instead of from the cache: a
        fine-tuned LM changes the prefix's keys and values too.
        """
        ids = torch.tensor([self.prefix_ids], device=self.bias.device)
        cache = self.lm.model(input_ids=ids, use_cache=True).past_key_values
        return self._suffix_features(captions, [(k, v) for k, v, *_ in cache])

    def reset_prefix_cache(self) -> None:
        """Forget the cached prefix (after the LM's weights changed)."""
        self._prefix_cache = None

    def _suffix_features(
        self, captions: list[str], prefix_kv: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> TextFeatures:
        """The captions' features after a prefix given by its per-layer keys and values
        ``(1, heads, prefix, head_dim)``."""
        device = self.bias.device
        suffixes, caption_lengths = self._tokenize(captions)
        batch, width = len(suffixes), max(len(s) for s in suffixes)
        pad_id = self.tokenizer.pad_token_id or 0
        ids = torch.full((batch, width), pad_id, dtype=torch.long, device=device)
        valid = torch.zeros((batch, width), dtype=torch.long, device=device)
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
            valid[row, : len(suffix)] = 1
        n_prefix = len(self.prefix_ids)
        cache = DynamicCache(
            [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in prefix_kv]
        )
        mask = torch.cat([torch.ones((batch, n_prefix), dtype=torch.long, device=device), valid], 1)
        positions = (n_prefix + torch.arange(width, device=device)).expand(batch, -1)
        states = self.lm.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache
        ).last_hidden_state  # (batch, width, hidden)
        lengths = valid.sum(1)
        end = states[torch.arange(batch, device=device), lengths - 1]
        caption_mask = (
            torch.arange(width, device=device)[None]
            < torch.tensor(caption_lengths, device=device)[:, None]
        )
        counts = caption_mask.sum(1, keepdim=True).clamp(min=1)
        mean = (states * caption_mask[..., None]).sum(1) / counts
        return TextFeatures(end=end.clone(), mean=mean.clone())

    def features(self, captions: list[str]) -> TextFeatures:
        """The LM's features plus the sentence embedding when the config has one."""
        features = self.lm_features(captions)
        if self.sentence is not None:
            features.sentence = self.sentence(captions)
        return features

    def logits(self, stacked: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits from stacked LM features.  # (batch, vocab)"""
        return self.adapter(stacked) @ codebook.T + self.bias
