"""One engine in a fresh process: ``build`` its artifact, or ``measure`` it (internal).

Run by :mod:`bench.search`, one process per engine, size and step, so that resident
memory is the engine's own and one engine's garbage does not slow the next. Writes its
figures (and, for ``measure``, every query's hits) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from indexer.lucene import TwoPhase

from .common import load_average, rss_mb
from .corpus import load_csr
from .engines import ENGINES, Engine, LuceneEngine, LuceneTwoPhaseEngine, queries_of


def _words() -> tuple[str, ...]:
    from model import DEFAULT_CHECKPOINT, Vocabulary

    return Vocabulary.load(DEFAULT_CHECKPOINT / "vocab.json").words


def build(engine: Engine, docs_folder: Path, threads: int) -> dict[str, Any]:
    docs = load_csr(docs_folder)
    cpu = time.process_time()
    seconds = engine.build(docs, _words(), threads)
    figures: dict[str, Any] = {
        "build_s": None if seconds is None else round(seconds, 2),
        "build_cpu_s": round(time.process_time() - cpu, 2),
        "disk_bytes": engine.disk_bytes(),
    }
    if hasattr(engine, "json_s"):
        figures["write_input_s"] = round(engine.json_s, 2)
    return figures | {"build_peak_rss_mb": round(rss_mb("VmHWM"), 1)}


def measure(
    engine: Engine, queries_folder: Path, k: int, threads: list[int], warmup: int
) -> dict[str, Any]:
    """Per thread count: each query's latency (its group's wall time) and CPU time (its
    share of the process's CPU time, all threads, during its group), and the hits."""
    words = _words()
    queries = queries_of(load_csr(queries_folder, mmap=False))
    baseline = rss_mb()
    began = time.perf_counter()
    engine.open(words)
    figures: dict[str, Any] = {"open_s": round(time.perf_counter() - began, 2)}
    prepared = [engine.query(q) for q in queries]
    for t in threads:
        warm = prepared if warmup < 0 else prepared[:warmup]
        for start in range(0, len(warm), t):  # JIT, caches: steady state before timing
            engine.search_group(warm[start : start + t], k, t)
        latencies: list[float] = []
        cpu: list[float] = []
        hits = []
        began, cpu_began = time.perf_counter(), time.process_time()
        for start in range(0, len(prepared), t):
            group = prepared[start : start + t]
            g0, c0 = time.perf_counter(), time.process_time()
            hits += engine.search_group(group, k, t)
            latencies += [time.perf_counter() - g0] * len(group)
            cpu += [(time.process_time() - c0) / len(group)] * len(group)
        figures[f"threads_{t}"] = {
            "latencies_s": latencies,
            "cpu_s": cpu,
            "wall_s": time.perf_counter() - began,
            "process_cpu_s": time.process_time() - cpu_began,
            "hits": hits,
        }
    figures["rss_mb"] = round(rss_mb() - baseline, 1)
    figures["peak_rss_mb"] = round(rss_mb("VmHWM"), 1)
    engine.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_worker", description=__doc__)
    parser.add_argument("step", choices=["build", "measure"])
    parser.add_argument("--engine", choices=sorted(ENGINES), required=True)
    parser.add_argument("--folder", type=Path, required=True, help="the engine's artifact")
    parser.add_argument("--docs", type=Path, help="build: the collection (bench.corpus.save_csr)")
    parser.add_argument("--queries", type=Path, help="measure: the query impacts")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--warmup", type=int, default=-1, help="queries answered before timing (-1: all, once)"
    )
    parser.add_argument(
        "--two-phase", type=int, nargs=2, metavar=("LEAD", "CANDIDATES"), help="lucene-two-phase"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # parallelism comes from the groups, not from BLAS inside a query
    engine = ENGINES[args.engine](args.folder)
    if isinstance(engine, LuceneTwoPhaseEngine) and args.two_phase:
        engine.plan = TwoPhase(*args.two_phase)
    if isinstance(engine, LuceneEngine):
        from indexer.lucene import set_heap

        set_heap(3)  # the JVM would take a quarter of RAM
    start_load = load_average()
    if args.step == "build":
        figures = build(engine, args.docs, max(args.threads))
    else:
        figures = measure(engine, args.queries, args.k, args.threads, args.warmup)
    figures |= {"load_average_start": start_load, "load_average_end": load_average()}
    args.out.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
