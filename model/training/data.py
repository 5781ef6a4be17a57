"""Image-caption data sets on disk (the Flickr8k layout of ``../shared/data``).

A data folder holds ``captions.jsonl`` (one line per image: ``image``, ``split``,
``captions``) and ``images/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    """One image and its captions."""

    image: Path
    captions: tuple[str, ...]


def load_split(data_dir: str | Path, split: str) -> list[Pair]:
    """The pairs of one split, in file order."""
    data_dir = Path(data_dir)
    manifest = data_dir / "captions.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: is {data_dir} a captioned image folder?")
    pairs = []
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        if row["split"] == split:
            pairs.append(Pair(data_dir / "images" / row["image"], tuple(row["captions"])))
    if not pairs:
        raise ValueError(f"no pairs with split {split!r} in {manifest}")
    return pairs
