"""Helpers of the streaming-training tests: photo captions, shards, tiny settings."""

from __future__ import annotations

from pathlib import Path

from model.training.shards import write_shards
from model.training.stream_settings import StreamSettings
from model.training.stream_sources import Record

# One caption per photo, from the tiny models' vocabulary, different for each photo.
PHOTO_CAPTIONS = {
    "astronaut": "a man in a white shirt near a red wall",
    "camera": "a man with a black camera in a field",
    "chelsea": "a brown cat sleeps on the sofa",
    "coffee": "a white cup on a blue table",
    "coins": "many small coins on a black table",
    "rocket": "a big white rocket near the ocean",
    "hubble_deep_field": "small lights in the black sky",
    "moon": "the white moon in the sky",
    "grass": "green grass in a field",
    "brick": "a red brick wall",
    "gravel": "small stones on the road",
    "retina": "a red eye with thin lines",
    "immunohistochemistry": "blue and brown cells",
}


def make_shards(records: list[Record], out: Path, per_shard: int) -> Path:
    write_shards(records, out, per_shard)
    return out


def tiny_settings(**changes: object) -> StreamSettings:
    """Small, fast settings for the tiny random models."""
    base: dict[str, object] = {
        "batch_size": 4,
        "workers": 0,
        "shuffle_buffer": 4,
        "lora_rank": 2,
        "lora_dropout": 0.0,
        "log_every": 1,
        "save_every": 100,
    }
    return StreamSettings(**(base | changes))  # type: ignore[arg-type]
