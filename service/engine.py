"""The search engine: the model, the served indexes and the one worker thread.

Routes submit searches, heatmap requests and reloads; the :class:`~.worker.BatchWorker`
takes them a batch at a time, the :class:`~.searcher.Searcher` encodes the batch's
queries together (whatever index each asks) and answers each from its index, and
between batches each index's :class:`~.index_handle.IndexVersions` picks up a newly
published version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

from indexer import TwoPhase
from model import LexVLA

from .decoding import Decoder, UndecodableError
from .heatmaps import Heatmaps, NotFoundError, PatchWeights
from .image_files import FileUnavailableError
from .index_handle import (
    IndexOpenError,
    IndexVersions,
    ModelMismatchError,
    Opener,
    ServedIndex,
    open_index,
)
from .index_registry import IndexRegistry
from .metrics import Metrics
from .query import Query
from .searcher import Searcher, SearchResult
from .worker import BatchWorker, Job, answer, guarded


@dataclass
class _SearchJob(Job):
    query: Query

    @property
    def index(self) -> str:
        return self.query.index


@dataclass
class _HeatmapJob(Job):
    image_id: str
    index: str


@dataclass
class _ReloadJob(Job):
    index: str


# errors of the request, of a file or of a new index version (logged where answered)
QUIET = (NotFoundError, FileUnavailableError, UndecodableError, IndexOpenError, ModelMismatchError)


class SearchEngine:
    """Serves searches, heatmaps and reloads of the named indexes from one worker thread."""

    def __init__(
        self,
        model: LexVLA,
        handles: dict[str, ServedIndex],
        metrics: Metrics,
        decoder: Decoder,
        *,
        max_batch: int = 8,
        max_queue: int = 64,
        queue_deadline_s: float = 2.0,
        boost_factor: float = 2.0,
        plan: TwoPhase | None = None,
        reload_interval_s: float = 2.0,
        heatmap_cache: int = 16,
        opener: Opener = open_index,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.fingerprint = model.fingerprint()
        self.searcher = Searcher(model, metrics, boost_factor, plan)
        self.decoder = decoder
        self.heatmaps = Heatmaps(model, metrics, decoder, heatmap_cache)
        self.indexes = IndexRegistry(
            [
                IndexVersions(
                    name,
                    handle,
                    self.fingerprint,
                    metrics,
                    reload_interval_s,
                    on_swap=self.heatmaps.clear,
                    opener=opener,
                )
                for name, handle in handles.items()
            ]
        )
        self.worker = BatchWorker(
            self._process,
            self.indexes.maybe_reload,
            max_batch=max_batch,
            max_queue=max_queue,
            deadline_s=queue_deadline_s,
            idle_s=reload_interval_s,
        )

    @property
    def vocabulary(self) -> dict[str, int]:
        return self.searcher.vocabulary

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        """Finish queued jobs, stop the worker and close the indexes."""
        self.worker.close()
        self.indexes.close()

    @property
    def alive(self) -> bool:
        return self.worker.alive

    @property
    def queued(self) -> int:
        return self.worker.queued

    @contextmanager
    def lease(self, index: str | None = None) -> Iterator[ServedIndex]:
        """The current version of ``index`` (None: the default), open until the block ends."""
        with self.indexes.get(index).lease() as handle:
            yield handle

    # ---- what routes call -----------------------------------------------------------

    async def search(self, query: Query) -> SearchResult:
        result: SearchResult = await self.worker.submit(_SearchJob(query))
        return result

    async def patch_weights(self, image_id: str, index: str) -> PatchWeights:
        result: PatchWeights = await self.worker.submit(_HeatmapJob(image_id, index))
        return result

    async def reload(self, index: str) -> bool:
        """Look for a newly published version of ``index`` now; True when one was opened."""
        changed: bool = await self.worker.submit(_ReloadJob(index))
        return changed

    # ---- on the worker thread -------------------------------------------------------

    def _process(self, jobs: list[Job]) -> None:
        self.metrics.batch_size.observe(len(jobs))
        reads = [j for j in jobs if isinstance(j, _SearchJob | _HeatmapJob)]
        with ExitStack() as leases:
            handles = {
                name: leases.enter_context(self.lease(name))
                for name in dict.fromkeys(job.index for job in reads)
            }
            searches = [j for j in jobs if isinstance(j, _SearchJob)]
            guarded(searches, lambda: self._search(searches, handles), QUIET)
            for job in jobs:
                if isinstance(job, _HeatmapJob):
                    work = partial(self.heatmaps.patch_weights, job.image_id, handles[job.index])
                    answer(job, work, QUIET)
        for job in jobs:
            if isinstance(job, _ReloadJob):
                answer(job, self.indexes.get(job.index).reload, QUIET)

    def _search(self, searches: list[_SearchJob], handles: dict[str, ServedIndex]) -> None:
        if not searches:
            return
        vectors = self.searcher.encode([job.query for job in searches])
        for job, terms in zip(searches, vectors):
            work = partial(self.searcher.lookup, job.query, terms, handles[job.query.index])
            answer(job, work, QUIET)
