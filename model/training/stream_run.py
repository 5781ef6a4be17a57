"""The files of a streaming run folder, besides the checkpoint ``last/``.

- ``state.pt``: what resuming needs (step, trainable tensors, optimizer, schedule, every
  reader's data position and skip counts, random states, settings, readers, shards);
- ``history.jsonl``: a line every ``log_every`` steps (loss parts, lr, pairs/s, skips);
- ``keys-rankR.jsonl``: each step's sample keys (``--record-keys``).

A resumed run drops the log lines a killed run wrote after its last saved step.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from .stream_settings import StreamSettings
from .stream_sources import Shard

STATE = "state.pt"
HISTORY = "history.jsonl"


def keys_file(rank: int) -> str:
    return f"keys-rank{rank}.jsonl"


def shard_list(shards: list[Shard]) -> list[tuple[str, int]]:
    """What a state records of its data: each shard's name and sample count."""
    return [(s.name, s.samples) for s in shards]


def write_state(out: Path, state: dict[str, Any]) -> None:
    """``OUT/state.pt``, replaced atomically."""
    tmp = out / f"{STATE}.tmp"
    torch.save(state, tmp)
    tmp.replace(out / STATE)


def read_state(
    out: Path, settings: StreamSettings, world: int, readers: int, shards: list[Shard]
) -> dict[str, Any] | None:
    """The saved state of the run in ``out`` (``None`` if there is none); refuses one
    written with other settings, processes or data readers, or for other data."""
    path = out / STATE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    changed = settings.incompatible(state["settings"])
    if changed:
        raise ValueError(
            f"{path} was written with other settings ({', '.join(changed)}); "
            "rerun with the same ones or use another --out"
        )
    if (state["world"], state["readers"]) != (world, readers):
        raise ValueError(
            f"{path} was written by {state['world']} processes with {state['readers']} data "
            f"readers (processes x workers), this run has {world} with {readers}: "
            "resume with the same ones"
        )
    if state["shards"] != shard_list(shards):
        raise ValueError(f"{path} was written for other data (its shards differ)")
    return state


def append_line(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def keep_steps(path: Path, last_step: int) -> None:
    """Drop the lines of a JSONL log written after ``last_step`` (by a killed run)."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["step"] <= last_step]
        path.write_text("".join(f"{line}\n" for line in kept))


class Meter:
    """Mean loss parts and throughput since the last history line."""

    def __init__(self, step: int) -> None:
        self.since, self.first, self.sums = time.monotonic(), step, Counter[str]()

    def add(self, parts: dict[str, float]) -> None:
        self.sums.update(parts)

    def flush(self, step: int, global_batch: int) -> tuple[dict[str, float], float]:
        """The means and pairs/s since the last flush; starts a new window."""
        now, steps = time.monotonic(), max(1, step - self.first)
        means = {k: v / steps for k, v in self.sums.items()}
        pairs_per_s = steps * global_batch / (now - self.since)
        self.since, self.first, self.sums = now, step, Counter()
        return means, pairs_per_s
