"""One opened index version: its two Lucene searchers and its metadata store.

Handles are leased by whoever uses them; a retired handle (a newer version was
published) closes when its last lease ends, so a request in flight always finishes
on the version it started with.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

from indexer import (
    ImpactSearcher,
    IndexNotFoundError,
    LuceneError,
    MetadataStore,
    PublishedIndex,
    open_published,
)

from .schemas import Target

log = logging.getLogger(__name__)


class IndexOpenError(RuntimeError):
    """The index folder has no usable published version; the message says why."""


class IndexHandle:
    """Searchers and metadata of one published version, closed after its last lease."""

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


def open_index(root: Path) -> IndexHandle:
    """The published version of ``root``, opened; :class:`IndexOpenError` when unusable."""
    try:
        return IndexHandle(open_published(root))
    except IndexNotFoundError as exc:
        raise IndexOpenError(str(exc)) from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IndexOpenError(f"the manifest of the index at {root} is unreadable: {exc}") from exc
    except (FileNotFoundError, sqlite3.DatabaseError, LuceneError) as exc:
        raise IndexOpenError(f"the index at {root} is incomplete or damaged: {exc}") from exc
