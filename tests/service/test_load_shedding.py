"""Load shedding: a search that cannot start within ``queue_deadline_s`` is answered 429
with ``Retry-After`` instead of waiting (or being worked on) ever longer, and so is one
that finds the queue full; what is served is served right."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import create_app
from service.worker import BatchWorker, Job, OverloadedError

from .conftest import index_settings

DEADLINE_S = 0.2


@dataclass
class Named(Job):
    name: str


class Blocking:
    """A batch handler whose first batch waits for :attr:`release`; records what it ran."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.handled: list[str] = []

    def __call__(self, jobs: list[Job]) -> None:
        self.release.wait(10)
        for job in jobs:
            assert isinstance(job, Named)
            self.handled.append(job.name)
            job.future.set_result(job.name)


@pytest.fixture
def blocked() -> Iterator[tuple[BatchWorker, Blocking]]:
    handler = Blocking()
    worker = BatchWorker(
        handler, lambda: None, max_batch=1, max_queue=2, deadline_s=DEADLINE_S, idle_s=0.05
    )
    worker.start()
    yield worker, handler
    handler.release.set()
    worker.close()


async def started(worker: BatchWorker, name: str) -> asyncio.Task[object]:
    task = asyncio.create_task(worker.submit(Named(name)))
    await asyncio.sleep(0.02)  # queued, and taken by the worker if it is free
    return task


def test_a_search_that_cannot_start_within_the_deadline_is_shed(
    blocked: tuple[BatchWorker, Blocking],
) -> None:
    worker, handler = blocked

    async def run() -> tuple[object, BaseException, float]:
        first = await started(worker, "first")  # the worker is stuck on it
        began = time.monotonic()
        with pytest.raises(OverloadedError) as shed:
            await worker.submit(Named("second"))
        waited = time.monotonic() - began
        handler.release.set()
        return await first, shed.value, waited

    first, shed, waited = asyncio.run(run())
    assert first == "first"
    assert DEADLINE_S <= waited < DEADLINE_S + 1, "answered at the deadline, not later"
    assert isinstance(shed, OverloadedError) and shed.retry_after >= 1
    assert "could not start within 0.2 s" in str(shed)
    time.sleep(0.1)
    assert handler.handled == ["first"], "the shed job was never worked on"


def test_a_job_that_waited_past_the_deadline_is_shed_by_the_worker_too(
    blocked: tuple[BatchWorker, Blocking],
) -> None:
    """Even when the event loop is too late to withdraw it, the worker does not run it."""
    worker, handler = blocked

    async def run() -> list[object]:
        tasks = [await started(worker, "first"), await started(worker, "second")]
        threading.Timer(DEADLINE_S + 0.1, handler.release.set).start()
        time.sleep(DEADLINE_S + 0.3)  # the loop is stuck past the release and the deadline
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, second = asyncio.run(run())
    assert first == "first" and isinstance(second, OverloadedError)
    assert handler.handled == ["first"]


def test_a_full_queue_is_shed_at_once_with_a_retry_time(
    blocked: tuple[BatchWorker, Blocking],
) -> None:
    worker, handler = blocked

    async def run() -> tuple[list[object], OverloadedError]:
        tasks = [await started(worker, name) for name in ("running", "queued-1", "queued-2")]
        began = time.monotonic()
        with pytest.raises(OverloadedError) as full:
            await worker.submit(Named("one too many"))
        assert time.monotonic() - began < DEADLINE_S / 2, "no waiting for a full queue"
        handler.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True), full.value

    answers, full = asyncio.run(run())
    assert "2 requests are queued" in str(full) and full.retry_after >= 1
    assert answers[0] == "running"


@pytest.fixture(scope="module")
def overloaded(tiny_index: Path) -> Iterator[TestClient]:
    """A service whose every search misses its (tiny) deadline."""
    settings = index_settings(tiny_index, queue_deadline_s=1e-6)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_shed_search_is_a_429_with_retry_after(overloaded: TestClient) -> None:
    for response in (
        overloaded.get("/search", params={"q": "a dog on the beach"}),
        overloaded.post("/search", json={"q": "a cat"}),
    ):
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert "busy" in response.json()["detail"]
    assert overloaded.get("/healthz").status_code == 200, "what needs no worker still answers"
