"""Durable job output under ``INDEX/shards``: batches of committed shards, replayed in order.

Every job is a batch folder ``NNNNN-kind`` (``build``, ``add`` or ``remove``) with
``batch.json`` (its spec). An ingest batch fixes its ``plan.jsonl`` (the items) when it
starts and commits shard ``k`` (plan items ``[k * shard_size, (k + 1) * shard_size)``)
by renaming a finished temporary folder to ``k:05d/``, holding ``records.jsonl`` (one
outcome per item), ``images.jsonl`` and ``captions.jsonl`` (Pyserini
JsonVectorCollection lines). A remove batch holds ``removed.json``. ``done.json``
marks a batch whose result was published. Replaying every batch in order gives the
live documents, and a new version is built from shards, never by re-encoding.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .records import ImageRecord, Item

SPEC = "batch.json"
PLAN = "plan.jsonl"
DONE = "done.json"
REMOVED = "removed.json"
RECORDS = "records.jsonl"
IMAGE_VECTORS = "images.jsonl"
CAPTION_VECTORS = "captions.jsonl"
TEMP_PREFIX = ".tmp-"

Vector = tuple[str, dict[str, int]]  # (doc id, {word: impact})


@dataclass(frozen=True)
class BatchSpec:
    """What a job was asked to do; a rerun resumes the batch only if it asks the same."""

    kind: str  # "build", "add" or "remove"
    request: dict[str, Any]  # the source (ingest) or the requested ids (remove)
    model: dict[str, Any] | None = None  # ModelInfo of ingest batches
    shard_size: int = 0
    captions: bool = True
    created: str = ""


@dataclass
class ShardOutput:
    """Everything one shard commits."""

    records: list[ImageRecord] = field(default_factory=list)
    images: list[Vector] = field(default_factory=list)
    captions: list[Vector] = field(default_factory=list)


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def vector_line(doc_id: str, terms: dict[str, int]) -> dict[str, Any]:
    """A JsonVectorCollection document."""
    return {"id": doc_id, "contents": "", "vector": terms}


def _write_atomically(folder: Path, files: dict[str, Sequence[dict[str, Any]]]) -> None:
    """Create ``folder`` holding these JSONL files, all or nothing (rename of a temp folder)."""
    temp = folder.parent / f"{TEMP_PREFIX}{folder.name}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    for name, rows in files.items():
        _write_jsonl(temp / name, rows)
    os.rename(temp, folder)


class Batch:
    """One job's folder of shards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.spec = BatchSpec(**json.loads((path / SPEC).read_text()))

    @property
    def kind(self) -> str:
        return self.spec.kind

    def plan(self) -> list[Item]:
        return [Item.from_json(row) for row in _read_jsonl(self.path / PLAN)]

    def shard_ranges(self, plan_size: int) -> list[range]:
        size = self.spec.shard_size
        return [range(s, min(s + size, plan_size)) for s in range(0, plan_size, size)]

    def shard_path(self, index: int) -> Path:
        return self.path / f"{index:05d}"

    def origin(self, index: int) -> str:
        """How metadata names the shard a vector came from."""
        return f"{self.name}/{index:05d}"

    def committed(self) -> list[int]:
        """Indexes of committed shards, in order."""
        if self.kind == "remove":
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def commit(self, index: int, output: ShardOutput) -> None:
        _write_atomically(
            self.shard_path(index),
            {
                RECORDS: [r.to_json() for r in output.records],
                IMAGE_VECTORS: [vector_line(i, t) for i, t in output.images],
                CAPTION_VECTORS: [vector_line(i, t) for i, t in output.captions],
            },
        )

    def records(self, index: int) -> list[ImageRecord]:
        return [ImageRecord.from_json(r) for r in _read_jsonl(self.shard_path(index) / RECORDS)]

    def vectors(self, index: int, kind: str) -> Iterator[Vector]:
        """``(doc id, terms)`` of a shard's ``images`` or ``captions``, in file order."""
        name = IMAGE_VECTORS if kind == "images" else CAPTION_VECTORS
        for row in _read_jsonl(self.shard_path(index) / name):
            yield row["id"], row["vector"]

    def vector_file(self, index: int, kind: str) -> Path:
        return self.shard_path(index) / (IMAGE_VECTORS if kind == "images" else CAPTION_VECTORS)

    def removed(self) -> list[str]:
        if self.kind != "remove":
            return []
        return list(json.loads((self.path / REMOVED).read_text()))

    @property
    def done(self) -> bool:
        return (self.path / DONE).is_file()

    def mark_done(self, info: dict[str, Any]) -> None:
        temp = self.path / f"{TEMP_PREFIX}{DONE}"
        temp.write_text(json.dumps(info, indent=2) + "\n")
        os.rename(temp, self.path / DONE)

    def clean_temp(self) -> None:
        """Remove half-written shards of a killed run."""
        for path in self.path.glob(f"{TEMP_PREFIX}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


@dataclass
class LiveImage:
    record: ImageRecord
    origin: str  # Batch.origin of the shard holding its vectors


@dataclass
class LiveState:
    """The documents an index holds after replaying batches: images by id and by content."""

    images: dict[str, LiveImage] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 -> image id

    def add(self, record: ImageRecord, origin: str) -> None:
        """Add an indexed image, replacing one with the same id."""
        self.remove(record.id)
        self.images[record.id] = LiveImage(record, origin)
        if record.sha256:
            self.hashes[record.sha256] = record.id

    def remove(self, image_id: str) -> None:
        old = self.images.pop(image_id, None)
        if old is not None and old.record.sha256:
            self.hashes.pop(old.record.sha256, None)


class ShardStore:
    """The batches under ``INDEX/shards``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def batches(self) -> list[Batch]:
        if not self.path.is_dir():
            return []
        folders = sorted(p for p in self.path.iterdir() if p.name[:5].isdigit())
        return [Batch(p) for p in folders]

    def unfinished(self) -> Batch | None:
        """The batch a killed or failed job left (only the last can be unfinished)."""
        batches = self.batches()
        return batches[-1] if batches and not batches[-1].done else None

    def create(
        self, spec: BatchSpec, plan: Sequence[Item] = (), removed: Sequence[str] = ()
    ) -> Batch:
        """Start a batch: its spec and plan (or removed ids) appear together."""
        self.path.mkdir(parents=True, exist_ok=True)
        number = len(self.batches())
        folder = self.path / f"{number:05d}-{spec.kind}"
        temp = self.path / f"{TEMP_PREFIX}{folder.name}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        (temp / SPEC).write_text(json.dumps(asdict(spec), indent=2) + "\n")
        if spec.kind == "remove":
            (temp / REMOVED).write_text(json.dumps(list(removed)) + "\n")
        else:
            _write_jsonl(temp / PLAN, [item.to_json() for item in plan])
        os.rename(temp, folder)
        return Batch(folder)

    def clean_temp(self) -> None:
        """Remove half-written batches and shards of a killed run (hold the index lock)."""
        if self.path.is_dir():
            for path in self.path.glob(f"{TEMP_PREFIX}*"):
                shutil.rmtree(path)
        for batch in self.batches():
            batch.clean_temp()

    def replay(self, before: Batch | None = None) -> LiveState:
        """The live images after every batch (or every batch before ``before``)."""
        state = LiveState()
        for batch in self.batches():
            if before is not None and batch.name == before.name:
                break
            for image_id in batch.removed():
                state.remove(image_id)
            for index in batch.committed():
                for record in batch.records(index):
                    if record.indexed:
                        state.add(record, batch.origin(index))
        return state

    def batch(self, name: str) -> Batch:
        return Batch(self.path / name)
