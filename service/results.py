"""Turning a search result into the API's response: metadata, URLs and explanations."""

from __future__ import annotations

import logging

from .explain import dot, word_matches
from .metrics import Metrics
from .query_edit import QueryEdits
from .ranked import RankedDoc
from .schemas import Hit, HitMetadata, QueryInfo, QueryWord
from .searcher import SearchResult
from .urls import image_url, thumbnail_url

log = logging.getLogger(__name__)


def query_info(kind: str, text: str | None, edits: QueryEdits, terms: dict[str, int]) -> QueryInfo:
    """The query as searched: its words (highest impact first) and the edits applied."""
    boosted = set(edits.boost)
    return QueryInfo(
        kind="image" if kind == "image" else "text",
        text=text,
        words=[QueryWord(word=w, weight=v, boosted=w in boosted) for w, v in terms.items()],
        boost=list(edits.boost),
        drop=list(edits.drop),
    )


def hit(
    rank: int,
    doc: RankedDoc,
    query: dict[str, int],
    explain: bool,
    metrics: Metrics,
    index: str | None = None,
) -> Hit:
    """One hit; with ``explain``, its shared words, whose contributions sum to the score.
    Its URLs name ``index`` (None: the default index)."""
    image = doc.image
    matches = word_matches(query, doc.terms) if explain else None
    if matches is not None and sum(m.contribution for m in matches) != doc.score:
        metrics.explain_mismatches.inc()
        log.warning(
            "hit %s: Lucene score %d but stored vectors give %d",
            doc.doc_id,
            doc.score,
            dot(query, doc.terms),
        )
    return Hit(
        id=doc.doc_id,
        image_id=image.id,
        score=doc.score,
        rank=rank,
        caption=doc.caption.text if doc.caption is not None else None,
        metadata=HitMetadata(
            captions=list(image.captions),
            image_url=image_url(image.id, index),
            thumbnail_url=thumbnail_url(image.id, index),
            width=image.width,
            height=image.height,
            fields=image.metadata,
        ),
        matches=matches,
    )


def hits(
    result: SearchResult, explain: bool, metrics: Metrics, index: str | None = None
) -> list[Hit]:
    return [
        hit(rank, doc, result.query_terms, explain, metrics, index)
        for rank, doc in enumerate(result.hits, start=1)
    ]
