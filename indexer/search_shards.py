"""Search shards: a published version split into parts that separate processes search.

Each image, with its captions, lives in the part a stable hash of its id picks
(:func:`shard_of`), so a part holds whole documents and the parts' top hits, merged by
score and then id, are the whole index's top hits. Every part is laid out like an
unsharded version (Lucene indexes of images and captions, metadata) in its own folder.
"""

from __future__ import annotations

import hashlib

from .shards import LiveState


def shard_of(image_id: str, shards: int) -> int:
    """The search shard of an image: the first 8 bytes of SHA-1 of its id, modulo ``shards``
    (the same in every process and on every machine, unlike Python's ``hash``)."""
    digest = hashlib.sha1(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_folder(shard: int) -> str:
    """The folder of search shard ``shard`` inside a version."""
    return f"shard-{shard:03d}"


def split_live(live: LiveState, shards: int) -> list[LiveState]:
    """The live images of each search shard."""
    parts = [LiveState() for _ in range(shards)]
    for image_id, image in live.images.items():
        part = parts[shard_of(image_id, shards)]
        part.images[image_id] = image
        if image.record.sha256:
            part.hashes[image.record.sha256] = image_id
    return parts
