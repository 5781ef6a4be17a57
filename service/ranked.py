"""Ranked documents: an index's (or one search shard's) hits with their rows, and the
merge of several shards' rankings into the one a single index gives."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from indexer import CaptionRow, ImageRow, MetadataStore

from .query import Target


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


def ranked(found: list[tuple[str, float]], target: Target, store: MetadataStore) -> list[RankedDoc]:
    """Lucene's hits with their rows (a hit whose row is gone is left out)."""
    ids = [doc_id for doc_id, _ in found]
    if target is Target.images:
        rows = {row.id: row for row in store.images(ids)}
        return [RankedDoc(i, int(s), rows[i]) for i, s in found if i in rows]
    captions = {row.id: row for row in store.captions(ids)}
    images = {row.id: row for row in store.images(sorted({c.image_id for c in captions.values()}))}
    return [
        RankedDoc(i, int(s), images[captions[i].image_id], captions[i])
        for i, s in found
        if i in captions and captions[i].image_id in images
    ]


def merge(rankings: Iterable[Sequence[RankedDoc]], k: int) -> list[RankedDoc]:
    """The best ``k`` of several search shards' top-``k`` rankings, by score and then
    document id: the order one index gives (``indexer.ImpactSearcher``), so the merge of
    disjoint shards is exactly the whole index's top ``k``."""
    every = [doc for ranking in rankings for doc in ranking]
    return sorted(every, key=lambda doc: (-doc.score, doc.doc_id))[:k]
