"""Text-query encoders: how a typed query becomes the vector a search sends.

Caption *documents* are always encoded by the in-context LM (``model.text_encoder``);
a model may have other encoders for *queries* (``LexVLAConfig.query_encoders``) and
names the one searches use (``query_encoder``):

- ``lm``: the caption encoder itself (SmolLM2 forward + MiniLM, ~100 ms on a CPU);
- ``sentence``: the MiniLM sentence embedding through its own adapter into the same
  frozen codebook (no LM forward);
- ``lookup``: inference-free: the query's own vocabulary words, each with a learned
  weight (no model at all);
- ``hybrid``: ``sentence``'s expansion plus ``lookup``'s own words (own modules, trained
  together): what the sentence implies, and always the words the user typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .image_encoder import MLPAdapter

QUERY_ENCODERS = ("lm", "sentence", "lookup", "hybrid")
WORD = re.compile(r"[a-z]+")


def own_words(text: str, index: Mapping[str, int]) -> list[int]:
    """The vocabulary ids of ``text``'s words (lowercase letter runs), in order, once each."""
    ids = (index.get(word) for word in WORD.findall(text.lower()))
    return list(dict.fromkeys(i for i in ids if i is not None))


def padded_word_ids(texts: Sequence[str], index: Mapping[str, int]) -> torch.Tensor:
    """:func:`own_words` of each text as rows padded with -1.  # (batch, longest)"""
    rows = [own_words(text, index) for text in texts]
    ids = torch.full((len(rows), max([1, *map(len, rows)])), -1, dtype=torch.long)
    for row, words in enumerate(rows):
        ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
    return ids


class LookupEncoder(nn.Module):
    """A query's own words, word ``j`` weighted ``softplus(weight[j])``; zero model compute."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, word_ids: torch.Tensor) -> torch.Tensor:
        """Word weights from padded own-word ids (-1: padding).  # (batch, vocab)"""
        valid = word_ids >= 0
        ids = word_ids.clamp(min=0)
        values = F.softplus(self.weight)[ids] * valid
        out = values.new_zeros(len(word_ids), len(self.weight))
        return out.scatter_add(1, ids, values)


class SentenceQueryEncoder(nn.Module):
    """A sentence embedding -> adapter -> the shared codebook: vocabulary logits."""

    def __init__(self, dim: int, width: int, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.adapter = MLPAdapter(dim, width, hidden)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def logits(self, embeddings: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """``(batch, dim)`` embeddings -> ``(batch, vocab)`` logits (in float32 whatever the
        codebook's dtype)."""
        return (self.adapter(embeddings).to(codebook.dtype) @ codebook.T).float() + self.bias


class HybridQueryEncoder(nn.Module):
    """A :class:`SentenceQueryEncoder`'s expansion plus a :class:`LookupEncoder`'s own words."""

    def __init__(self, dim: int, width: int, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.sentence = SentenceQueryEncoder(dim, width, hidden, vocab_size)
        self.lookup = LookupEncoder(vocab_size)


def build_query_encoders(
    names: Sequence[str], vocab_size: int, hidden: int, width: int, sentence_dim: int | None
) -> nn.ModuleDict:
    """The trained query encoders ``names`` besides ``lm`` (which is the text side itself);
    ``sentence`` and ``hybrid`` read a sentence embedding of ``sentence_dim``."""
    encoders = nn.ModuleDict()
    for name in names:
        if name not in QUERY_ENCODERS:
            raise ValueError(f"unknown query encoder {name!r}; known: {QUERY_ENCODERS}")
        if name == "lookup":
            encoders[name] = LookupEncoder(vocab_size)
        elif name in ("sentence", "hybrid"):
            if sentence_dim is None:
                raise ValueError(f"the {name} query encoder needs text.sentence_encoder")
            kind = SentenceQueryEncoder if name == "sentence" else HybridQueryEncoder
            encoders[name] = kind(sentence_dim, width, hidden, vocab_size)
    return encoders
