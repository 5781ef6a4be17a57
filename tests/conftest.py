"""Shared fixtures: tiny random models, the real default model, the shared data set."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import LexVLA, load_encoder

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
