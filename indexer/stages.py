"""The stages of an ingest job, each doing one thing; :mod:`indexer.runner` wires them.

reader (:func:`read_plan`) -> decoder (:func:`indexer.loader.load_batches`) ->
:class:`Deduplicator` -> :class:`ImageEncoding` -> :class:`CaptionEncoding` ->
:class:`ShardWriter`. Each takes and returns plain records and vectors, so a runner can
call them in one process or hand them to workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tqdm import tqdm

from .decode import Loaded
from .records import ImageRecord, Item, SkipReason, caption_id
from .shards import Batch, LiveState, ShardOutput, Vector
from .sources import Source

if TYPE_CHECKING:
    from .encode import TermEncoder

log = logging.getLogger(__name__)


def read_plan(source: Source) -> list[Item]:
    """The source's items in order; a later item with an id seen before is skipped."""
    first: dict[str, str] = {}
    plan = []
    for item in source.items():
        if item.skip is None and item.id in first:
            detail = f"first: {first[item.id]}"
            item = replace(item, skip=SkipReason.DUPLICATE_ID.value, detail=detail)
        elif item.skip is None:
            first[item.id] = item.path
        plan.append(item)
    return plan


class Deduplicator:
    """Skips images whose content the index already holds or this job saw earlier."""

    def __init__(self, state: LiveState) -> None:
        self.state = state  # the writer adds each accepted image to it

    def __call__(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        fresh: dict[str, str] = {}  # sha256 -> image id, for twins within these records
        marked = []
        for record in records:
            sha = record.sha256
            if record.indexed and sha is not None:
                twin = self.state.hashes.get(sha) or fresh.get(sha)
                if twin is not None:
                    detail = "unchanged" if twin == record.id else f"same content as {twin}"
                    reason = SkipReason.DUPLICATE.value
                    record = replace(record, indexed=False, reason=reason, detail=detail)
                else:
                    fresh[sha] = record.id
            marked.append(record)
        return marked


class ImageEncoding:
    """Decoded images -> document vectors; an image with no active word is skipped."""

    def __init__(self, encoder: TermEncoder) -> None:
        self.encoder = encoder
        self.encoded = 0

    def __call__(
        self, loaded: Sequence[Loaded], records: Sequence[ImageRecord]
    ) -> tuple[list[ImageRecord], list[Vector]]:
        """``records`` are ``loaded``'s records after deduplication, in the same order."""
        todo = [i for i, record in enumerate(records) if record.indexed]
        images = [loaded[i].image for i in todo]
        terms = self.encoder.images([image for image in images if image is not None])
        self.encoded += len(todo)
        outcomes, vectors = list(records), []
        for i, vector in zip(todo, terms):
            if vector:
                vectors.append((records[i].id, vector))
            else:
                reason = SkipReason.NO_WORDS.value
                outcomes[i] = replace(
                    records[i], indexed=False, reason=reason, detail="all impacts are 0"
                )
        return outcomes, vectors


class CaptionEncoding:
    """The captions of indexed images -> document vectors (captions without words dropped)."""

    def __init__(self, encoder: TermEncoder, progress: bool = True) -> None:
        self.encoder = encoder
        self.progress = progress
        self.encoded = 0

    def __call__(self, records: Sequence[ImageRecord]) -> list[Vector]:
        ids, texts = [], []
        for record in records:
            if record.indexed:
                for position, text in enumerate(record.captions):
                    ids.append(caption_id(record.id, position))
                    texts.append(text)
        vectors: list[Vector] = []
        step = self.encoder.caption_batch_size * 4
        with tqdm(
            total=len(texts), unit="cap", desc="captions", leave=False, disable=not self.progress
        ) as bar:
            for start in range(0, len(texts), step):
                chunk = texts[start : start + step]
                for doc_id, terms in zip(ids[start : start + step], self.encoder.captions(chunk)):
                    if terms:
                        vectors.append((doc_id, terms))
                bar.update(len(chunk))
        self.encoded += len(texts)
        return vectors


class ShardWriter:
    """Collects one shard's outcomes and vectors and commits them to the batch."""

    def __init__(self, batch: Batch, state: LiveState) -> None:
        self.batch = batch
        self.state = state
        self.output = ShardOutput()

    def add(self, shard: int, records: Sequence[ImageRecord], vectors: Sequence[Vector]) -> None:
        """Outcomes of a chunk of the shard and the vectors of its indexed images."""
        for record in records:
            if record.indexed:
                self.state.add(record, self.batch.origin(shard))
            else:
                log.warning("skipped %s: %s (%s)", record.id, record.reason, record.detail)
        self.output.records.extend(records)
        self.output.images.extend(vectors)

    def commit(self, shard: int, captions: Sequence[Vector]) -> None:
        self.output.captions.extend(captions)
        self.batch.commit(shard, self.output)
        self.output = ShardOutput()
