"""Opened index versions: a handle's two Lucene searchers and metadata store, and the
swap to each newly published version.

What the engine serves is a :class:`ServedIndex`: an :class:`IndexHandle` in this
process, or a version searched by its search shards' processes (:mod:`service.shards`).
Handles are leased by whoever uses them; a retired handle (a newer version was
published) closes when its last lease ends, so a request in flight always finishes
on the version it started with. :class:`IndexVersions` holds the version being
served, checks a new one against the loaded model and swaps it in.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from indexer import (
    ImageRow,
    ImpactSearcher,
    IndexNotFoundError,
    LuceneError,
    MetadataStore,
    PublishedIndex,
    TwoPhase,
    open_published,
    open_version,
)

from .metrics import Metrics
from .query import Target
from .ranked import RankedDoc, ranked

log = logging.getLogger(__name__)


class IndexOpenError(RuntimeError):
    """The index folder has no usable published version; the message says why."""


class ModelMismatchError(RuntimeError):
    """The index was written by another model than the one loaded."""


class ServedIndex(Protocol):
    """One published version as the engine serves it."""

    published: PublishedIndex
    version: str

    def search(
        self,
        target: Target,
        terms: dict[str, int],
        k: int,
        metrics: Metrics,
        plan: TwoPhase | None = None,
    ) -> list[RankedDoc]:
        """The top ``k`` documents of ``target`` for ``terms``, with their rows (searched
        exactly, or in two phases by ``plan``)."""
        ...

    def images(self, ids: Sequence[str]) -> list[ImageRow]:
        """Rows of these image ids, in the order given; unknown ids are left out."""
        ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    def retire(self) -> None: ...


Opener = Callable[[Path], ServedIndex]  # an index folder -> its published version, opened


class IndexHandle:
    """Searchers and metadata of one published version (or one search shard of it),
    closed after its last lease."""

    def __init__(self, published: PublishedIndex) -> None:
        self.published = published
        self.version = published.version
        self.searchers: dict[Target, ImpactSearcher] = {}
        try:
            self.store = MetadataStore(published.metadata)
            self.searchers[Target.images] = ImpactSearcher(published.images)
            self.searchers[Target.captions] = ImpactSearcher(published.captions)
        except BaseException:
            self._close()
            raise
        self._leases = 0
        self._retired = False
        self._lock = threading.Lock()

    def search(
        self,
        target: Target,
        terms: dict[str, int],
        k: int,
        metrics: Metrics,
        plan: TwoPhase | None = None,
    ) -> list[RankedDoc]:
        with metrics.timed("lucene"):
            found = self.searchers[target].search(terms, k, plan=plan)
        with metrics.timed("metadata"):
            return ranked(found, target, self.store)

    def images(self, ids: Sequence[str]) -> list[ImageRow]:
        return self.store.images(ids)

    def acquire(self) -> None:
        """Start a lease: the handle stays open until the matching :meth:`release`."""
        with self._lock:
            self._leases += 1

    def release(self) -> None:
        with self._lock:
            self._leases -= 1
            close = self._retired and self._leases == 0
        if close:
            self._close()

    def retire(self) -> None:
        """A newer version replaced this one: close now, or when the last lease ends."""
        with self._lock:
            self._retired = True
            close = self._leases == 0
        if close:
            self._close()

    def _close(self) -> None:
        for searcher in self.searchers.values():
            searcher.close()
        if hasattr(self, "store"):
            self.store.close()
        log.debug("closed index version %s", self.version)


def open_index(root: Path, version: str | None = None, shard: int | None = None) -> IndexHandle:
    """The published version of ``root`` (or the kept ``version``; or search shard
    ``shard`` of it), opened; :class:`IndexOpenError` when unusable."""
    try:
        published = open_published(root) if version is None else open_version(root, version)
        if shard is not None:
            published = published.search_shard(shard)
        elif published.shards > 1:
            raise IndexOpenError(
                f"the index at {root} is published in {published.shards} search shards: "
                "serve it on Ray (python -m service --ray ADDRESS), one process per shard"
            )
        return IndexHandle(published)
    except (IndexNotFoundError, IndexError) as exc:
        raise IndexOpenError(str(exc)) from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IndexOpenError(f"the manifest of the index at {root} is unreadable: {exc}") from exc
    except (FileNotFoundError, sqlite3.DatabaseError, LuceneError) as exc:
        raise IndexOpenError(f"the index at {root} is incomplete or damaged: {exc}") from exc


class IndexVersions:
    """The version of one index folder (the index ``name``) being served, swapped for each
    newer one that was written by the loaded model (``fingerprint``); ``on_swap`` runs
    after a swap."""

    def __init__(
        self,
        name: str,
        handle: ServedIndex,
        fingerprint: str,
        metrics: Metrics,
        interval_s: float = 2.0,
        on_swap: Callable[[], None] = lambda: None,
        opener: Opener = open_index,
    ) -> None:
        self.name = name
        self.fingerprint = fingerprint
        self.opener = opener
        self.metrics = metrics
        self.interval_s = interval_s
        self.on_swap = on_swap
        self.reloads = 0
        self.check(handle)
        self._handle = handle
        self._swap = threading.Lock()
        self._last_check = time.monotonic()
        self._count_documents(handle)

    @property
    def current(self) -> ServedIndex:
        """The version served now (lease it with :meth:`lease` to read from it)."""
        return self._handle

    @contextmanager
    def lease(self) -> Iterator[ServedIndex]:
        """The current version, kept open until the ``with`` block ends."""
        with self._swap:
            handle = self._handle
            handle.acquire()
        try:
            yield handle
        finally:
            handle.release()

    def check(self, handle: ServedIndex) -> None:
        """Raise :class:`ModelMismatchError` unless ``handle`` was built by this model."""
        built = handle.published.manifest.model
        if built.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"index {self.name!r} version {handle.version} was built with model {built.name!r} "
                f"({built.source}, fingerprint {built.fingerprint}), but the loaded model has "
                f"fingerprint {self.fingerprint}: serve it with --model {built.source} "
                "or rebuild the index"
            )

    def maybe_reload(self) -> None:
        """:meth:`reload` when ``interval_s`` has passed; on any failure keep serving."""
        if time.monotonic() - self._last_check < self.interval_s:
            return
        try:
            self.reload()
        except (IndexOpenError, ModelMismatchError) as exc:
            log.error("index %s: keeping version %s: %s", self.name, self._handle.version, exc)
        except Exception:
            log.exception("index %s: keeping version %s", self.name, self._handle.version)

    def reload(self) -> bool:
        """Open and swap in a newer published version, if there is one."""
        self._last_check = time.monotonic()
        if self._handle.published.is_current():
            return False
        fresh = self.opener(self._handle.published.root)
        try:
            self.check(fresh)
        except ModelMismatchError:
            fresh.retire()
            raise
        with self._swap:
            old, self._handle = self._handle, fresh
        old.retire()
        self.on_swap()
        self._count_documents(fresh)
        self.reloads += 1
        self.metrics.reloads.labels(self.name).inc()
        log.info("index %s: now serving version %s (was %s)", self.name, fresh.version, old.version)
        return True

    def close(self) -> None:
        self._handle.retire()

    def _count_documents(self, handle: ServedIndex) -> None:
        manifest = handle.published.manifest
        self.metrics.documents.labels(self.name, "images").set(manifest.images)
        self.metrics.documents.labels(self.name, "captions").set(manifest.captions)
