"""A data split's cached frozen features, and the batches training draws from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..lexvla import LexVLA
from ..query_encoders import padded_word_ids
from .data import load_split
from .features import caption_features, feature_paths, image_features, sentence_embeddings


@dataclass
class SplitFeatures:
    """Cached frozen features of one split; caption ``c`` belongs to image ``c // per``."""

    images: torch.Tensor  # (images, patches, dim) float16
    flipped: torch.Tensor | None  # mirrored images, same shape, or None
    captions: torch.Tensor  # (images * per, 2 * hidden [+ sentence dim])
    per: int
    words: torch.Tensor | None = None  # (images * per, longest) own-word ids, -1 padded
    lm: bool = True  # captions hold the LM features; else only the sentence embeddings


def load_split_features(
    model: LexVLA, data: Path, split: str, cache: Path, flipped: bool = False, lm: bool = True
) -> SplitFeatures:
    """Features of a split, computed on first use and cached under ``cache``: the mirrored
    images too with ``flipped`` or when the model averages mirror images; ``lm=False``
    skips the LM's caption features (query encoders trained against fixed documents read
    only the sentence embeddings)."""
    flipped = flipped or model.config.vision.average_mirror
    pairs = load_split(data, split)
    paths = feature_paths(cache, split, model.config)
    per = len(pairs[0].captions)
    if any(len(p.captions) != per for p in pairs):
        raise ValueError("every image needs the same number of captions")
    images = image_features(model, pairs, paths["image"])
    mirrored = image_features(model, pairs, paths["image_flip"], flip=True) if flipped else None
    texts = [c for p in pairs for c in p.captions]
    if lm:
        captions = caption_features(model, texts, paths["text"], paths["sentences"]).stacked()
    elif model.text.sentence is not None:
        captions = sentence_embeddings(model.text.sentence, texts, paths["sentences"])
    else:
        raise ValueError("without LM features a split needs the model's sentence encoder")
    words = padded_word_ids(texts, model.vocab.index)
    return SplitFeatures(images, mirrored, captions, per, words, lm)


def sample_batches(
    split: SplitFeatures, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch: every image once (mirrored at random), each with a random caption.

    Yields image features ``(B, patches, dim)`` float32, caption features ``(B, 2H)``
    and the captions' row numbers ``(B,)``.
    """
    n = len(split.images)
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - batch_size + 1, batch_size):  # full batches only
        idx = order[start : start + batch_size]
        images = split.images[idx].float()
        if split.flipped is not None:
            mirror = torch.rand(len(idx), generator=generator) < 0.5
            images[mirror] = split.flipped[idx[mirror]].float()
        rows = idx * split.per + torch.randint(split.per, (len(idx),), generator=generator)
        yield images, split.captions[rows], rows


def word_targets(split: SplitFeatures, images: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The distribution of the own words of each image's captions (word counts over all
    of its captions, normalised).  # (batch, vocab)"""
    if split.words is None:
        raise ValueError("the split has no own-word ids")
    rows = images[:, None] * split.per + torch.arange(split.per)
    ids = split.words[rows].reshape(len(images), -1)
    counts = torch.zeros(len(images), vocab_size).scatter_add_(
        1, ids.clamp(min=0), (ids >= 0).float()
    )
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1.0)
