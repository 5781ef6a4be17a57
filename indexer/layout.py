"""The on-disk layout of an index and its atomic publishing.

```
INDEX/
  current -> versions/v000003     symlink, swapped atomically (os.replace)
  versions/v000003/
    images/  captions/            Lucene impact indexes (Anserini)
    meta.sqlite                   metadata and stored term vectors (indexer.store)
    manifest.json                 model, vocabulary, quantization, counts (indexer.manifest)
  shards/                         durable encoded shards (indexer.shards); rebuilds read these
```

A version published in N > 1 search shards (:mod:`indexer.search_shards`) holds
``shard-000/`` ... beside its manifest instead, each with ``images/``, ``captions/`` and
``meta.sqlite`` of its documents.

A version folder is complete before ``current`` points at it and is never written
again, so a reader that resolves ``current`` once sees a whole old or a whole new
version. The previous version is kept for readers that opened it just before a swap.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .manifest import IndexManifest
from .search_shards import shard_folder

CURRENT = "current"
VERSIONS = "versions"
SHARDS = "shards"
LOCK = ".lock"
IMAGES = "images"
CAPTIONS = "captions"
METADATA = "meta.sqlite"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"


class IndexNotFoundError(FileNotFoundError):
    """No published index at the given folder."""


class IndexBusyError(RuntimeError):
    """Another indexer job holds the index."""


@dataclass(frozen=True)
class PublishedIndex:
    """One published version (or one search shard of it): its paths and manifest, fixed
    when it was opened."""

    root: Path
    version: str
    manifest: IndexManifest
    shard: int | None = None  # set by search_shard() on a version of several shards

    @property
    def path(self) -> Path:
        """The version's folder."""
        return self.root / VERSIONS / self.version

    @property
    def files(self) -> Path:
        """The folder of the Lucene indexes and metadata: the version's, or its shard's."""
        return self.path if self.shard is None else self.path / shard_folder(self.shard)

    @property
    def images(self) -> Path:
        """The Lucene impact index of images."""
        return self.files / IMAGES

    @property
    def captions(self) -> Path:
        """The Lucene impact index of captions."""
        return self.files / CAPTIONS

    @property
    def metadata(self) -> Path:
        """The SQLite metadata store (open it with ``indexer.store.MetadataStore``)."""
        return self.files / METADATA

    @property
    def shards(self) -> int:
        """Search shards of the version (1: unsharded)."""
        return self.manifest.shards

    def search_shard(self, number: int) -> PublishedIndex:
        """Search shard ``number`` of this version; an unsharded version is its one shard."""
        if not 0 <= number < self.shards:
            raise IndexError(f"{self.root} {self.version} has {self.shards} search shards")
        return self if self.shards == 1 else replace(self, shard=number)

    def is_current(self) -> bool:
        """False once a newer version has been published (time to reopen)."""
        return current_version(self.root) == self.version


def current_version(root: Path) -> str | None:
    """The published version's name, or ``None`` when nothing is published."""
    try:
        return Path(os.readlink(root / CURRENT)).name
    except (FileNotFoundError, NotADirectoryError):
        return None


def open_version(root: str | Path, version: str) -> PublishedIndex:
    """A version by name, current or kept; :class:`IndexNotFoundError` once it is pruned."""
    root = Path(root)
    try:
        return PublishedIndex(
            root, version, IndexManifest.load(root / VERSIONS / version / MANIFEST)
        )
    except FileNotFoundError as exc:
        raise IndexNotFoundError(f"version {version} of {root} is gone (pruned)") from exc


def open_published(root: str | Path) -> PublishedIndex:
    """The version ``current`` points at now; raises :class:`IndexNotFoundError`."""
    root = Path(root)
    for _ in range(3):  # a version can be pruned between readlink and reading it
        version = current_version(root)
        if version is None:
            break
        try:
            return open_version(root, version)
        except IndexNotFoundError:
            continue
    raise IndexNotFoundError(f"no published index at {root} (build one with python -m indexer)")


def is_index_root(root: Path) -> bool:
    """Whether ``root`` holds an index (published, being built, or a job's lock)."""
    return any(
        (root / name).exists() or (root / name).is_symlink() for name in (SHARDS, CURRENT, LOCK)
    )


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the index's job lock (released by the OS even after ``kill -9``).

    A POSIX record lock: unlike ``flock``, forked decoding workers do not inherit it,
    so it is free as soon as the job's own process dies.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("w") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise IndexBusyError(f"another indexer job is working on {root}") from exc
        yield


def _version_number(name: str) -> int:
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else -1


def versions(root: Path) -> list[str]:
    """Version folder names, oldest first."""
    folder = root / VERSIONS
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return sorted((n for n in names if _version_number(n) >= 0), key=_version_number)


@dataclass(frozen=True)
class Staging:
    """A version being built: invisible to readers until :func:`publish` moves it."""

    path: Path
    version: str


def new_staging(root: Path) -> Staging:
    """A fresh staging folder and the version name it will be published under."""
    existing = versions(root)
    number = _version_number(existing[-1]) + 1 if existing else 1
    version = f"v{number:06d}"
    path = root / VERSIONS / f"{STAGING_PREFIX}{version}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return Staging(path, version)


def clean_staging(root: Path) -> None:
    """Remove staging folders a killed job left behind (call with the lock held)."""
    folder = root / VERSIONS
    if folder.is_dir():
        for path in folder.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(root: Path, staging: Staging, keep: int = 2) -> str:
    """Make a staged version current in one atomic step, then prune old versions."""
    final = root / VERSIONS / staging.version
    os.rename(staging.path, final)
    _fsync_dir(root / VERSIONS)
    link = root / f"{CURRENT}.tmp-{os.getpid()}"
    if link.is_symlink():
        link.unlink()
    os.symlink(Path(VERSIONS) / staging.version, link)
    os.replace(link, root / CURRENT)
    _fsync_dir(root)
    prune(root, keep)
    return staging.version


def prune(root: Path, keep: int = 2) -> None:
    """Delete versions except the current one and the ``keep - 1`` published before it."""
    current = current_version(root)
    names = versions(root)
    if current not in names:
        return
    older = names[: names.index(current)]
    kept = {current, *older[-(keep - 1) :]} if keep > 1 else {current}
    for name in names:
        if name not in kept:
            shutil.rmtree(root / VERSIONS / name, ignore_errors=True)
