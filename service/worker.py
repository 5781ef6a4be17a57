"""A batch worker: one thread that takes queued jobs a batch at a time.

pyjnius is not thread-safe, and on two cores parallel encoders only fight, so all
model and Lucene work goes through one queue to one thread. It takes up to
``max_batch`` queued jobs at a time (skipping those whose client went away), hands
them to ``handle`` together, and between batches (or every ``idle_s`` without work)
calls ``idle``. Results go back to the event loop through futures.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class WorkerBusyError(RuntimeError):
    """The queue is full or the worker stopped: the client should retry later (503)."""


@dataclass
class Job:
    """One unit of work; subclasses carry what it needs."""

    future: Future[Any] = field(default_factory=Future, init=False)


_STOP = object()


def answer(job: Job, work: Callable[[], Any], quiet: tuple[type, ...] = ()) -> None:
    """Set ``job``'s result to ``work()`` (or its exception; see :func:`guarded`)."""
    guarded([job], lambda: job.future.set_result(work()), quiet)


def guarded(jobs: Sequence[Job], work: Callable[[], None], quiet: tuple[type, ...] = ()) -> None:
    """Run ``work``; any exception fails the jobs it left unanswered (logged unless it is
    one of ``quiet``, the errors clients cause)."""
    if not jobs:
        return
    try:
        work()
    except Exception as exc:
        if not isinstance(exc, quiet):
            log.exception("worker failure")
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)


class BatchWorker:
    """Runs ``handle(batch)`` for batches of submitted jobs on one thread."""

    def __init__(
        self,
        handle: Callable[[list[Job]], None],
        idle: Callable[[], None],
        *,
        max_batch: int = 8,
        max_queue: int = 256,
        idle_s: float = 2.0,
        name: str = "search-worker",
    ) -> None:
        self.handle = handle
        self.idle = idle
        self.max_batch = max_batch
        self.idle_s = idle_s
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Finish the queued jobs and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def submit(self, job: Job) -> Any:
        """Queue ``job`` and wait for its result; :class:`WorkerBusyError` when it cannot."""
        if not self.alive:
            raise WorkerBusyError("the search worker is not running")
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise WorkerBusyError(
                f"{self._queue.maxsize} searches are queued; retry in a moment"
            ) from exc
        return await asyncio.wrap_future(job.future)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_s)
            except queue.Empty:
                self.idle()
                continue
            jobs, stop = self._drain(first)
            self.idle()
            if jobs:
                self.handle(jobs)
            if stop:
                return

    def _drain(self, first: Any) -> tuple[list[Job], bool]:
        """Up to ``max_batch`` queued jobs, skipping those whose client went away."""
        jobs: list[Job] = []
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
