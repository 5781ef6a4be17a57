"""Patch-level discovery (PatchDis) on real photo mosaics (``python -m model.training patchdis``).

Four dev photos whose captions name four different objects are tiled into a 2x2
mosaic; the ground-truth region of each object word is its photo's quadrant. The
mosaic is encoded at twice the training resolution (a 14x14 patch grid for
EfficientNet-Lite0), each patch (the mean of its ``--window`` neighbourhood) is
assigned to the candidate word it activates most, and the per-word IoU over all
mosaics gives mIoU, next to a random assignment. Two rules are reported: the
paper's (highest weight) and a centred one (highest weight above the word's mean
over the mosaic's patches, which cancels each word's image-wide level, e.g. a
scene word like ``sky`` that is high everywhere). A few mosaics are saved as PNG
with their centred word maps.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ..image_encoder import load_image
from ..lexvla import LexVLA
from .data import Pair

log = logging.getLogger(__name__)

# Object words that Flickr8k captions use often and that name a visible region.
OBJECT_WORDS = (
    "dog",
    "man",
    "woman",
    "boy",
    "girl",
    "bike",
    "ball",
    "water",
    "snow",
    "grass",
    "car",
    "horse",
    "beach",
    "rock",
    "tree",
    "street",
    "pool",
    "building",
    "sand",
    "wave",
)
COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48))


@dataclass(frozen=True)
class Mosaic:
    """Four photos (top-left, top-right, bottom-left, bottom-right) and their words."""

    photos: tuple[Path, ...]
    words: tuple[str, ...]


def caption_label(pair: Pair, min_mentions: int = 3) -> str | None:
    """The object word most of the photo's captions name, if one clearly dominates."""
    counts = {w: sum(w in c.lower().split() for c in pair.captions) for w in OBJECT_WORDS}
    best = max(counts, key=lambda w: counts[w])
    return best if counts[best] >= min_mentions else None


def build_mosaics(pairs: list[Pair], count: int, seed: int) -> list[Mosaic]:
    """Random mosaics of four photos with four different labels, none of whose captions
    mention another photo's label."""
    labelled = [(p, label) for p in pairs if (label := caption_label(p))]
    mentions = {
        p.image: {w for w in OBJECT_WORDS if any(w in c.lower().split() for c in p.captions)}
        for p, _ in labelled
    }
    rng = random.Random(seed)
    mosaics: list[Mosaic] = []
    for _ in range(count * 50):
        if len(mosaics) == count:
            break
        chosen = rng.sample(labelled, 4)
        words = [label for _, label in chosen]
        if len(set(words)) < 4:
            continue
        if any(mentions[p.image] & (set(words) - {label}) for p, label in chosen):
            continue
        mosaics.append(Mosaic(tuple(p.image for p, _ in chosen), tuple(words)))
    return mosaics


def tile(photos: tuple[Path, ...], side: int) -> Image.Image:
    """A ``2 side x 2 side`` mosaic, row-major."""
    canvas = Image.new("RGB", (2 * side, 2 * side))
    for i, path in enumerate(photos):
        photo = load_image(path).resize((side, side), Image.Resampling.BILINEAR)
        canvas.paste(photo, ((i % 2) * side, (i // 2) * side))
    return canvas


def quadrant_map(grid: int) -> torch.Tensor:
    """Ground-truth quadrant index (0-3) of every patch of a ``grid x grid`` map."""
    rows = torch.arange(grid)[:, None] >= grid // 2
    cols = torch.arange(grid)[None, :] >= grid // 2
    return (rows.long() * 2 + cols.long()).flatten()


def assign_patches(
    patch_weights: torch.Tensor, word_ids: list[int], centred: bool = False
) -> torch.Tensor:
    """Index of the candidate word each patch activates most, -1 where it activates none.

    ``patch_weights`` (patches, vocab). ``centred``: compare each word's weight minus
    its mean over the patches (where it is stronger than in the image as a whole);
    every patch then gets a word.
    """
    candidates = patch_weights[:, word_ids]  # (patches, 4)
    if centred:
        return (candidates - candidates.mean(dim=0)).argmax(dim=1)
    best = candidates.argmax(dim=1)
    return torch.where(candidates.amax(dim=1) > 0, best, torch.full_like(best, -1))


def miou(predictions: list[torch.Tensor], truth: torch.Tensor, mosaics: list[Mosaic]) -> float:
    """Mean over words of IoU accumulated over all mosaics (the segmentation convention)."""
    inter: dict[str, int] = {}
    union: dict[str, int] = {}
    for pred, mosaic in zip(predictions, mosaics):
        for q, word in enumerate(mosaic.words):
            p, t = pred == q, truth == q
            inter[word] = inter.get(word, 0) + int((p & t).sum())
            union[word] = union.get(word, 0) + int((p | t).sum())
    return 100.0 * sum(inter[w] / union[w] for w in union) / len(union)


def draw_word_map(
    mosaic: Image.Image, assigned: torch.Tensor, words: tuple[str, ...]
) -> Image.Image:
    """The mosaic with each patch tinted by its assigned word, and a legend."""
    grid = round(len(assigned) ** 0.5)
    cell = mosaic.width / grid
    overlay = Image.new("RGBA", mosaic.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for i, q in enumerate(assigned.tolist()):
        if q >= 0:
            x, y = (i % grid) * cell, (i // grid) * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=(*COLOURS[q], 110))
    out = Image.alpha_composite(mosaic.convert("RGBA"), overlay).convert("RGB")
    legend = ImageDraw.Draw(out)
    for q, word in enumerate(words):
        legend.rectangle([4, 4 + 18 * q, 16, 16 + 18 * q], fill=COLOURS[q])
        legend.text((20, 4 + 18 * q), word, fill=(255, 255, 255))
    return out


def run_patchdis(
    model: LexVLA,
    pairs: list[Pair],
    count: int,
    seed: int,
    save: Path | None,
    window: int = 7,
    keep: int = 6,
) -> dict[str, float]:
    """mIoU of the model (both rules) and of a random assignment over ``count`` mosaics."""
    side = model.config.vision.image_size
    mosaics = build_mosaics(pairs, count, seed)
    if not mosaics:
        raise ValueError("no mosaic could be built from these pairs")
    index = model.vocab.index
    missing = {w for m in mosaics for w in m.words} - set(index)
    if missing:
        raise ValueError(f"object words not in the vocabulary: {sorted(missing)}")
    generator = torch.Generator().manual_seed(seed)
    predictions, centred, random_predictions = [], [], []
    for n, mosaic in enumerate(mosaics):
        image = tile(mosaic.photos, side)
        out = model.encode_patches([image], image_size=2 * side, patch_window=window)
        word_ids = [index[w] for w in mosaic.words]
        predictions.append(assign_patches(out.patch_word_weights[0], word_ids))
        centred.append(assign_patches(out.patch_word_weights[0], word_ids, centred=True))
        random_predictions.append(torch.randint(4, centred[-1].shape, generator=generator))
        if save is not None and n < keep:
            save.mkdir(parents=True, exist_ok=True)
            draw_word_map(image, centred[-1], mosaic.words).save(save / f"mosaic-{n:02d}.png")
    truth = quadrant_map(round(len(predictions[0]) ** 0.5))
    return {
        "mosaics": len(mosaics),
        "window": window,
        "miou": miou(predictions, truth, mosaics),
        "miou_centred": miou(centred, truth, mosaics),
        "random_miou": miou(random_predictions, truth, mosaics),
    }
