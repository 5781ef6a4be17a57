"""Shared fixtures: tiny random models, the real default model, the shared data set, the
sample photos and a tiny real index of them (tiny-lite0 through the indexer's real build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer import JobOptions, Source, build
from model import LexVLA, load_encoder
from model.samples import write_sample_photos

REPO = Path(__file__).resolve().parents[1]
FLICKR8K = REPO.parent / "shared" / "data" / "flickr8k"


@pytest.fixture(scope="session")
def flickr8k() -> Path:
    """The Flickr8k train/dev folder that developer and CI machines have beside the repo."""
    if not (FLICKR8K / "captions.jsonl").is_file():
        pytest.skip(f"needs {FLICKR8K} (developer and CI machines only)")
    return FLICKR8K


@pytest.fixture(scope="session")
def tiny_lite0() -> LexVLA:
    return load_encoder("tiny-lite0")


@pytest.fixture(scope="session")
def tiny_dinov2() -> LexVLA:
    return load_encoder("tiny-dinov2")


@pytest.fixture(scope="session")
def default_model() -> LexVLA:
    return load_encoder()


# Captions from the tiny model's vocabulary, so caption vectors differ from each other.
CAPTIONS = {
    "astronaut": ["a man in a white shirt near a red wall", "the man sits on a bench"],
    "chelsea": ["a brown cat sleeps on the sofa", "a cat lies on a red rock"],
    "coffee": ["a white cup on a blue table", "black water in a white cup"],
    "rocket": ["a big white rocket near the ocean", "two people walk near a wall"],
    "camera": ["a man with a black camera in a field", "the man rides a bike"],
    "grass": ["green grass in a field", "a dog runs on the grass"],
}


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scikit-image sample photos as JPEG files, with a manifest giving some captions."""
    folder = tmp_path_factory.mktemp("photos")
    lines = []
    for path in write_sample_photos(folder / "images"):
        captions = CAPTIONS.get(path.stem, [])
        lines.append(
            json.dumps({"id": path.name, "path": f"images/{path.name}", "captions": captions})
        )
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def build_index(photos: Path, out: Path, model: LexVLA, model_name: str = "tiny-lite0") -> Path:
    """An index of the sample photos and captions, built by the indexer's real job."""
    options = JobOptions(model=model_name, device="cpu", workers=0, progress=False)
    build(Source.manifest(photos / "manifest.jsonl"), out, options, model=model)
    return out


@pytest.fixture(scope="session")
def tiny_index(photos: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0: LexVLA) -> Path:
    return build_index(photos, tmp_path_factory.mktemp("index") / "photos", tiny_lite0)
