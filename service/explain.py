"""Word-by-word explanation of a score: the dot product of two integer impact vectors."""

from __future__ import annotations

from collections.abc import Mapping

from .schemas import WordMatch


def word_matches(query: Mapping[str, int], document: Mapping[str, int]) -> list[WordMatch]:
    """The words both vectors hold, largest contribution first (ties by word).

    Impacts are integers, so the contributions add up exactly to the Lucene score.
    """
    shared = query.keys() & document.keys()
    matches = [
        WordMatch(
            word=word,
            query_weight=query[word],
            doc_weight=document[word],
            contribution=query[word] * document[word],
        )
        for word in shared
    ]
    matches.sort(key=lambda m: (-m.contribution, m.word))
    return matches


def dot(query: Mapping[str, int], document: Mapping[str, int]) -> int:
    """The exact score Lucene computes for ``document`` against ``query``."""
    return sum(impact * document.get(word, 0) for word, impact in query.items())
