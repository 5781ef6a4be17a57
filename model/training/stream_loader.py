"""Training batches streamed from shards: shared among readers, shuffled, decoded, resumable.

*Readers*: each process (rank) runs ``workers`` DataLoader workers (one in-process reader
with ``workers=0``); reader ``r = rank * per_rank + worker`` of ``readers``. In pass ``p``
the shards are permuted (seed, p) and reader ``r`` reads every ``readers``-th of them;
its raw samples go through a shuffle buffer (seed, p, r) that drains at the pass's end,
so no sample repeats within a pass. A reader's stream runs pass after pass; its
*position* is how many raw samples it has handed on. Resuming replays each reader's
raw stream up to its saved position without decoding it, so training continues with
exactly the samples an uninterrupted run would have seen.

Decoding (in the workers): image bytes -> RGB -> mirrored at random (``flip``) ->
resized and normalised for the backbone; one of the sample's captions at random. The
random choices come from (seed, reader, position), so they survive a resume. A sample
that cannot be decoded is skipped and counted by reason, never fatal.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..image_encoder import preprocess
from .stream_sources import IMAGE_EXTENSIONS, DataSourceError, Shard, shard_samples

log = logging.getLogger(__name__)

T = TypeVar("T")


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (numpy's ``SeedSequence``)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def generator(*parts: int) -> torch.Generator:
    """A local generator seeded from ``parts`` (never the global one)."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def reader_shards(
    shards: list[Shard], pass_index: int, reader: int, readers: int, seed: int
) -> list[Shard]:
    """The shards ``reader`` reads in pass ``pass_index``."""
    order = torch.randperm(len(shards), generator=generator(seed, pass_index))
    return [shards[i] for i in order[reader::readers].tolist()]


def shuffled(samples: Iterable[T], size: int, gen: torch.Generator) -> Iterator[T]:
    """A shuffle buffer: once ``size`` samples are held, each arriving one takes the
    place of a random held one, which goes out; the rest leave in random order at the end."""
    buffer: list[T] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        i = int(torch.randint(size, (1,), generator=gen))
        yield buffer[i]
        buffer[i] = sample
    for i in torch.randperm(len(buffer), generator=gen).tolist():
        yield buffer[i]


@dataclass(frozen=True)
class Decoding:
    """How raw samples become model inputs."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool
    seed: int


class BadSample(Exception):
    """A raw sample that cannot become a training pair; ``reason`` is what gets counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Item:
    """One decoded pair and where it sits in its reader's stream."""

    pixels: torch.Tensor  # (3, size, size)
    caption: str
    key: str
    reader: int
    position: int
    skipped: dict[str, int] = field(default_factory=dict)  # skipped since the reader's last item


@dataclass
class Batch:
    """A batch from one reader; ``position`` is the reader's position after it."""

    pixels: torch.Tensor  # (batch, 3, size, size)
    captions: list[str]
    keys: list[str]
    reader: int
    position: int
    skipped: dict[str, int]


def sample_captions(sample: dict[str, Any]) -> list[str]:
    """A raw sample's captions: a manifest's, ``.json``'s ``captions``/``caption``, ``.txt``."""
    try:
        if "captions" in sample:
            captions = list(sample["captions"])
        elif "json" in sample:
            meta = json.loads(sample["json"])
            captions = list(meta.get("captions") or [meta.get("caption")])
        else:
            captions = [sample["txt"].decode("utf-8")] if "txt" in sample else []
    except (ValueError, AttributeError, TypeError) as exc:
        raise BadSample("unreadable caption") from exc
    captions = [c.strip() for c in captions if isinstance(c, str) and c.strip()]
    if not captions:
        raise BadSample("no caption")
    return captions


