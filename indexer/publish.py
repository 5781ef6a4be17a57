"""Building a version from the shard store and publishing it atomically.

A full build stages every live shard as a JsonVectorCollection (hard links, or
filtered copies where documents were removed or replaced) and runs Anserini's
IndexCollection; an incremental one copies the current version (hard links for the
write-once Lucene files) and applies the difference with a Lucene IndexWriter. Both
write the same documents, metadata and manifest; neither encodes anything. A version
of several search shards (:mod:`indexer.search_shards`) is built shard by shard, each
from its own documents, the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from . import lucene
from .layout import (
    CAPTIONS,
    IMAGES,
    MANIFEST,
    METADATA,
    PublishedIndex,
    current_version,
    new_staging,
    open_published,
    publish,
)
from .manifest import FORMAT, IndexManifest, ModelInfo
from .records import split_caption_id
from .search_shards import shard_folder, split_live
from .shards import Batch, LiveState, ShardStore, Vector, vector_line
from .store import MetadataStore, MetadataWriter

log = logging.getLogger(__name__)

KINDS = (IMAGES, CAPTIONS)
LUCENE_WRITE_LOCK = "write.lock"


class PublishError(RuntimeError):
    """A staged version failed its checks and was not published."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _by_origin(live: LiveState) -> dict[str, set[str]]:
    """Live image ids grouped by the shard holding their vectors."""
    groups: dict[str, set[str]] = defaultdict(set)
    for image_id, image in live.images.items():
        groups[image.origin].add(image_id)
    return groups


def _live_vectors(batch: Batch, index: int, kind: str, ids: set[str]) -> tuple[list[Vector], bool]:
    """A shard's vectors that belong to these images, and whether that is all of them."""
    kept, total = [], 0
    for doc_id, terms in batch.vectors(index, kind):
        total += 1
        image_id = doc_id if kind == IMAGES else split_caption_id(doc_id)[0]
        if image_id in ids:
            kept.append((doc_id, terms))
    return kept, len(kept) == total


def _put(
    writer: MetadataWriter, live: LiveState, origin: str, kind: str, vectors: list[Vector]
) -> None:
    for doc_id, terms in vectors:
        if kind == IMAGES:
            writer.put_image(live.images[doc_id].record, origin, terms)
        else:
            image_id, position = split_caption_id(doc_id)
            text = live.images[image_id].record.captions[position]
            writer.put_caption(doc_id, image_id, position, text, terms)


def _stage_collection(
    folder: Path, name: str, source: Path, vectors: list[Vector], whole: bool
) -> None:
    """Put a shard's live vectors in an IndexCollection input folder (a hard link if whole)."""
    target = folder / name
    if whole:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system: write a copy below
    with target.open("w", encoding="utf-8") as f:
        for doc_id, terms in vectors:
            f.write(json.dumps(vector_line(doc_id, terms), ensure_ascii=False) + "\n")


