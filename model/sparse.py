"""Sparse lexical math: activation, top-k and quantization.

Shapes are noted as ``# (batch, vocab)``; every function is pure.
"""

from __future__ import annotations

import torch


def activate(logits: torch.Tensor) -> torch.Tensor:
    """Non-negative word weights: ``log(1 + relu(logits))``, any shape."""
    return torch.log1p(torch.relu(logits))


def top_k(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Keep each row's ``k`` largest weights and zero the rest.  # (batch, vocab)"""
    if k >= weights.shape[-1]:
        return weights
    values, indices = weights.topk(k, dim=-1)
    return torch.zeros_like(weights).scatter_(-1, indices, values)


def sparsify(
    weights: torch.Tensor,
    k: int,
    min_weight: float = 0.0,
    renormalize: bool = True,
    keep: torch.Tensor | None = None,
    limit: int | None = None,
) -> torch.Tensor:
    """What search keeps of a vector: its top ``k`` words of weight >= ``min_weight``, and
    every word ``keep`` marks (a boolean mask, same shape) whatever its rank; at most
    ``limit`` words in all, the marked ones first; L2-normalised again when
    ``renormalize`` (so a score stays a cosine).  # (batch, vocab)"""
    kept = top_k(weights, k)
    if min_weight > 0:
        kept = kept * (kept >= min_weight)
    if keep is not None:
        kept = torch.where(keep, weights, kept)
        if limit is not None and limit < kept.shape[-1]:
            rank = kept + keep * (kept.amax(dim=-1, keepdim=True) + 1)  # marked words first
            chosen = rank.topk(limit, dim=-1).indices
            kept = torch.zeros_like(kept).scatter_(-1, chosen, kept.gather(-1, chosen))
    return torch.nn.functional.normalize(kept, dim=-1) if renormalize else kept


def quantize(weights: torch.Tensor, scale: float) -> torch.Tensor:
    """Integer impacts ``round(weight * scale)``, as the index and queries store them.

    The one quantizer of the project: the indexer, the searcher and the evaluation
    all call it with the scale recorded in the model config and index manifest.
    """
    if (weights < 0).any():
        raise ValueError("lexical weights must be non-negative")
    return torch.round(weights * scale).to(torch.int64)


def dequantize(impacts: torch.Tensor, scale: float) -> torch.Tensor:
    """Approximate weights back from integer impacts."""
    return impacts.to(torch.float32) / scale


def to_term_dict(impacts: torch.Tensor, words: tuple[str, ...]) -> dict[str, int]:
    """One vector's non-zero impacts as ``{word: impact}``, highest first.  # (vocab,)"""
    nonzero = impacts.nonzero().flatten()
    order = nonzero[impacts[nonzero].argsort(descending=True, stable=True)]
    return {words[i]: int(impacts[i]) for i in order.tolist()}


def top_words(weights: torch.Tensor, words: tuple[str, ...], k: int) -> list[tuple[str, float]]:
    """The ``k`` highest-weighted words of one vector, zeros left out.  # (vocab,)"""
    values, indices = weights.topk(min(k, weights.numel()))
    return [(words[i], float(v)) for v, i in zip(values.tolist(), indices.tolist()) if v > 0]
