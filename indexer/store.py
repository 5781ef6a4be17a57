"""The metadata store of a version: rows and stored term vectors in SQLite.

Tables: ``images`` (id, path, bytes, width, height, sha256, captions and metadata as
JSON, origin shard, terms), ``captions`` (id, image_id, position, text, terms) and
``words`` (index-local word ids). A ``terms`` blob is little-endian int32 word ids
followed by their int32 impacts, highest impact first: the exact vector Lucene holds,
so the service can explain a score word by word.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .records import ImageRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS words (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, bytes INTEGER, width INTEGER, height INTEGER,
    sha256 TEXT, captions TEXT NOT NULL, metadata TEXT NOT NULL, origin TEXT NOT NULL,
    terms BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE TABLE IF NOT EXISTS captions (
    id TEXT PRIMARY KEY, image_id TEXT NOT NULL, position INTEGER NOT NULL, text TEXT NOT NULL,
    terms BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS captions_image ON captions (image_id);
"""
IN_CHUNK = 500  # ids per IN (...) query, under SQLite's variable limit


@dataclass(frozen=True)
class ImageRow:
    """An indexed image: where it came from, what it is, and its stored term vector."""

    id: str
    path: str
    bytes: int | None
    width: int | None
    height: int | None
    sha256: str | None
    captions: tuple[str, ...]
    metadata: dict[str, Any]
    terms: dict[str, int]


@dataclass(frozen=True)
class CaptionRow:
    """An indexed caption and its stored term vector."""

    id: str
    image_id: str
    position: int
    text: str
    terms: dict[str, int]


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]


class MetadataWriter:
    """Writes (or updates in place) the metadata store of a version being staged."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(SCHEMA)
        self._word_ids = {word: i for i, word in self._db.execute("SELECT id, word FROM words")}

    def _blob(self, terms: Mapping[str, int]) -> bytes:
        ids = []
        for word in terms:
            if word not in self._word_ids:
                self._word_ids[word] = len(self._word_ids)
                self._db.execute(
                    "INSERT INTO words (id, word) VALUES (?, ?)", (self._word_ids[word], word)
                )
            ids.append(self._word_ids[word])
        return np.array([*ids, *terms.values()], dtype="<i4").tobytes()

    def put_image(self, record: ImageRecord, origin: str, terms: Mapping[str, int]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.path,
                record.bytes,
                record.width,
                record.height,
                record.sha256,
                json.dumps(record.captions, ensure_ascii=False),
                json.dumps(record.metadata, ensure_ascii=False),
                origin,
                self._blob(terms),
            ),
        )

    def put_caption(
        self, caption_id: str, image_id: str, position: int, text: str, terms: Mapping[str, int]
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO captions VALUES (?, ?, ?, ?, ?)",
            (caption_id, image_id, position, text, self._blob(terms)),
        )

    def delete_image(self, image_id: str) -> list[str]:
        """Delete an image and its captions; returns the deleted caption ids."""
        captions = [
            row[0]
            for row in self._db.execute("SELECT id FROM captions WHERE image_id = ?", (image_id,))
        ]
        self._db.execute("DELETE FROM captions WHERE image_id = ?", (image_id,))
        self._db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        return captions

    def origins(self) -> dict[str, str]:
        """Image id -> the shard its vector came from."""
        return dict(self._db.execute("SELECT id, origin FROM images"))

    def counts(self) -> tuple[int, int]:
        """(images, captions) stored."""
        images = self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        captions = self._db.execute("SELECT COUNT(*) FROM captions").fetchone()[0]
        return int(images), int(captions)

    def close(self) -> None:
        """Commit and close."""
        self._db.commit()
        self._db.close()


class MetadataStore:
    """Read-only access to a published version's metadata; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no metadata store at {path}")
        # Published versions never change: immutable=1 skips SQLite's locking.
        self._db = sqlite3.connect(
            f"file:{path.resolve()}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._words = dict(self._query("SELECT id, word FROM words", ()))

    def _query(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _terms(self, blob: bytes) -> dict[str, int]:
        values = np.frombuffer(blob, dtype="<i4")
        half = len(values) // 2
        return {self._words[int(w)]: int(v) for w, v in zip(values[:half], values[half:])}

    def _by_ids(self, table: str, columns: str, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT {columns} FROM {table} WHERE id IN ({marks})", chunk):
                found[row[0]] = row
        return found

    def images(self, ids: Sequence[str]) -> list[ImageRow]:
        """Rows of these image ids, in the order given; unknown ids are left out."""
        columns = "id, path, bytes, width, height, sha256, captions, metadata, terms"
        found = self._by_ids("images", columns, ids)
        return [self._image_row(found[i]) for i in ids if i in found]

    def _image_row(self, row: tuple[Any, ...]) -> ImageRow:
        doc_id, path, size, width, height, sha256, captions, metadata, terms = row
        return ImageRow(
            doc_id,
            path,
            size,
            width,
            height,
            sha256,
            tuple(json.loads(captions)),
            json.loads(metadata),
            self._terms(terms),
        )

    def captions(self, ids: Sequence[str]) -> list[CaptionRow]:
        """Rows of these caption ids, in the order given; unknown ids are left out."""
        found = self._by_ids("captions", "id, image_id, position, text, terms", ids)
        return [self._caption_row(found[i]) for i in ids if i in found]

    def captions_of(self, image_id: str) -> list[CaptionRow]:
        """The indexed captions of one image, in order."""
        rows = self._query(
            "SELECT id, image_id, position, text, terms FROM captions "
            "WHERE image_id = ? ORDER BY position",
            (image_id,),
        )
        return [self._caption_row(row) for row in rows]

    def _caption_row(self, row: tuple[Any, ...]) -> CaptionRow:
        doc_id, image_id, position, text, terms = row
        return CaptionRow(doc_id, image_id, position, text, self._terms(terms))

    def image_ids(self) -> list[str]:
        """Every image id, sorted."""
        return [row[0] for row in self._query("SELECT id FROM images ORDER BY id", ())]

    def counts(self) -> tuple[int, int]:
        """(images, captions) stored."""
        images = self._query("SELECT COUNT(*) FROM images", ())[0][0]
        captions = self._query("SELECT COUNT(*) FROM captions", ())[0][0]
        return int(images), int(captions)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