def sample_image(sample: dict[str, Any]) -> Image.Image:
    """A raw sample's image, upright and RGB."""
    data: bytes | None = next((sample[e] for e in IMAGE_EXTENSIONS if e in sample), None)
    if "path" in sample:
        try:
            data = Path(sample["path"]).read_bytes()
        except OSError as exc:
            raise BadSample("unreadable image file") from exc
    if data is None:
        raise BadSample("no image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadSample("undecodable image") from exc


def decode(sample: dict[str, Any], decoding: Decoding, reader: int, position: int) -> Item:
    """A training pair from a raw sample (raises ``BadSample``)."""
    captions = sample_captions(sample)
    image = sample_image(sample)
    gen = generator(decoding.seed, reader, position)
    caption = captions[int(torch.randint(len(captions), (1,), generator=gen))]
    if decoding.flip and float(torch.rand(1, generator=gen)) < 0.5:
        image = ImageOps.mirror(image)
    pixels = preprocess([image], decoding.image_size, decoding.mean, decoding.std)[0]
    return Item(pixels, caption, str(sample["__key__"]), reader, position)


def collate(items: list[Item]) -> Batch:
    """Stack one reader's items into a batch."""
    skipped: Counter[str] = Counter()
    for item in items:
        skipped.update(item.skipped)
    return Batch(
        torch.stack([item.pixels for item in items]),
        [item.caption for item in items],
        [item.key for item in items],
        items[-1].reader,
        items[-1].position,
        dict(skipped),
    )


class PairStream(IterableDataset):
    """The endless, resumable stream of decoded pairs of one process (``rank``)."""

    def __init__(
        self,
        shards: list[Shard],
        decoding: Decoding,
        rank: int = 0,
        world: int = 1,
        workers: int = 0,
        buffer: int = 1000,
        start: dict[int, int] | None = None,
    ) -> None:
        self.shards, self.decoding, self.rank, self.buffer = shards, decoding, rank, buffer
        self.per_rank = max(1, workers)
        self.readers = world * self.per_rank
        self.start = start or {}
        if len(shards) < self.readers:
            raise DataSourceError(
                f"{len(shards)} shards for {self.readers} readers (processes x workers): "
                "write smaller shards or use fewer workers"
            )

    def reader_stream(
        self, reader: int, on_error: Callable[[str], None]
    ) -> Iterator[dict[str, Any]]:
        """Reader ``reader``'s raw samples, pass after pass."""
        for pass_index in itertools.count():
            mine = reader_shards(self.shards, pass_index, reader, self.readers, self.decoding.seed)
            raw = (s for shard in mine for s in shard_samples(shard, on_error))
            gen = generator(self.decoding.seed, pass_index, reader)
            count = 0
            for sample in shuffled(raw, self.buffer, gen):
                count += 1
                yield sample
            if count == 0:
                raise DataSourceError(f"reader {reader} read no samples from its shards")

    def __iter__(self) -> Iterator[Item]:
        info = get_worker_info()
        reader = self.rank * self.per_rank + (info.id if info is not None else 0)
        start = self.start.get(reader, 0)
        skipped: Counter[str] = Counter()

        def on_error(message: str) -> None:
            skipped["unreadable shard part"] += 1
            log.warning("skipped %s", message)

        for position, sample in enumerate(self.reader_stream(reader, on_error), start=1):
            if position <= start:  # seen before the resume: not decoded, not counted again
                skipped.clear()
                continue
            try:
                item = decode(sample, self.decoding, reader, position)
            except BadSample as bad:
                skipped[bad.reason] += 1
                log.debug("skipped %s: %s", sample.get("__key__"), bad.reason)
                continue
            item.skipped = dict(skipped)
            skipped.clear()
            yield item


def make_loader(stream: PairStream, batch_size: int, workers: int, pin: bool = False) -> DataLoader:
    """Batches of ``batch_size`` pairs, each from one reader (worker).

    The loader's own generator is a fixed local one: its worker seeds are not used (the
    stream seeds itself) and it must not draw from the global generator (dropout's).
    """
    return DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        prefetch_factor=2 if workers else None,
        generator=torch.Generator().manual_seed(0),
    )
