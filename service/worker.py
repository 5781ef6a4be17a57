"""A batch worker: one thread that takes queued jobs a batch at a time, and sheds load.

pyjnius is not thread-safe, and on two cores parallel encoders only fight, so all
model and Lucene work goes through one queue to one thread. It takes up to
``max_batch`` queued jobs at a time (skipping those whose client went away), hands
them to ``handle`` together, and between batches (or every ``idle_s`` without work)
calls ``idle``. Results go back to the event loop through futures.

Like a search cluster's admission control, a job that cannot start within
``deadline_s`` is not worked on: its caller gets :class:`OverloadedError` (429 with
``Retry-After``) at the deadline, and so does a caller that finds ``max_queue`` jobs
waiting, so what is served stays about as fast as the worker is, however many wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class WorkerStoppedError(RuntimeError):
    """The worker is not running (503)."""


class OverloadedError(RuntimeError):
    """Too busy to start the job soon; the client should retry in ``retry_after`` s (429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Job:
    """One unit of work; subclasses carry what it needs."""

    future: Future[Any] = field(default_factory=Future, init=False)
    queued: float = field(default=0.0, init=False)  # time.monotonic() when submitted


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
        max_queue: int = 64,
        deadline_s: float = 2.0,
        idle_s: float = 2.0,
        name: str = "search-worker",
    ) -> None:
        self.handle = handle
        self.idle = idle
        self.max_batch = max_batch
        self.deadline_s = deadline_s
        self.retry_after = max(1, math.ceil(deadline_s))
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
        """Queue ``job`` and wait for its result; :class:`OverloadedError` when the queue
        is full or the job has not started within the deadline."""
        if not self.alive:
            raise WorkerStoppedError("the search worker is not running")
        job.queued = time.monotonic()
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise OverloadedError(
                f"the service is busy: {self._queue.maxsize} requests are queued; "
                f"retry in {self.retry_after} s",
                self.retry_after,
            ) from exc
        waiting = asyncio.wrap_future(job.future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self.deadline_s)
        except TimeoutError:
            if job.future.cancel():  # still queued: withdraw it
                raise self._shed() from None
            return await waiting  # it started in time; let it finish
        except asyncio.CancelledError:
            waiting.cancel()  # the client went away: the worker skips the job
            raise

    def _shed(self) -> OverloadedError:
        return OverloadedError(
            f"the service is busy: the request could not start within {self.deadline_s:g} s; "
            f"retry in {self.retry_after} s",
            self.retry_after,
        )

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
        """Up to ``max_batch`` queued jobs, skipping those whose client went away and
        shedding those that waited past the deadline."""
        jobs: list[Job] = []
        item = first
        while True:
            if item is _STOP:
                return jobs, True
            if item.future.set_running_or_notify_cancel():
                if time.monotonic() - item.queued > self.deadline_s:
                    item.future.set_exception(self._shed())
                else:
                    jobs.append(item)
            if len(jobs) >= self.max_batch:
                return jobs, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False
