"""``python -m service.bench``: HTTP latency and throughput of a real server on an index.

Starts ``python -m service`` on the index in a subprocess, then, from this process (the
load generator), sends real queries over HTTP: Flickr8k dev captions as text queries
and dev photos as image uploads (each query distinct, so nothing is served from a
cache). It measures

1. latency at concurrency 1: p50 / p90 / p99 of text search and of image search;
2. throughput at concurrency ``--concurrency``: queries per second and latency;

for ``--k`` hits with explanations, query encoding included, and prints a table (and
JSON with ``--json``) with the server's own per-stage times from ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("service.bench")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flickr8k"

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


class Server:
    """``python -m service`` in a subprocess; stopped by :meth:`stop`."""

    def __init__(self, index: Path, port: int, extra: list[str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "service", "--index", str(index), "--port", str(port)]
        env = {**os.environ, "LEXSEARCH_LOG_LEVEL": "warning"}
        self.process = subprocess.Popen([*command, *extra], cwd=REPO, env=env)
        self.started = time.monotonic()

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Seconds until ``/readyz`` answers 200 (model and index loaded)."""
        while time.monotonic() - self.started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def text_request(text: str, k: int) -> Send:
    return lambda http: http.get("/search", params={"q": text, "k": k})


def image_request(path: Path, k: int) -> Send:
    data = path.read_bytes()
    files = {"image": (path.name, data, "image/jpeg")}
    return lambda http: http.post("/search", files=files, data={"k": str(k)})


def measure(server: Server, name: str, requests: list[Send], concurrency: int) -> Figures:
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

    began, cpu = time.perf_counter(), cpu_seconds(server.process.pid)
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - began
    cpu = cpu_seconds(server.process.pid) - cpu
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts, images = dev_queries(args.data)
    needed = args.warmup + args.latency_queries + args.load_queries
    if len(texts) < needed or len(images) < needed:
        raise SystemExit(f"{args.data} has {len(texts)} dev queries; the runs need {needed}")
    server = Server(args.index, args.port, args.server_args)
    try:
        startup = server.wait_ready()
        stats = httpx.get(f"{server.url}/stats").json()
        log.info(
            "server ready in %.1f s: %d images, %d captions",
            startup,
            stats["images"],
            stats["captions"],
        )
        warm = [text_request(t, args.k) for t in texts[: args.warmup]]
        warm += [image_request(p, args.k) for p in images[: args.warmup]]
        measure(server, "warm-up", warm, 1)
        a, b = args.warmup, args.warmup + args.latency_queries
        c = b + args.load_queries
        runs = [
            ("text search", [text_request(t, args.k) for t in texts[a:b]], 1),
            ("image search", [image_request(p, args.k) for p in images[a:b]], 1),
            ("text search", [text_request(t, args.k) for t in texts[b:c]], args.concurrency),
            ("image search", [image_request(p, args.k) for p in images[b:c]], args.concurrency),
        ]
        figures = []
        for name, requests, concurrency in runs:
            figures.append(measure(server, name, requests, concurrency))
            log.info("%s", figures[-1])
        return {
            "index": str(args.index),
            "images": stats["images"],
            "captions": stats["captions"],
            "model": stats["model"]["name"],
            "k": args.k,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "server_startup_s": round(startup, 1),
            "runs": [asdict(f) for f in figures],
            "server_stage_ms": stage_means(server.url),
        }
    finally:
        server.stop()


def report(result: dict[str, Any]) -> str:
    lines = [
        f"index {result['index']}: {result['images']} images, {result['captions']} captions, "
        f"model {result['model']}, k={result['k']}, {result['cpus']} CPUs, "
        f"load average {', '.join(f'{x:.1f}' for x in result['load_average'])}",
        f"server ready in {result['server_startup_s']} s",
        f"{'run':<14}{'clients':>8}{'queries':>9}{'QPS':>8}{'p50 ms':>9}{'p90 ms':>9}"
        f"{'p99 ms':>9}{'server CPU ms/query':>21}",
    ]
    for r in result["runs"]:
        lines.append(
            f"{r['name']:<14}{r['concurrency']:>8}{r['queries']:>9}{r['qps']:>8.1f}"
            f"{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['server_cpu_ms']:>21.1f}"
        )
    stages = ", ".join(f"{k} {v}" for k, v in result["server_stage_ms"].items())
    lines.append(f"server means (ms; batch_size in jobs): {stages}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--index", type=Path, required=True, help="index folder to serve")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="Flickr8k folder (dev queries)"
    )
    parser.add_argument("--k", type=int, default=10, help="hits per query")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the load runs")
    parser.add_argument("--warmup", type=int, default=10, help="queries of each kind first")
    parser.add_argument(
        "--latency-queries", type=int, default=100, help="queries of each kind at concurrency 1"
    )
    parser.add_argument(
        "--load-queries", type=int, default=200, help="queries of each kind at --concurrency"
    )
    parser.add_argument("--port", type=int, default=8765, help="port for the server")
    parser.add_argument(
        "--server-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after this goes to python -m service (e.g. --max-batch 8)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if not (args.data / "captions.jsonl").is_file():
        parser.error(f"--data {args.data} has no captions.jsonl (the Flickr8k layout)")
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
