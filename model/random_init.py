"""Seeded random initialisation that never touches the global generator.

A fresh model's trained adapters start from its own seed (``LexVLA.from_config(...,
seed)``, which ``--seed`` sets), and random frozen parts (tests' tiny backbones and LMs)
from a fixed one, each on a forked generator: the same seed gives the same model in
every process, and building a model neither resets nor advances the global generator.
What a fresh model computes at construction runs on one thread (:func:`one_thread`):
a sum's rounding depends on how many threads split it, and the model's fingerprint
must not depend on the process's thread setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")

FROZEN_SEED = 0  # a random frozen part is the same network in every run


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Random draws inside the block come from ``seed`` on a forked generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def frozen_random(build: Callable[[], T]) -> T:
    """``build()`` with its random initialisation drawn from :data:`FROZEN_SEED`."""
    with seeded(FROZEN_SEED):
        return build()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, so float results are the same in any process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
