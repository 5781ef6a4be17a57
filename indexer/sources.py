"""The reader stage: the items of an image folder or a JSONL manifest, in a stable order.

A manifest line is ``{"id": ..., "path": ..., "captions": [...], "metadata": {...}}``;
``image`` is accepted for ``path`` (the Flickr8k layout), ``id`` defaults to the path
as written, relative paths are resolved against ``root`` (default: the manifest's
folder) and any other keys are kept as metadata. A line that cannot be read becomes an
item marked as skipped, which the job reports as skipped instead of stopping.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import Item, SkipReason


class SourceError(ValueError):
    """The folder or manifest given to a job is missing or unusable."""


@dataclass(frozen=True)
class Source:
    """Where a job's images come from: an ``images`` folder or a ``manifest`` file."""

    kind: str  # "images" or "manifest"
    path: Path
    root: Path | None = None  # manifests only: base folder of relative paths

    @classmethod
    def folder(cls, path: Path) -> Source:
        if not path.exists():
            raise SourceError(f"image folder {path} does not exist")
        if not path.is_dir():
            raise SourceError(f"{path} is not a folder (use --manifest for a JSONL file)")
        return cls("images", path.resolve())

    @classmethod
    def manifest(cls, path: Path, root: Path | None = None) -> Source:
        if not path.is_file():
            raise SourceError(f"manifest {path} does not exist or is not a file")
        if root is not None and not root.is_dir():
            raise SourceError(f"--root {root} is not a folder")
        return cls("manifest", path.resolve(), (root or path.parent).resolve())

    def items(self) -> list[Item]:
        if self.kind == "images":
            return walk_folder(self.path)
        assert self.root is not None
        return read_manifest(self.path, self.root)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "root": self.root and str(self.root)}

    def describe(self) -> str:
        return f"--images {self.path}" if self.kind == "images" else f"--manifest {self.path}"


def _readable_name(text: str) -> str:
    """A file name that is not valid UTF-8, with its odd bytes escaped."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _file_item(folder: Path, path: Path) -> Item:
    relative = path.relative_to(folder).as_posix()
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return Item(
            id=_readable_name(relative),
            path=_readable_name(str(path)),
            skip=SkipReason.UNREADABLE.value,
            detail="the file name is not valid UTF-8",
        )
    return Item(id=relative, path=str(path))


def walk_folder(folder: Path) -> list[Item]:
    """Every non-hidden file under ``folder`` (recursively), id = its relative path."""
    items = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                items.append(_file_item(folder, Path(dirpath) / name))
    return sorted(items, key=lambda item: item.id)


def _captions(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError("captions must be a string or a list of strings")
    return tuple(c.strip() for c in value if c.strip())


def parse_manifest_line(line: str, root: Path) -> Item:
    """One manifest line as an item; raises ``ValueError`` when it is malformed."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("a line must be a JSON object")
    path = row.pop("path", None) or row.pop("image", None)
    if not isinstance(path, str) or not path:
        raise ValueError("no 'path' (or 'image') string")
    doc_id = row.pop("id", path)
    if not isinstance(doc_id, str | int) or not str(doc_id).strip():
        raise ValueError("'id' must be a non-empty string")
    captions = _captions(row.pop("captions", None))
    metadata = row.pop("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be an object")
    return Item(
        id=str(doc_id),
        path=str(root / path),
        captions=captions,
        metadata={**row, **metadata},
    )


def read_manifest(manifest: Path, root: Path) -> list[Item]:
    """The items of a JSONL manifest in file order; blank lines are ignored."""
    items = []
    with manifest.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                items.append(parse_manifest_line(line, root))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                where = f"{manifest.name}:{number}"
                items.append(
                    Item(
                        id=where,
                        path=str(manifest),
                        skip=SkipReason.BAD_MANIFEST_LINE.value,
                        detail=str(exc),
                    )
                )
    return items
