"""Leaving near-duplicate hits out of a ranking (clip-retrieval's ``deduplicate``).

A hit is a duplicate when its stored vector has a cosine of at least ``threshold`` (0.94,
clip-retrieval's) with a higher-ranked hit that was kept. Identical files and identical
captions have identical vectors, so they are always caught.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from .searcher import RankedDoc

THRESHOLD = 0.94


def cosines(vectors: Sequence[dict[str, int]]) -> torch.Tensor:
    """Pairwise cosines of sparse ``{word: impact}`` vectors.  # (n, n)"""
    columns: dict[str, int] = {}
    rows, cols, values = [], [], []
    for row, vector in enumerate(vectors):
        norm = sum(v * v for v in vector.values()) ** 0.5 or 1.0
        for word, impact in vector.items():
            rows.append(row)
            cols.append(columns.setdefault(word, len(columns)))
            values.append(impact / norm)
    shape = (len(vectors), max(len(columns), 1))
    positions = torch.tensor([rows, cols], dtype=torch.int64).reshape(2, -1)
    matrix = torch.sparse_coo_tensor(
        positions, values, shape, dtype=torch.float32, check_invariants=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse.mm(matrix, matrix.t()).to_dense()


def distinct(hits: list[RankedDoc], threshold: float = THRESHOLD) -> list[RankedDoc]:
    """``hits`` in order, without those that nearly duplicate a higher-ranked one."""
    if len(hits) < 2:
        return hits
    similar = cosines([hit.terms for hit in hits]) >= threshold
    kept: list[int] = []
    for i in range(len(hits)):
        if not kept or not bool(similar[i, kept].any()):
            kept.append(i)
    return [hits[i] for i in kept]
