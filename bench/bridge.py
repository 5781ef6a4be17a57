"""``python -m bench.bridge``: how much of a Lucene query is the Python-to-Java bridge.

Each product query crosses pyjnius once per query word (a ``HashMap.put`` of a boxed
``Integer``) and once per hit read back. This script times, per real query on an impact
index that :mod:`bench.search` built (thread CPU time, so load from other processes
does not count): building the Java query alone, the whole search through
:class:`indexer.ImpactSearcher`, and the search with ``k=1`` (the fewest hits to read
back). Writes ``bridge.json`` and ``bridge.png`` into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .common import CACHE, RESULTS, Run, save_figure, table
from .corpus import load_csr, model_tag
from .engines import queries_of


def cpu_ms(action: Callable[[], object], repeats: int) -> float:
    """Median thread CPU milliseconds of ``action`` (after one untimed call)."""
    action()
    times = []
    for _ in range(repeats):
        began = time.thread_time()
        action()
        times.append(1000 * (time.thread_time() - began))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bridge", description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000, help="which bench.search index")
    parser.add_argument("--work", type=Path, default=CACHE / "search")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per query")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from indexer import ImpactSearcher
    from model import DEFAULT_CHECKPOINT, Vocabulary

    run = Run("bridge", ["python -m bench.bridge", *(argv if argv is not None else sys.argv[1:])])
    folder = next(args.work.glob(f"{model_tag()}-real*/n{args.docs}"))
    words = Vocabulary.load(DEFAULT_CHECKPOINT / "vocab.json").words
    matrix = load_csr(args.work / f"queries-{model_tag()}", mmap=False)  # bench.search's
    queries = [{words[i]: int(v) for i, v in zip(*q)} for q in queries_of(matrix)]
    searcher = ImpactSearcher(folder / "lucene" / "index")
    rows: list[dict[str, Any]] = []
    steps: list[tuple[str, Callable[[dict[str, int]], object]]] = [
        ("build the Java query (64 JNI puts)", searcher.build_query),
        ("search k=1", lambda q: searcher.search(q, 1)),
        ("search k=10", lambda q: searcher.search(q, 10)),
    ]
    for name, action in steps:
        per_query = [cpu_ms(partial(action, q), args.repeats) for q in queries]
        rows.append(
            {
                "step": name,
                "cpu_p50_ms": round(statistics.median(per_query), 3),
                "cpu_mean_ms": round(statistics.fmean(per_query), 3),
            }
        )
    searcher.close()
    run.result |= {"docs": args.docs, "queries": len(queries), "rows": rows}
    run.save(args.out / "bridge.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.barh([r["step"] for r in rows], [r["cpu_p50_ms"] for r in rows])
    ax.set(xlabel="CPU ms per query (median)", title=f"Lucene query cost at {args.docs:,} docs")
    save_figure(fig, args.out / "bridge.png")
    print(table(rows, ("step", "cpu_p50_ms", "cpu_mean_ms")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