def _full(staging: Path, store: ShardStore, live: LiveState, threads: int) -> dict[str, float]:
    """Every live shard -> collections -> IndexCollection; metadata from the same vectors."""
    started = time.monotonic()
    groups = _by_origin(live)
    inputs = {kind: staging / f".input-{kind}" for kind in KINDS}
    for folder in inputs.values():
        folder.mkdir()
    writer = MetadataWriter(staging / METADATA)
    for batch in store.batches():
        for index in batch.committed():
            origin = batch.origin(index)
            ids = groups.get(origin, set())
            for kind in KINDS:
                vectors, whole = _live_vectors(batch, index, kind, ids)
                _put(writer, live, origin, kind, vectors)
                name = f"{batch.name}-{index:05d}.jsonl"
                _stage_collection(
                    inputs[kind], name, batch.vector_file(index, kind), vectors, whole
                )
    writer.close()
    timings = {"metadata": time.monotonic() - started}
    for kind in KINDS:
        began = time.monotonic()
        lucene.build_index(inputs[kind], staging / kind, threads)
        timings[f"lucene_{kind}"] = time.monotonic() - began
        shutil.rmtree(inputs[kind])
    return timings


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a Lucene index folder (its files are write-once) into ``target``."""
    target.mkdir()
    for path in source.iterdir():
        if path.name != LUCENE_WRITE_LOCK:
            os.link(path, target / path.name)


def _incremental(
    staging: Path, current: PublishedIndex, store: ShardStore, live: LiveState
) -> dict[str, float]:
    """The current version (or search shard) plus the difference to the live state,
    applied in place."""
    started = time.monotonic()
    for kind in KINDS:
        _link_tree(current.files / kind, staging / kind)
    shutil.copyfile(current.metadata, staging / METADATA)
    writer = MetadataWriter(staging / METADATA)
    stored = writer.origins()
    stale = [
        i for i, origin in stored.items() if i not in live.images or live.images[i].origin != origin
    ]
    fresh: dict[str, set[str]] = defaultdict(set)
    for image_id, image in live.images.items():
        if stored.get(image_id) != image.origin:
            fresh[image.origin].add(image_id)
    with (
        lucene.IndexUpdater(staging / IMAGES) as images,
        lucene.IndexUpdater(staging / CAPTIONS) as captions,
    ):
        updaters = {IMAGES: images, CAPTIONS: captions}
        for image_id in stale:
            images.delete(image_id)
            for caption in writer.delete_image(image_id):
                captions.delete(caption)
        for origin, ids in fresh.items():
            batch_name, index = origin.split("/")
            batch = store.batch(batch_name)
            for kind in KINDS:
                vectors, _ = _live_vectors(batch, int(index), kind, ids)
                for doc_id, terms in vectors:
                    updaters[kind].upsert(doc_id, terms)
                _put(writer, live, origin, kind, vectors)
    writer.close()
    log.info(
        "incremental update: %d removed or replaced, %d added",
        len(stale),
        sum(map(len, fresh.values())),
    )
    return {"incremental": time.monotonic() - started}


def publish_version(
    root: Path,
    store: ShardStore,
    model: ModelInfo,
    full: bool = False,
    threads: int = 2,
    keep: int = 2,
    shards: int | None = None,
) -> IndexManifest:
    """Stage a version of the live documents in ``shards`` search shards (default: as the
    current version has them, else 1), check it and make it current.

    Incremental when a compatible version with as many shards is published (unless
    ``full``); the staged version is published only when Lucene and the metadata of
    every shard hold its live documents.
    """
    started = time.monotonic()
    live = store.replay()
    current = open_published(root) if current_version(root) else None
    count = shards or (current.shards if current is not None else 1)
    incremental = (
        not full
        and current is not None
        and current.manifest.format == FORMAT
        and current.manifest.model.fingerprint == model.fingerprint
        and current.shards == count
    )
    staging = new_staging(root)
    try:
        timings: dict[str, float] = defaultdict(float)
        images = captions = 0
        for number, part in enumerate(split_live(live, count)):
            folder = staging.path if count == 1 else staging.path / shard_folder(number)
            folder.mkdir(exist_ok=True)
            if incremental:
                assert current is not None
                stage = _incremental(folder, current.search_shard(number), store, part)
            else:
                stage = _full(folder, store, part, threads)
            for name, seconds in stage.items():
                timings[name] += seconds
            part_images, part_captions = _check(folder, part)
            images, captions = images + part_images, captions + part_captions
        manifest = IndexManifest(
            version=staging.version,
            created=utc_now(),
            model=model,
            images=images,
            captions=captions,
            batches=tuple(b.name for b in store.batches()),
            build={
                "mode": "incremental" if incremental else "full",
                "seconds": round(time.monotonic() - started, 3),
                **{k: round(v, 3) for k, v in timings.items()},
            },
            shards=count,
        )
        manifest.save(staging.path / MANIFEST)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    publish(root, staging, keep)
    log.info(
        "published %s: %d images, %d captions in %d search shards",
        manifest.version,
        images,
        captions,
        count,
    )
    return manifest


def _check(staging: Path, live: LiveState) -> tuple[int, int]:
    """(images, captions) after checking that Lucene and the metadata agree with the shards."""
    with MetadataStore(staging / METADATA) as store:
        images, captions = store.counts()
    lucene_images = lucene.count_docs(staging / IMAGES)
    lucene_captions = lucene.count_docs(staging / CAPTIONS)
    if (lucene_images, lucene_captions) != (images, captions) or images != len(live.images):
        raise PublishError(
            f"staged version disagrees: Lucene holds {lucene_images} images and "
            f"{lucene_captions} captions, metadata {images} and {captions}, "
            f"shards {len(live.images)} images"
        )
    return images, captions
