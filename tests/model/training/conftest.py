"""Streaming-training fixtures: the real sample photos with captions, as records and shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.samples import write_sample_photos
from model.training.stream_sources import Record

from .stream_helpers import PHOTO_CAPTIONS, make_shards


@pytest.fixture(scope="session")
def photo_records(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    """The 13 scikit-image sample photos as JPEG files, each with its caption."""
    folder = tmp_path_factory.mktemp("stream-photos")
    return [
        Record(path.stem, str(path), (PHOTO_CAPTIONS[path.stem],))
        for path in write_sample_photos(folder)
    ]


@pytest.fixture(scope="session")
def even_shards(photo_records: list[Record], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 photos in 4 shards of 3 (two readers get 6 pairs each per pass)."""
    return make_shards(photo_records[:12], tmp_path_factory.mktemp("even") / "shards", 3)
