"""Frozen-part features computed once and cached for training and evaluation.

Backbone patch features and LM caption features do not change while the adapters
train, so they are computed once per data split and kept on disk in resumable
chunks (a killed run picks up at the first missing chunk).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import ImageOps
from tqdm import tqdm

from ..config import LexVLAConfig
from ..image_encoder import load_image
from ..lexvla import LexVLA
from ..sentence import SentenceEncoder
from ..text_encoder import TextFeatures
from .data import Pair

log = logging.getLogger(__name__)

CHUNK = 1024


def chunked(
    out: Path, total: int, compute: Callable[[int, int], torch.Tensor], desc: str
) -> torch.Tensor:
    """Compute rows ``[start, stop)`` chunk by chunk, saving each chunk; then concatenate."""
    if out.is_file():
        return torch.load(out, weights_only=True)
    parts_dir = out.with_suffix(".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with tqdm(total=total, desc=desc, unit="item") as bar:
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            part = parts_dir / f"{start:08d}.pt"
            if part.is_file():
                tensor = torch.load(part, weights_only=True)
            else:
                tensor = compute(start, stop)
                torch.save(tensor, part.with_suffix(".tmp"))
                part.with_suffix(".tmp").rename(part)
            parts.append(tensor)
            bar.update(stop - start)
    result = torch.cat(parts)
    torch.save(result, out)
    for part in parts_dir.glob("*.pt"):
        part.unlink()
    parts_dir.rmdir()
    return result


def sentence_embeddings(
    encoder: SentenceEncoder, captions: Sequence[str], out: Path, batch_size: int = 128
) -> torch.Tensor:
    """Sentence embeddings ``(captions, dim)`` of every caption, cached at ``out``."""

    def compute(start: int, stop: int) -> torch.Tensor:
        return torch.cat(
            [
                encoder(list(captions[b : min(b + batch_size, stop)])).cpu()
                for b in range(start, stop, batch_size)
            ]
        )

    return chunked(out, len(captions), compute, "sentence embeddings")


def caption_features(
    model: LexVLA, captions: Sequence[str], out: Path, sentences: Path, batch_size: int = 64
) -> TextFeatures:
    """``[end; mean]`` LM features of every caption, cached at ``out``, and their sentence
    embeddings (when the model has a sentence encoder), cached at ``sentences``."""

    def compute(start: int, stop: int) -> torch.Tensor:
        chunk = list(captions[start:stop])
        order = sorted(range(len(chunk)), key=lambda i: len(chunk[i]))  # less padding
        rows = torch.empty(len(chunk), 2 * int(model.codebook.shape[1]))
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            rows[idx] = model.text.lm_features([chunk[i] for i in idx]).stacked().cpu()
        return rows

    stacked = chunked(out, len(captions), compute, "caption features")
    hidden = stacked.shape[1] // 2
    sentence = None
    if model.text.sentence is not None:
        sentence = sentence_embeddings(model.text.sentence, captions, sentences)
    return TextFeatures(end=stacked[:, :hidden], mean=stacked[:, hidden:], sentence=sentence)


def image_features(
    model: LexVLA,
    pairs: Sequence[Pair],
    out: Path,
    flip: bool = False,
    batch_size: int = 32,
    image_size: int | None = None,
) -> torch.Tensor:
    """Backbone patch features ``(images, patches, dim)`` as float16, cached at ``out``."""

    def compute(start: int, stop: int) -> torch.Tensor:
        parts = []
        for b in range(start, stop, batch_size):
            images = [load_image(p.image) for p in pairs[b : min(b + batch_size, stop)]]
            if flip:
                images = [ImageOps.mirror(img) for img in images]
            pixels = model.image.pixels(images, image_size)
            parts.append(model.image.patch_features(pixels).half().cpu())
        return torch.cat(parts)

    return chunked(out, len(pairs), compute, "image features" + (" (flipped)" if flip else ""))


def _name(source: str) -> str:
    return source.replace("/", "_")


def sentences_file(cache: Path, split: str, encoder: str) -> Path:
    """Where a split's caption embeddings by the sentence encoder ``encoder`` are cached."""
    return cache / f"{split}-sentences-{_name(encoder)}.pt"


def feature_paths(cache: Path, split: str, config: LexVLAConfig) -> dict[str, Path]:
    """Where a split's cached features of the frozen parts ``config`` names live: image
    features by backbone and input size, caption features by LM and sentence encoder."""
    vision = f"{_name(config.vision.backbone)}-{config.vision.image_size}"
    return {
        "text": cache / f"{split}-captions-{_name(config.text.lm)}.pt",
        "sentences": sentences_file(cache, split, config.text.sentence_encoder or "none"),
        "image": cache / f"{split}-images-{vision}.pt",
        "image_flip": cache / f"{split}-images-{vision}-flipped.pt",
    }
