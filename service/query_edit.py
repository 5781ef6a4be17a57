"""Query editing: boost or drop words of a query vector before it is searched.

In query text, ``+word`` boosts and ``-word`` drops a word (``a dog on the beach
-dog +sand``); the API's ``boost`` and ``drop`` fields do the same. A boosted word
gets ``boost_factor`` times the query's highest weight (1.0 when the query has no
words, so ``+beach`` alone is a one-word lexical query); a dropped word gets zero.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

EDIT = re.compile(r"(?<!\S)([+-])([A-Za-z]+)(?!\S)")


class UnknownWordError(ValueError):
    """A word (an edit, a heatmap's word) that is not in the model's vocabulary."""


def check_words(words: Iterable[str], vocabulary: Mapping[str, int]) -> None:
    """Raise :class:`UnknownWordError` naming every word outside the vocabulary."""
    unknown = [w for w in _unique(words) if w not in vocabulary]
    if unknown:
        raise UnknownWordError(
            f"not in the model's vocabulary: {', '.join(unknown)} "
            "(words are lowercase whole English words; stop words are not indexed)"
        )


def searchable(text: str) -> str:
    """``text`` with control and format characters (NUL, escapes) as spaces, whitespace
    collapsed; empty when no letter or digit is left (nothing to search for)."""
    spaced = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    words = " ".join(spaced.split())
    return words if any(c.isalnum() for c in words) else ""


@dataclass(frozen=True)
class QueryEdits:
    """Words to boost and words to drop (lowercase; a word in both is dropped)."""

    boost: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.boost or self.drop)

    def merged(self, other: QueryEdits) -> QueryEdits:
        return QueryEdits(_unique(self.boost + other.boost), _unique(self.drop + other.drop))

    def check(self, vocabulary: Mapping[str, int]) -> None:
        """Raise :class:`UnknownWordError` naming every edit word outside the vocabulary."""
        check_words(self.boost + self.drop, vocabulary)


def _unique(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


def parse_query(text: str) -> tuple[str, QueryEdits]:
    """Split query text into the :func:`searchable` text to encode and its ``+word`` /
    ``-word`` edits."""
    boost = [m.group(2).lower() for m in EDIT.finditer(text) if m.group(1) == "+"]
    drop = [m.group(2).lower() for m in EDIT.finditer(text) if m.group(1) == "-"]
    return searchable(EDIT.sub(" ", text)), QueryEdits(_unique(boost), _unique(drop))


def apply_edits(
    weights: torch.Tensor, edits: QueryEdits, vocabulary: Mapping[str, int], factor: float
) -> torch.Tensor:
    """A copy of one query's word weights with the edits applied.  # (vocab,)"""
    edited = weights.clone()
    if edits.boost:
        top = float(edited.max()) if edited.numel() else 0.0
        value = factor * (top if top > 0 else 1.0)
        edited[[vocabulary[w] for w in edits.boost]] = value
    if edits.drop:
        edited[[vocabulary[w] for w in edits.drop]] = 0.0
    return edited
