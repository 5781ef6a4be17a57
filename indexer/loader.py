"""The decode stage: read, hash and decode images in DataLoader worker processes.

Each item becomes a :class:`Loaded`: an image ready for the encoder and a provisional
record (file facts), or a skipped record with the reason. Nothing raised by one file
stops the job.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image
from torch.utils.data import DataLoader, Dataset

from . import lucene
from .decode import ImageSkipped, decode_image, file_digest, set_pixel_limit
from .records import ImageRecord, Item, SkipReason

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Loaded:
    """One decoded item: the image for the encoder (``None`` when skipped) and its record."""

    image: Image.Image | None
    record: ImageRecord


def load_item(item: Item, image_size: int) -> Loaded:
    """Hash and decode one item; any failure becomes a skipped record."""
    if item.skip is not None:
        return Loaded(None, ImageRecord.skipped(item, SkipReason(item.skip), item.detail))
    path = Path(item.path)
    try:
        sha256, size = file_digest(path)
        decoded = decode_image(path, image_size)
    except ImageSkipped as skipped:
        return Loaded(None, ImageRecord.skipped(item, skipped.reason, skipped.detail))
    except OSError as exc:
        return Loaded(None, ImageRecord.skipped(item, SkipReason.UNREADABLE, str(exc)))
    except Exception as exc:  # a decoder bug on one odd file must not stop the job
        detail = f"{type(exc).__name__}: {exc}"
        return Loaded(None, ImageRecord.skipped(item, SkipReason.CORRUPT, detail))
    record = ImageRecord.decoded(item, sha256, size, decoded.width, decoded.height)
    return Loaded(decoded.image, record)


class DecodeDataset(Dataset[Loaded]):
    """Items decoded on access (in whichever worker process asks)."""

    def __init__(self, items: Sequence[Item], image_size: int) -> None:
        self.items = items
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Loaded:
        return load_item(self.items[index], self.image_size)


def _as_list(batch: list[Loaded]) -> list[Loaded]:
    return batch


def _die_with_parent(parent: int | None) -> None:
    """Linux: SIGKILL this worker when its parent (the job, or the fork server) dies.

    After ``kill -9`` of the job, a DataLoader worker can otherwise hang forever
    flushing its result queue to a parent that no longer reads it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux
        return
    if parent is not None and os.getppid() != parent:  # died before prctl took effect
        os._exit(1)


def _init_worker(max_pixels: int | None, parent: int | None, _worker_id: int) -> None:
    _die_with_parent(parent)
    set_pixel_limit(max_pixels)


def load_batches(
    items: Sequence[Item],
    batches: Sequence[list[int]],
    image_size: int,
    workers: int,
    max_pixels: int | None,
) -> Iterator[list[Loaded]]:
    """Decoded batches of ``items`` (index lists), in order, decoded by ``workers`` processes."""
    set_pixel_limit(max_pixels)
    if not batches:
        return
    # Forking a process that runs a JVM is unsafe; start workers fresh then.
    method = "forkserver" if lucene.jvm_started() else "fork"
    context = multiprocessing.get_context(method)
    parent = os.getpid() if method == "fork" else None
    loader = DataLoader(
        DecodeDataset(items, image_size),
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=partial(_init_worker, max_pixels, parent),
        multiprocessing_context=context if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
    )
    yield from loader
