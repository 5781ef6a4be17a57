"""PatchDis: mosaics, ground truth, patch assignment and mIoU (tiny model, generated photos)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import LexVLA
from model.training.data import Pair
from model.training.patchdis import (
    Mosaic,
    assign_patches,
    build_mosaics,
    caption_label,
    miou,
    quadrant_map,
    run_patchdis,
)

WORDS = ("dog", "man", "horse", "water", "grass")


def pairs(folder: Path) -> list[Pair]:
    """One generated photo per object word, each with three captions naming only it."""
    out = []
    for i, word in enumerate(WORDS):
        path = folder / f"{word}.png"
        Image.fromarray(np.full((32, 32, 3), 40 * i, dtype=np.uint8)).save(path)
        out.append(Pair(path, (f"a {word}", f"the {word} here", f"one {word}", "a photo")))
    return out


def test_labels_need_three_mentions_and_mosaics_never_mix_them(tmp_path: Path) -> None:
    photos = pairs(tmp_path)
    assert caption_label(photos[0]) == "dog"
    assert caption_label(Pair(photos[0].image, ("a dog", "a cat", "a bird"))) is None
    mosaics = build_mosaics(photos, 3, seed=0)
    assert len(mosaics) == 3
    for mosaic in mosaics:
        assert len(set(mosaic.words)) == 4
        assert [p.stem for p in mosaic.photos] == list(mosaic.words)


def test_quadrants_assignment_and_miou() -> None:
    truth = quadrant_map(4)
    assert truth.view(4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    mosaic = Mosaic(tuple(Path(w) for w in WORDS[:4]), WORDS[:4])
    assert miou([truth], truth, [mosaic]) == pytest.approx(100.0)
    shifted = (truth + 1) % 4
    assert miou([shifted], truth, [mosaic]) == 0.0
    weights = torch.zeros(16, 10)
    weights[torch.arange(16), truth + 2] = 1.0  # word id q+2 is strongest in quadrant q
    weights[0] = 0.0  # a patch that activates no candidate
    assigned = assign_patches(weights, [2, 3, 4, 5])
    assert assigned[0] == -1 and torch.equal(assigned[1:], truth[1:])


def test_centred_assignment_cancels_a_word_that_is_high_everywhere() -> None:
    truth = quadrant_map(4)
    weights = torch.zeros(16, 10)
    weights[torch.arange(16), truth + 2] = 1.0
    weights[:, 2] += 1.5  # word 2 (quadrant 0) is strong all over the image
    assert (assign_patches(weights, [2, 3, 4, 5]) == 0).all()  # the paper's rule
    assert torch.equal(assign_patches(weights, [2, 3, 4, 5], centred=True), truth)


def test_run_patchdis_reports_model_and_random_miou(tiny_lite0: LexVLA, tmp_path: Path) -> None:
    photos = pairs(tmp_path)
    result = run_patchdis(tiny_lite0, photos, 2, seed=0, save=tmp_path / "png", window=3)
    assert result["mosaics"] == 2 and result["window"] == 3
    assert 0.0 <= result["miou"] <= 100.0 and 0.0 < result["random_miou"] < 100.0
    assert 0.0 <= result["miou_centred"] <= 100.0
    saved = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert saved == ["mosaic-00.png", "mosaic-01.png"]
