"""Random frozen parts (tests' tiny backbones and LMs) without touching the global RNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

FROZEN_SEED = 0  # a random frozen part is the same network in every run


def frozen_random(build: Callable[[], T]) -> T:
    """``build()`` with its random initialisation drawn from a fixed seed on a forked
    generator, so the global generator (which ``--seed`` sets for the trained adapters)
    is neither reset nor advanced."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FROZEN_SEED)
        return build()
