"""The search core without threads: encode queries, search one index version, read rows.

:meth:`Searcher.encode` turns a batch of queries into the term vectors Lucene is asked
(text and images encoded as batches, edits applied, top-k and quantization as the
model does for its index); :meth:`Searcher.lookup` searches one of them in the served
index (this process's, or its search shards') and gets the hits' metadata and stored
vectors. The worker thread calls both; tests can too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from indexer import TwoPhase
from model import LexVLA

from .index_handle import ServedIndex
from .metrics import Metrics
from .query import Query
from .query_edit import apply_edits
from .ranked import RankedDoc


@dataclass(frozen=True)
class SearchResult:
    query_terms: dict[str, int]
    hits: list[RankedDoc]
    version: str


class Searcher:
    """Encodes queries with ``model`` and answers them from an index version."""

    def __init__(
        self,
        model: LexVLA,
        metrics: Metrics,
        boost_factor: float = 2.0,
        plan: TwoPhase | None = None,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.boost_factor = boost_factor
        self.plan = plan  # exact search when None
        self.vocabulary = model.vocab.index

    def weights(self, queries: Sequence[Query]) -> torch.Tensor:
        """Edited float word weights of every query (encoded, or given as ``terms``).
        # (batch, vocab)"""
        weights = torch.zeros(len(queries), len(self.vocabulary))
        texts = [i for i, q in enumerate(queries) if q.image is None and q.text]
        images = [i for i, q in enumerate(queries) if q.image is not None]
        if texts:
            with self.metrics.timed("encode_text"):
                encoded = self.model.encode_queries([queries[i].text or "" for i in texts])
            weights[texts] = encoded.word_weights.float()
        if images:
            pictures = [queries[i].image for i in images]
            with self.metrics.timed("encode_image"):
                encoded = self.model.encode_images([p for p in pictures if p is not None])
            weights[images] = encoded.word_weights.float()
        for row, query in enumerate(queries):
            for word, weight in (query.terms or {}).items():
                weights[row, self.vocabulary[word]] = weight
            if query.edits:
                weights[row] = apply_edits(
                    weights[row], query.edits, self.vocabulary, self.boost_factor
                )
        return weights

    def encode(self, queries: Sequence[Query]) -> list[dict[str, int]]:
        """Each query's ``{word: impact}`` as searched, highest impact first (equal
        impacts by their unquantized weight, not by word)."""
        weights = self.weights(queries)
        index = self.vocabulary
        vectors = []
        for terms, row in zip(self.model.term_dicts(weights, "query"), weights):
            order = sorted(terms, key=lambda w: (-terms[w], -float(row[index[w]])))
            vectors.append({word: terms[word] for word in order})
        return vectors

    def lookup(self, query: Query, terms: dict[str, int], handle: ServedIndex) -> SearchResult:
        """Search ``handle`` for ``terms``: the hits with their rows."""
        hits = handle.search(query.target, terms, query.k, self.metrics, self.plan)
        return SearchResult(terms, hits, handle.version)

    def search(self, queries: Sequence[Query], handle: ServedIndex) -> list[SearchResult]:
        """:meth:`encode` then :meth:`lookup` for every query."""
        return [self.lookup(q, t, handle) for q, t in zip(queries, self.encode(queries))]
