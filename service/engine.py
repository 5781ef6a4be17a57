"""The search worker: one thread that owns the model and every Lucene call.

pyjnius is not thread-safe, and on two cores parallel encoders only fight, so all
searches go through one queue to one worker thread. It takes up to ``max_batch``
queued jobs at a time, encodes their texts (and images) as one batch, searches
Lucene for each, and hands results back to the event loop through futures. Between
batches it picks up a newly published index version; a retired version closes when
its last reader is done.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from indexer import CaptionRow, ImageRow, decode_image
from indexer.manifest import model_fingerprint
from model import LexVLA

from .index_handle import IndexHandle, IndexOpenError, open_index
from .metrics import Metrics
from .query_edit import QueryEdits, apply_edits
from .schemas import Target

log = logging.getLogger(__name__)


class EngineBusyError(RuntimeError):
    """The queue is full: the client should retry later (503)."""


class NotFoundError(LookupError):
    """An unknown image id or word (404)."""


class ModelMismatchError(RuntimeError):
    """The index was written by another model than the one loaded."""


@dataclass(frozen=True)
class Query:
    """One search: text (possibly empty when edits alone make the query) or an image."""

    target: Target
    k: int
    edits: QueryEdits = field(default_factory=QueryEdits)
    text: str | None = None
    image: Image.Image | None = None


@dataclass(frozen=True)
class RankedDoc:
    doc_id: str
    score: int
    image: ImageRow
    caption: CaptionRow | None = None

    @property
    def terms(self) -> dict[str, int]:
        """The stored term vector Lucene scored."""
        return self.caption.terms if self.caption is not None else self.image.terms


@dataclass(frozen=True)
class SearchResult:
    query_terms: dict[str, int]
    hits: list[RankedDoc]
    version: str


@dataclass(frozen=True)
class PatchWeights:
    """Per-patch word weights of one indexed image, in float16.  # (patches, vocab)"""

    weights: torch.Tensor
    grid: tuple[int, int]


@dataclass
class _Job:
    future: Future[Any] = field(default_factory=Future, init=False)


@dataclass
class _SearchJob(_Job):
    query: Query


@dataclass
class _HeatmapJob(_Job):
    image_id: str


@dataclass
class _ReloadJob(_Job):
    pass


_STOP = object()


