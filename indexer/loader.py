"""The decode stage of the local runner: :func:`indexer.decode.load_item` over a job's
items in DataLoader worker processes, batch by batch, in order."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from functools import partial

from torch.utils.data import DataLoader, Dataset

from . import lucene
from .decode import Loaded, load_item, set_pixel_limit
from .records import Item

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
