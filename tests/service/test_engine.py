"""The search worker: batching, abandoned requests, a full queue, a stopped worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.engine import SearchEngine
from service.metrics import Metrics
from service.query import Query, Target
from service.startup import open_engine
from service.worker import OverloadedError, WorkerStoppedError

from .conftest import index_settings

TEXTS = ["a dog on the beach", "a cat on a sofa", "a man rides a bike", "two children play"]


@pytest.fixture
def engine(tiny_index: Path) -> Iterator[SearchEngine]:
    engine = open_engine(index_settings(tiny_index, max_batch=4, max_queue=8), Metrics())
    engine.start()
    yield engine
    engine.close()


def query(text: str) -> Query:
    return Query("photos", Target.captions, 3, text=text)


def test_concurrent_searches_are_answered_in_batches_like_single_ones(
    engine: SearchEngine,
) -> None:
    async def run() -> tuple[list[object], list[object]]:
        alone = [await engine.search(query(t)) for t in TEXTS]
        together = await asyncio.gather(*(engine.search(query(t)) for t in TEXTS))
        return alone, list(together)

    alone, together = asyncio.run(run())
    assert together == alone
    batches = engine.metrics.batch_size.collect()[0].samples
    count = next(s.value for s in batches if s.name.endswith("_count"))
    assert count < 2 * len(TEXTS), "the gathered searches shared batches"


def test_abandoned_requests_are_skipped_and_the_rest_answered(
    engine: SearchEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> list[object]:
        tasks = [asyncio.create_task(engine.search(query(TEXTS[i % 4]))) for i in range(8)]
        await asyncio.sleep(0)  # every task has queued its job
        for task in tasks[::2]:
            task.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with caplog.at_level(logging.ERROR):
        results = asyncio.run(run())
    assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
    assert all(r.hits for r in results[1::2])  # type: ignore[attr-defined]
    assert engine.alive and not caplog.records


def test_a_full_queue_answers_busy(engine: SearchEngine) -> None:
    async def run() -> list[object]:
        return await asyncio.gather(
            *(engine.search(query(TEXTS[i % 4])) for i in range(60)), return_exceptions=True
        )

    results = asyncio.run(run())
    busy = [r for r in results if isinstance(r, OverloadedError)]
    assert busy and "requests are queued; retry" in str(busy[0])
    assert all(r.hits for r in results if not isinstance(r, Exception))  # type: ignore[attr-defined]


def test_a_stopped_worker_answers_busy(tiny_index: Path) -> None:
    engine = open_engine(index_settings(tiny_index), Metrics())
    engine.start()
    engine.close()
    with pytest.raises(WorkerStoppedError, match="not running"):
        asyncio.run(engine.search(query("a dog")))
