"""Where streamed training pairs come from: WebDataset shards or the project's manifests.

A source is cut into *shards*, the unit that readers (processes x loader workers) share:

- a folder of WebDataset ``*.tar`` files in the layout img2dataset writes: ``KEY.jpg``
  (or ``.jpeg``/``.png``/``.webp``) with ``KEY.txt`` (the caption) and/or ``KEY.json``
  (``"caption"``, or ``"captions"``: a list); each tar is a shard. Sample counts come
  from ``shards.json`` (``python -m model.training shards``), img2dataset's
  ``NNNNN_stats.json``, or a scan of the tar's member names;
- a folder in the Flickr8k layout (``captions.jsonl`` + ``images/``, ``model.training.data``)
  with a split, or an indexer manifest (``*.jsonl`` lines ``{"id", "path", "captions"}``;
  ``image`` for ``path``, relative paths from the manifest's folder): every
  ``MANIFEST_SHARD`` records form a shard.

A *raw sample* is what a shard yields before decoding: ``{"__key__": ...}`` plus the
tar's members by extension (bytes), or ``"path"`` and ``"captions"`` for a manifest.
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webdataset.tariterators import group_by_keys, tar_file_expander

from .data import load_split

log = logging.getLogger(__name__)

MANIFEST_SHARD = 500
SHARD_INDEX = "shards.json"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class DataSourceError(ValueError):
    """The data given to streaming training is missing or unusable."""


@dataclass(frozen=True)
class Record:
    """One manifest line: an image file and its captions."""

    key: str
    path: str
    captions: tuple[str, ...]


@dataclass(frozen=True)
class Shard:
    """A tar file (``path``) or a run of manifest ``records``, and its sample count."""

    name: str
    samples: int
    path: Path | None = None
    records: tuple[Record, ...] = ()


def open_source(data: Path, split: str | None = None) -> list[Shard]:
    """The shards of ``data``: a shard folder, a Flickr8k folder (with ``split``) or a
    manifest file."""
    if not data.exists():
        raise DataSourceError(f"{data} does not exist")
    if data.is_file():
        return manifest_shards(read_manifest(data), data.name)
    tars = sorted(data.glob("*.tar"))
    if tars:
        counts = _indexed_counts(data)
        return [Shard(t.name, counts.get(t.name) or count_tar_samples(t), path=t) for t in tars]
    if (data / "captions.jsonl").is_file():
        if split is None:
            raise DataSourceError(f"{data} holds several splits: name one (--split)")
        pairs = load_split(data, split)
        records = [Record(p.image.name, str(p.image), p.captions) for p in pairs]
        return manifest_shards(records, f"{data.name}/{split}")
    raise DataSourceError(f"{data} has neither *.tar shards nor a captions.jsonl")


def read_manifest(path: Path) -> list[Record]:
    """The records of an indexer manifest; relative paths resolve from its folder."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image = row.get("path") or row["image"]
        except (ValueError, KeyError, AttributeError) as exc:
            raise DataSourceError(f"{path}:{number}: not a manifest line ({exc})") from exc
        key = str(row.get("id") or image)
        captions = tuple(str(c) for c in row.get("captions") or ())
        records.append(Record(key, str(path.parent / image), captions))
    if not records:
        raise DataSourceError(f"{path} lists no images")
    return records


def manifest_shards(records: list[Record], name: str) -> list[Shard]:
    """Consecutive runs of ``MANIFEST_SHARD`` records as shards."""
    return [
        Shard(f"{name}#{start // MANIFEST_SHARD}", len(run), records=tuple(run))
        for start in range(0, len(records), MANIFEST_SHARD)
        if (run := records[start : start + MANIFEST_SHARD])
    ]


def _indexed_counts(folder: Path) -> dict[str, int]:
    """Samples per tar from ``shards.json`` or img2dataset's ``*_stats.json`` files."""
    if (folder / SHARD_INDEX).is_file():
        index = json.loads((folder / SHARD_INDEX).read_text())
        return {s["name"]: int(s["samples"]) for s in index["shards"]}
    counts = {}
    for stats in folder.glob("*_stats.json"):
        successes = json.loads(stats.read_text()).get("successes")
        if successes is not None:
            counts[stats.name.removesuffix("_stats.json") + ".tar"] = int(successes)
    return counts


def count_tar_samples(path: Path) -> int:
    """Keys with an image member in a tar (its headers only; a damaged tail ends the count)."""
    keys = set()
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                stem, _, ext = Path(member.name).name.partition(".")
                if ext.lower() in IMAGE_EXTENSIONS:
                    keys.add(stem)
    except (tarfile.TarError, OSError) as exc:
        log.warning("%s: counting stopped at a damaged part (%s)", path, exc)
    return len(keys)


def shard_samples(shard: Shard, on_error: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """The raw samples of one shard, in stored order; ``on_error`` hears once of a shard
    that is damaged or cannot be opened (what can be read of it still is)."""
    if shard.path is None:
        for record in shard.records:
            yield {"__key__": record.key, "path": record.path, "captions": record.captions}
        return
    errors: list[Exception] = []

    def handler(exc: Exception) -> bool:
        if not errors:
            on_error(f"{shard.name}: {exc.args[0] if exc.args else exc}")
        errors.append(exc)
        return True

    try:
        stream = shard.path.open("rb")
    except OSError as exc:
        handler(exc)
        return
    with stream:
        files = tar_file_expander([{"url": str(shard.path), "stream": stream}], handler=handler)
        yield from group_by_keys(files, handler=handler)
