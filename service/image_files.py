"""The file of an indexed image, read only while it still is what was indexed.

The metadata store records where each image was read, its size and its SHA-256. A file
is served only when its real path (links resolved) stays inside the folder it was
indexed from and its bytes still hash to the recorded digest: a file overwritten, or
swapped for a link to anything else (``/etc/passwd``, another photo), is refused with a
message that names the image id; the server log has the path. The bytes checked are the
bytes served (and decoded), so the file is read once and cannot change in between.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

from PIL import Image

from indexer import ImageRow

log = logging.getLogger(__name__)

UNKNOWN_TYPE = "application/octet-stream"


class FileUnavailableError(LookupError):
    """The file of an indexed image is gone or no longer what was indexed (404)."""


@dataclass(frozen=True)
class IndexedFile:
    """The checked bytes of an indexed image's file."""

    image_id: str
    data: bytes
    sha256: str


def indexed_folder(row: ImageRow) -> Path:
    """The folder the image was indexed from: its recorded path less its id where the id
    is a relative path ending it (a folder source, or a manifest of relative paths), else
    the file's own folder."""
    path, image_id = PurePath(row.path), PurePosixPath(row.id)
    tail = image_id.parts
    if not image_id.is_absolute() and ".." not in tail and path.parts[-len(tail) :] == tail:
        return Path(*path.parts[: -len(tail)])
    return Path(path.parent)


def _refuse(row: ImageRow, why: str, detail: object) -> FileUnavailableError:
    log.warning("not serving image %r from %s: %s (%s)", row.id, row.path, why, detail)
    return FileUnavailableError(f"the file of image {row.id!r} {why}")


def _real_path(row: ImageRow) -> Path:
    """The file's real path, checked to be inside the folder it was indexed from."""
    try:
        real = Path(row.path).resolve(strict=True)
        folder = indexed_folder(row).resolve(strict=True)
    except FileNotFoundError as exc:
        raise _refuse(row, "is gone", exc) from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of links
        raise _refuse(row, "cannot be read", exc) from exc
    if not real.is_relative_to(folder):
        raise _refuse(row, "is outside the folder it was indexed from", real)
    return real


def read_indexed(row: ImageRow) -> IndexedFile:
    """The file's bytes if they are the ones indexed, else :class:`FileUnavailableError`."""
    real = _real_path(row)
    changed = "changed since it was indexed (index it again)"
    if row.bytes is None or row.sha256 is None:
        raise _refuse(row, "cannot be checked (the index records no digest)", real)
    try:
        # O_NONBLOCK: a FIFO put in its place must not hang the request in open().
        with open(os.open(real, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            facts = os.fstat(f.fileno())
            if not stat.S_ISREG(facts.st_mode) or facts.st_size != row.bytes:
                raise _refuse(row, changed, f"{facts.st_size} bytes, {row.bytes} indexed")
            data = f.read(row.bytes + 1)
    except FileNotFoundError as exc:
        raise _refuse(row, "is gone", exc) from exc
    except OSError as exc:
        raise _refuse(row, "cannot be read", exc) from exc
    if len(data) != row.bytes or hashlib.sha256(data).hexdigest() != row.sha256:
        raise _refuse(row, changed, "its SHA-256 differs")
    return IndexedFile(row.id, data, row.sha256)


def media_type(data: bytes) -> str:
    """The MIME type of the image format Pillow detects in ``data`` (never text/html)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            found = Image.MIME.get(img.format or "", UNKNOWN_TYPE)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return UNKNOWN_TYPE
    return found if found.startswith("image/") else UNKNOWN_TYPE
