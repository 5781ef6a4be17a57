"""The load generator of :mod:`bench.serve`: real queries over HTTP, timed per request.

Flickr8k dev captions are the text queries and dev photos the image uploads (each query
distinct, so nothing is served from a cache); :func:`measure` sends them from
``concurrency`` clients, each on its own connection, and reports latency percentiles,
QPS and the server process's CPU time per query; :func:`sustain` keeps clients sending
for a time and records every answer's status (load shedding).
"""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .server import ServiceProcess, cpu_seconds

Send = Callable[[httpx.Client], httpx.Response]


@dataclass
class Figures:
    """One measured run: how many queries, how fast, at which concurrency."""

    name: str
    concurrency: int
    queries: int
    seconds: float
    qps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_ms: float  # the server process's CPU time per query (all its threads)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def dev_queries(data: Path) -> tuple[list[str], list[Path]]:
    """Flickr8k dev captions (one per image, distinct) and dev image paths."""
    texts, images = [], []
    for line in (data / "captions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "dev":
            texts.append(row["captions"][0].strip().rstrip(" ."))
            images.append(data / "images" / row["image"])
    return list(dict.fromkeys(texts)), images


def text_request(text: str, k: int) -> Send:
    return lambda http: http.get("/search", params={"q": text, "k": k})


def image_request(path: Path, k: int) -> Send:
    data = path.read_bytes()
    files = {"image": (path.name, data, "image/jpeg")}
    return lambda http: http.post("/search", files=files, data={"k": str(k)})


def measure(server: ServiceProcess, name: str, requests: list[Send], concurrency: int) -> Figures:
    """Send every request, ``concurrency`` at a time, each client on its own connection."""
    latencies: list[float] = []
    lock = threading.Lock()
    pending: Iterator[Send] = iter(requests)

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            while True:
                with lock:
                    send = next(pending, None)
                if send is None:
                    return
                began = time.perf_counter()
                response = send(http)
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)

    began, cpu = time.perf_counter(), cpu_seconds(server.pid)
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - began
    cpu = cpu_seconds(server.pid) - cpu
    ms = [1000 * v for v in latencies]
    return Figures(
        name=name,
        concurrency=concurrency,
        queries=len(ms),
        seconds=round(seconds, 2),
        qps=round(len(ms) / seconds, 2),
        p50_ms=round(percentile(ms, 0.50), 1),
        p90_ms=round(percentile(ms, 0.90), 1),
        p99_ms=round(percentile(ms, 0.99), 1),
        mean_ms=round(statistics.fmean(ms), 1),
        server_cpu_ms=round(1000 * cpu / len(ms), 1),
    )


@dataclass(frozen=True)
class Answer:
    """One request of :func:`sustain`: when it was sent, how long it took, its status."""

    began: float  # seconds since the load started
    seconds: float
    status: int  # 0: no answer (a connection error or the client's timeout)


def sustain(
    server: ServiceProcess, requests: list[Send], clients: int, seconds: float
) -> list[Answer]:
    """``clients`` clients, each on its own connection, sending ``requests`` in turn (from
    the start again when all were sent) for ``seconds``; after a 429 a client waits the
    ``Retry-After`` it was told, as a well-behaved client does."""
    answers: list[Answer] = []
    lock = threading.Lock()
    pending = itertools.cycle(requests)
    start = time.perf_counter()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            while (began := time.perf_counter()) < start + seconds:
                with lock:
                    send = next(pending)
                try:
                    response = send(http)
                    status, retry = response.status_code, response.headers.get("retry-after")
                except httpx.HTTPError:
                    status, retry = 0, None
                with lock:
                    answers.append(Answer(began - start, time.perf_counter() - began, status))
                if status == 429:
                    left = start + seconds - time.perf_counter()
                    time.sleep(max(0.0, min(float(retry or 1), left)))

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return answers


def stage_means(url: str) -> dict[str, float]:
    """The server's mean milliseconds per worker stage and its mean batch size."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            key = s.labels.get("stage", "batch_size")
            if s.name.endswith("_sum"):
                sums[key] = s.value
            elif s.name.endswith("_count"):
                counts[key] = s.value
    wanted = ("encode_text", "encode_image", "lucene", "metadata", "batch_size")
    means = {k: sums[k] / counts[k] for k in wanted if counts.get(k)}
    return {k: round(v if k == "batch_size" else 1000 * v, 2) for k, v in means.items()}
