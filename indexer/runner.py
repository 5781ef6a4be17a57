"""The local runner: drives an ingest batch's missing shards through the stages it is
handed, in one process (decoding in worker processes), and times each stage.

A shard's images go through in chunks of ``batch_size``; after its last chunk its
captions are encoded and the shard is committed, so a killed job loses at most the
shard in progress.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .decode import Loaded
from .records import Item
from .stages import CaptionEncoding, Deduplicator, ImageEncoding, ShardWriter

Decode = Callable[[Sequence[Item], Sequence[list[int]]], Iterable[list[Loaded]]]


@dataclass
class Stages:
    """What the runner calls, in order (``captions`` is ``None`` when they are not indexed)."""

    decode: Decode
    dedup: Deduplicator
    images: ImageEncoding
    captions: CaptionEncoding | None
    writer: ShardWriter


def chunks_of(shards: dict[int, range], batch_size: int) -> tuple[list[list[int]], list[int]]:
    """Plan positions in chunks of at most ``batch_size`` within each shard, and the shard
    each chunk belongs to."""
    chunks, owners = [], []
    for shard, positions in shards.items():
        for start in range(positions.start, positions.stop, batch_size):
            chunks.append(list(range(start, min(start + batch_size, positions.stop))))
            owners.append(shard)
    return chunks, owners


def run_local(
    plan: Sequence[Item],
    shards: dict[int, range],
    batch_size: int,
    stages: Stages,
    done: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Encode and commit ``shards`` (shard number -> plan positions); ``done`` items are
    already committed (for the progress bar). Returns seconds per stage."""
    chunks, owners = chunks_of(shards, batch_size)
    last_chunk = {shard: i for i, shard in enumerate(owners)}
    timings: dict[str, float] = defaultdict(float)
    started = time.monotonic()
    with (
        logging_redirect_tqdm(),
        tqdm(total=len(plan), initial=done, unit="img", desc="images", disable=not progress) as bar,
    ):
        waited = time.monotonic()
        for i, loaded in enumerate(stages.decode(plan, chunks)):
            timings["decode_wait"] += time.monotonic() - waited
            shard = owners[i]
            began = time.monotonic()
            records, vectors = stages.images(loaded, stages.dedup([x.record for x in loaded]))
            stages.writer.add(shard, records, vectors)
            timings["encode_images"] += time.monotonic() - began
            bar.update(len(loaded))
            if last_chunk[shard] == i:
                began = time.monotonic()
                captions = stages.captions(stages.writer.output.records) if stages.captions else []
                timings["encode_captions"] += time.monotonic() - began
                stages.writer.commit(shard, captions)
            waited = time.monotonic()
    timings["pipeline"] = time.monotonic() - started
    return {stage: round(seconds, 3) for stage, seconds in timings.items()}
