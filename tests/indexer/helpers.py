"""Independent readers for checking what the indexer wrote."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


def cli(*args: str) -> list[str]:
    """The command line of ``python -m indexer ARGS``."""
    return [sys.executable, "-m", "indexer", *args]


def shard_files(root: Path) -> dict[str, bytes]:
    """Every committed shard file of an index, by path: records and vectors, byte for byte."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "shards").glob("*/[0-9]*/*.jsonl"))
    }


def shard_vectors(root: Path, kind: str) -> dict[str, dict[str, int]]:
    """Every vector line of every committed shard (``images`` or ``captions``)."""
    vectors = {}
    for path in sorted((root / "shards").glob(f"*/[0-9]*/{kind}.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            vectors[row["id"]] = row["vector"]
    return vectors


def brute_force(
    query: dict[str, int], docs: dict[str, dict[str, int]], k: int
) -> list[tuple[str, float]]:
    """Top-k by exact dot product, ties by id (Anserini's order); zero scores left out."""
    scores = {d: sum(w * terms.get(t, 0) for t, w in query.items()) for d, terms in docs.items()}
    ranked = sorted(((d, s) for d, s in scores.items() if s > 0), key=lambda x: (-x[1], x[0]))
    return [(d, float(s)) for d, s in ranked[:k]]


def table(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()
