"""The search core without threads: encode queries, search one index version, read rows.

:meth:`Searcher.encode` turns a batch of queries into the term vectors Lucene is asked
(text and images encoded as batches, edits applied, top-k and quantization as the
model does for its index); :meth:`Searcher.lookup` searches one of them and reads the
hits' metadata and stored vectors. The worker thread calls both; tests can too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from indexer import CaptionRow, ImageRow
from model import LexVLA

from .index_handle import IndexHandle
from .metrics import Metrics
from .query import Query, Target
from .query_edit import apply_edits


@dataclass(frozen=True)
class RankedDoc:
    doc_id: str
    score: int
    image: ImageRow
    caption: CaptionRow | None = None

    @property
    def terms(self) -> dict[str, int]:
        """The stored term vector Lucene scored."""
        return self.caption.terms if self.caption is not None else self.image.terms


@dataclass(frozen=True)
class SearchResult:
    query_terms: dict[str, int]
    hits: list[RankedDoc]
    version: str


class Searcher:
    """Encodes queries with ``model`` and answers them from an index version."""

    def __init__(self, model: LexVLA, metrics: Metrics, boost_factor: float = 2.0) -> None:
        self.model = model
        self.metrics = metrics
        self.boost_factor = boost_factor
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

    def lookup(self, query: Query, terms: dict[str, int], handle: IndexHandle) -> SearchResult:
        """Search ``handle`` for ``terms`` and read the hits' rows."""
        with self.metrics.timed("lucene"):
            found = handle.searchers[query.target].search(terms, query.k)
        with self.metrics.timed("metadata"):
            hits = ranked(found, query.target, handle)
        return SearchResult(terms, hits, handle.version)

    def search(self, queries: Sequence[Query], handle: IndexHandle) -> list[SearchResult]:
        """:meth:`encode` then :meth:`lookup` for every query."""
        return [self.lookup(q, t, handle) for q, t in zip(queries, self.encode(queries))]


def ranked(found: list[tuple[str, float]], target: Target, handle: IndexHandle) -> list[RankedDoc]:
    """Lucene's hits with their rows (a hit whose row is gone is left out)."""
    ids = [doc_id for doc_id, _ in found]
    if target is Target.images:
        rows = {row.id: row for row in handle.store.images(ids)}
        return [RankedDoc(i, int(s), rows[i]) for i, s in found if i in rows]
    captions = {row.id: row for row in handle.store.captions(ids)}
    images = {
        row.id: row for row in handle.store.images(sorted({c.image_id for c in captions.values()}))
    }
    return [
        RankedDoc(i, int(s), images[captions[i].image_id], captions[i])
        for i, s in found
        if i in captions and captions[i].image_id in images
    ]