class SearchEngine:
    """Serves searches, heatmaps and reloads from one worker thread."""

    def __init__(
        self,
        model: LexVLA,
        handle: IndexHandle,
        metrics: Metrics,
        *,
        max_batch: int = 8,
        max_queue: int = 256,
        boost_factor: float = 2.0,
        reload_interval_s: float = 2.0,
        heatmap_cache: int = 16,
    ) -> None:
        self.model = model
        self.vocabulary = model.vocab.index
        self.fingerprint = model_fingerprint(model)
        self.metrics = metrics
        self.max_batch = max_batch
        self.boost_factor = boost_factor
        self.reload_interval_s = reload_interval_s
        self.heatmap_cache = heatmap_cache
        self.reloads = 0
        self._check_model(handle)
        self._handle = handle
        self._swap = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._patches: OrderedDict[tuple[str, str], PatchWeights] = OrderedDict()
        self._last_check = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="search-worker", daemon=True)
        self._count_documents(handle)

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Finish queued jobs, stop the worker and close the index."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._handle.retire()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def handle(self) -> IndexHandle:
        """The current index version (lease it with :meth:`lease` to read from it)."""
        return self._handle

    @contextmanager
    def lease(self) -> Iterator[IndexHandle]:
        """The current index version, kept open until the ``with`` block ends."""
        with self._swap:
            handle = self._handle
            handle.acquire()
        try:
            yield handle
        finally:
            handle.release()

    # ---- what routes call -----------------------------------------------------------

    async def search(self, query: Query) -> SearchResult:
        result: SearchResult = await self._submit(_SearchJob(query))
        return result

    async def patch_weights(self, image_id: str) -> PatchWeights:
        result: PatchWeights = await self._submit(_HeatmapJob(image_id))
        return result

    async def reload(self) -> bool:
        """Look for a newly published version now; True when one was opened."""
        changed: bool = await self._submit(_ReloadJob())
        return changed

    async def _submit(self, job: _Job) -> Any:
        if not self.alive:
            raise EngineBusyError("the search worker is not running")
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise EngineBusyError(
                f"{self._queue.maxsize} searches are queued; retry in a moment"
            ) from exc
        return await asyncio.wrap_future(job.future)

    # ---- the worker -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.reload_interval_s)
            except queue.Empty:
                self._maybe_reload()
                continue
            jobs, stop = self._drain(first)
            self._maybe_reload()
            if jobs:
                self.metrics.batch_size.observe(len(jobs))
                self._process(jobs)
            if stop:
                return

    def _drain(self, first: Any) -> tuple[list[_Job], bool]:
        """Up to ``max_batch`` queued jobs, skipping those whose client went away."""
        jobs: list[_Job] = []
        item = first
        while True:
            if item is _STOP:
                return jobs, True
            if item.future.set_running_or_notify_cancel():
                jobs.append(item)
            if len(jobs) >= self.max_batch:
                return jobs, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False

    def _process(self, jobs: list[_Job]) -> None:
        with self.lease() as handle:
            searches = [j for j in jobs if isinstance(j, _SearchJob)]
            self._guarded(searches, lambda: self._search(searches, handle))
            for job in jobs:
                if isinstance(job, _HeatmapJob):
                    self._answer(job, partial(self._patch, job, handle))
        for job in jobs:
            if isinstance(job, _ReloadJob):
                self._answer(job, self._reload)

    def _answer(self, job: _Job, work: Callable[[], Any]) -> None:
        self._guarded([job], lambda: job.future.set_result(work()))

    @staticmethod
    def _guarded(jobs: Sequence[_Job], work: Callable[[], None]) -> None:
        """Run ``work``; any exception fails the jobs it left unanswered."""
        if not jobs:
            return
        try:
            work()
        except Exception as exc:
            if not isinstance(exc, NotFoundError | IndexOpenError):
                log.exception("search worker failure")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)

    # ---- searching ------------------------------------------------------------------

    def _query_weights(self, searches: list[_SearchJob]) -> torch.Tensor:
        """Edited float word weights of every query.  # (batch, vocab)"""
        weights = torch.zeros(len(searches), len(self.vocabulary))
        texts = [i for i, j in enumerate(searches) if j.query.image is None and j.query.text]
        images = [i for i, j in enumerate(searches) if j.query.image is not None]
        if texts:
            with self._timed("encode_text"):
                encoded = self.model.encode_texts([searches[i].query.text or "" for i in texts])
            weights[texts] = encoded.word_weights.float()
        if images:
            pictures = [searches[i].query.image for i in images]
            with self._timed("encode_image"):
                encoded = self.model.encode_images([p for p in pictures if p is not None])
            weights[images] = encoded.word_weights.float()
        for row, job in enumerate(searches):
            if job.query.edits:
                weights[row] = apply_edits(
                    weights[row], job.query.edits, self.vocabulary, self.boost_factor
                )
        return weights

    def _search(self, searches: list[_SearchJob], handle: IndexHandle) -> None:
        if not searches:
            return
        weights = self._query_weights(searches)
        terms = self.model.term_dicts(weights, "query")
        for job, row, query_terms in zip(searches, weights, terms):
            ordered = self._by_weight(query_terms, row)
            self._answer(job, partial(self._lookup, job.query, ordered, handle))

    def _by_weight(self, terms: dict[str, int], weights: torch.Tensor) -> dict[str, int]:
        """Highest impact first; equal impacts by their unquantized weight, not by word."""
        index = self.vocabulary
        order = sorted(terms, key=lambda w: (-terms[w], -float(weights[index[w]])))
        return {word: terms[word] for word in order}

    def _lookup(self, query: Query, terms: dict[str, int], handle: IndexHandle) -> SearchResult:
        with self._timed("lucene"):
            found = handle.searchers[query.target].search(terms, query.k)
        with self._timed("metadata"):
            hits = self._ranked(found, query.target, handle)
        return SearchResult(terms, hits, handle.version)

    @staticmethod
    def _ranked(
        found: list[tuple[str, float]], target: Target, handle: IndexHandle
    ) -> list[RankedDoc]:
        ids = [doc_id for doc_id, _ in found]
        if target is Target.images:
            rows = {row.id: row for row in handle.store.images(ids)}
            return [RankedDoc(i, int(s), rows[i]) for i, s in found if i in rows]
        captions = {row.id: row for row in handle.store.captions(ids)}
        images = {
            row.id: row
            for row in handle.store.images(sorted({c.image_id for c in captions.values()}))
        }
        return [
            RankedDoc(i, int(s), images[captions[i].image_id], captions[i])
            for i, s in found
            if i in captions and captions[i].image_id in images
        ]

    # ---- heatmaps -------------------------------------------------------------------

    def _patch(self, job: _HeatmapJob, handle: IndexHandle) -> PatchWeights:
        key = (handle.version, job.image_id)
        if key in self._patches:
            self._patches.move_to_end(key)
            return self._patches[key]
        rows = handle.store.images([job.image_id])
        if not rows:
            raise NotFoundError(f"no image with id {job.image_id!r} in the index")
        size = int(self.model.image.image_size)
        with self._timed("encode_patches"):
            picture = decode_image(Path(rows[0].path), size).image
            encoded = self.model.encode_images([picture], with_patches=True)
        assert encoded.patch_word_weights is not None and encoded.grid is not None
        result = PatchWeights(encoded.patch_word_weights[0].half(), encoded.grid)
        if self.heatmap_cache:
            self._patches[key] = result
            while len(self._patches) > self.heatmap_cache:
                self._patches.popitem(last=False)
        return result

    # ---- index versions -------------------------------------------------------------

    def _check_model(self, handle: IndexHandle) -> None:
        built = handle.published.manifest.model
        if built.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"index version {handle.version} was built with model {built.name!r} "
                f"({built.source}, fingerprint {built.fingerprint}), but the loaded model "
                f"{self.model.config.name!r} has fingerprint {self.fingerprint}: serve it with "
                f"--model {built.source} or rebuild the index"
            )

    def _count_documents(self, handle: IndexHandle) -> None:
        manifest = handle.published.manifest
        self.metrics.documents.labels("images").set(manifest.images)
        self.metrics.documents.labels("captions").set(manifest.captions)

    def _maybe_reload(self) -> None:
        """Switch to a newer version when one is published; on any failure keep serving."""
        if time.monotonic() - self._last_check >= self.reload_interval_s:
            try:
                self._reload()
            except (IndexOpenError, ModelMismatchError) as exc:
                log.error("keeping index version %s: %s", self._handle.version, exc)
            except Exception:
                log.exception("keeping index version %s", self._handle.version)

    def _reload(self) -> bool:
        """Open and swap in a newer published version, if there is one."""
        self._last_check = time.monotonic()
        if self._handle.published.is_current():
            return False
        fresh = open_index(self._handle.published.root)
        try:
            self._check_model(fresh)
        except ModelMismatchError:
            fresh.retire()
            raise
        with self._swap:
            old, self._handle = self._handle, fresh
        old.retire()
        self._patches.clear()
        self._count_documents(fresh)
        self.reloads += 1
        self.metrics.reloads.inc()
        log.info("now serving index version %s (was %s)", fresh.version, old.version)
        return True

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stage.labels(stage).observe(time.perf_counter() - started)
