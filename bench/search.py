"""``python -m bench.search``: the search engines side by side, by collection size.

For each size, one collection of image documents (real Flickr8k impacts first, synthetic
ones shaped like them beyond: :mod:`bench.corpus`) is indexed by every engine
(:mod:`bench.engines`) and searched with the same real dev-caption queries at the
product's query top-k. Each engine builds and searches in its own fresh process
(:mod:`bench.search_worker`). Reported per engine, size and thread count: p50 / p99
latency per query at ``--k``, QPS, recall@k against exact search (ties counted as hits),
build seconds, bytes on disk and resident memory. Writes ``search.json`` and
``search.png`` into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .common import CACHE, RESULTS, Run, latency_summary, save_figure, table
from .corpus import collection, load_csr, model_tag, real_documents, real_queries, save_csr
from .engines import ENGINES, Hits

log = logging.getLogger("bench.search")

COLUMNS = (
    "engine",
    "docs",
    "threads",
    "p50_ms",
    "p99_ms",
    "qps",
    "cpu_ms_per_query",
    "recall_at_k",
    "build_s",
    "build_cpu_s",
    "disk_mb",
    "rss_mb",
)


def recall_at_k(
    found: Sequence[Sequence[float]], exact: Sequence[Sequence[float]], k: int
) -> float:
    """Mean recall@k with ties: a found document counts when its true score reaches the
    k-th best exact score. ``found``: true scores of each query's returned documents;
    ``exact``: each query's exact top scores, best first."""
    total = 0.0
    for got, best in zip(found, exact, strict=True):
        if not best:
            total += 1.0
            continue
        kth = best[min(k, len(best)) - 1]
        total += sum(1 for s in list(got)[:k] if s >= kth) / min(k, len(best))
    return total / len(found)


def true_scores(docs: sp.csr_matrix, queries: sp.csr_matrix, hits: list[Hits]) -> list[list[float]]:
    """The exact dot products of each query with the documents it returned."""
    out = []
    for q, found in enumerate(hits):
        rows = [doc for doc, _ in found]
        scores = docs[rows] @ queries[q].T if rows else sp.csr_matrix((0, 1))
        out.append(np.asarray(scores.todense()).ravel().astype(float).tolist())
    return out


def worker(step: str, engine: str, folder: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Run :mod:`bench.search_worker` in a fresh process; its JSON figures."""
    command = [sys.executable, "-m", "bench.search_worker", step, "--engine", engine]
    command += ["--folder", str(folder), "--out", str(out)]
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        command += [f"--{key}", *map(str, values)]
    log.info("%s %s: %s", step, engine, folder)
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])
    return dict(json.loads(out.read_text()))


def measure_size(
    n: int,
    real: sp.csr_matrix,
    queries: sp.csr_matrix,
    queries_folder: Path,
    args: argparse.Namespace,
    on_row: Callable[[list[dict[str, Any]]], None],
) -> list[dict[str, Any]]:
    """Every engine on one collection of ``n`` documents: rows of the result table."""
    tag = model_tag(args.model)
    folder = args.work / f"{tag}-real{real.shape[0]}" / f"n{n}"  # new model: new data
    docs_folder = folder / "docs"
    if not (docs_folder / "shape.json").is_file():
        log.info("collection of %d documents (%d real)", n, min(n, real.shape[0]))
        save_csr(collection(real, n, seed=n), docs_folder)
    docs = load_csr(docs_folder)
    exact: list[list[float]] | None = None
    rows = []
    engines = [e for e in args.engines if n <= args.max_docs.get(e, n)]
    for name in sorted(engines, key=lambda e: e != "scipy"):  # exact search first
        artifact = folder / name
        build_json = folder / f"{name}-build.json"
        options: dict[str, Any] = {"threads": args.threads}
        label = name
        if name == "lucene-two-phase":  # one query at a time, with the plan asked for
            options = {"threads": [1], "two-phase": args.two_phase}
            label = f"{name}-{args.two_phase[0]}x{args.two_phase[1]}"
        try:
            if not build_json.is_file():
                worker(
                    "build", name, artifact, build_json, docs=docs_folder, threads=max(args.threads)
                )
            built = json.loads(build_json.read_text())
            measure_json = folder / f"{label}-measure.json"
            if args.remeasure or not measure_json.is_file():  # else resume a killed run
                worker(
                    "measure",
                    name,
                    artifact,
                    measure_json,
                    queries=queries_folder,
                    k=args.k,
                    **options,
                )
            measured = json.loads(measure_json.read_text())
        except subprocess.CalledProcessError as exc:  # e.g. killed for memory: keep going
            log.error("%s at %d documents failed: %s", name, n, exc)
            rows.append({"engine": name, "docs": n, "error": str(exc)})
            continue
        for t in options["threads"]:
            run = measured[f"threads_{t}"]
            if name == "scipy" and exact is None:
                exact = [[s for _, s in h] for h in run["hits"]]
            recall = None
            if exact is not None and name != "dense":
                recall = recall_at_k(true_scores(docs, queries, run["hits"]), exact, args.k)
            rows.append(
                {
                    "engine": label,
                    "docs": n,
                    "real_docs": min(n, real.shape[0]),
                    "threads": t,
                    **latency_summary(run["latencies_s"], run["wall_s"]),
                    "cpu_p50_ms": round(1000 * float(np.median(run["cpu_s"])), 3),
                    "cpu_ms_per_query": round(1000 * run["process_cpu_s"] / len(run["cpu_s"]), 3),
                    "qps_per_cpu_s": round(len(run["cpu_s"]) / max(run["process_cpu_s"], 1e-9), 1),
                    "recall_at_k": None if recall is None else round(recall, 4),
                    "build_s": built["build_s"],
                    "build_cpu_s": built.get("build_cpu_s"),
                    "disk_mb": round(built["disk_bytes"] / 2**20, 1),
                    "rss_mb": measured["rss_mb"],
                    "open_s": measured["open_s"],
                    "build_peak_rss_mb": built["build_peak_rss_mb"],
                    "write_input_s": built.get("write_input_s"),
                    "load_average": [built["load_average_start"], measured["load_average_end"]],
                }
            )
            log.info("%s", rows[-1])
        on_row(rows)
    return rows


def collection_facts(
    real: sp.csr_matrix, queries: sp.csr_matrix, checkpoint: Path | None = None
) -> dict[str, Any]:
    """What the real documents and queries of ``checkpoint`` (default: the shipped
    model) look like."""
    from model import DEFAULT_CHECKPOINT

    config = json.loads(((checkpoint or DEFAULT_CHECKPOINT) / "config.json").read_text())
    active = np.diff(real.indptr)
    starts, ends = queries.indptr[:-1], queries.indptr[1:]
    df = np.bincount(real.indices, minlength=real.shape[1]) / real.shape[0]
    return {
        "model": config["name"],
        "sparse": config["sparse"],
        "real_docs": real.shape[0],
        "vocab": real.shape[1],
        "doc_active_words_mean": float(active.mean()),
        "words_in_any_doc": int((df > 0).sum()),
        "max_document_frequency": float(df.max()),
        "queries": queries.shape[0],
        "query_terms_mean": float(np.diff(queries.indptr).mean()),
        "query_terms_max": int(np.diff(queries.indptr).max()),
        "impact_quartiles": np.percentile(real.data, [25, 50, 75]).tolist(),
        # the work of exact search: postings of a query's words, per document
        "query_postings_per_doc_mean": float(
            np.mean([df[queries.indices[a:b]].sum() for a, b in zip(starts, ends)])
        ),
        "docs_matching_a_query_word": float(((real @ queries.T) > 0).mean()),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Latency, QPS, resident memory and disk against collection size, per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("cpu_p50_ms", 1, "CPU ms per query (p50), 1 thread"),
        ("qps_per_cpu_s", 2, "queries per CPU-second, 2 threads"),
        ("rss_mb", 1, "resident memory (MB)"),
        ("disk_mb", 1, "on disk (MB)"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    for ax, (key, threads, title) in zip(axes, panels):
        for engine in dict.fromkeys(r["engine"] for r in rows):
            mine = [r for r in rows if r["engine"] == engine and r["threads"] == threads]
            if mine:
                ax.plot([r["docs"] for r in mine], [r[key] for r in mine], "o-", label=engine)
        ax.set(xscale="log", yscale="log", title=title, xlabel="documents")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    save_figure(fig, path)


def engine_limit(text: str) -> tuple[str, int]:
    """``ENGINE=N`` from the command line."""
    engine, _, n = text.partition("=")
    if engine not in ENGINES or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected ENGINE=N with ENGINE in {sorted(ENGINES)}")
    return engine, int(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="checkpoint folder (default: the shipped model)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", choices=sorted(ENGINES), default=sorted(ENGINES))
    parser.add_argument(
        "--max-docs",
        type=engine_limit,
        nargs="*",
        default=[],
        metavar="ENGINE=N",
        help="skip an engine above N documents (e.g. seismic=100000: its build is slow)",
    )
    parser.add_argument(
        "--two-phase",
        type=int,
        nargs=2,
        default=[16, 200],
        metavar=("LEAD", "CANDIDATES"),
        help="the lucene-two-phase engine's plan (indexer.TwoPhase): lead words, candidates",
    )
    parser.add_argument("--queries", type=int, default=200, help="dev captions as queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--real-docs", type=int, default=7000, help="real documents at most")
    parser.add_argument(
        "--encode-missing",
        action="store_true",
        help="encode real images whose backbone features are not cached (slow on a CPU)",
    )
    parser.add_argument(
        "--remeasure", action="store_true", help="measure again what a previous run measured"
    )
    parser.add_argument("--work", type=Path, default=CACHE / "search", help="scratch folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="search", help="file stem of the JSON and PNG")
    args = parser.parse_args(argv)
    args.max_docs = dict(args.max_docs)
    largest = max(args.sizes)
    if "scipy" not in args.engines or args.max_docs.get("scipy", largest) < largest:
        parser.error("recall needs the exact scipy engine in --engines, at every size")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run = Run("search", ["python -m bench.search", *(argv if argv is not None else sys.argv[1:])])
    real = real_documents(args.model, limit=args.real_docs, encode=args.encode_missing)
    queries = real_queries(args.model, n=args.queries)
    queries_folder = save_csr(queries, args.work / f"queries-{model_tag(args.model)}")
    run.result |= {
        "k": args.k,
        "collection": collection_facts(real, queries, args.model),
        "rows": [],
    }
    if "lucene-two-phase" in args.engines:
        run.result["two_phase"] = dict(zip(("lead", "candidates"), args.two_phase))
    json_path = args.out / f"{args.name}.json"
    done: list[dict[str, Any]] = []

    def save(rows: list[dict[str, Any]]) -> None:  # after every engine: keep what finished
        run.result["rows"] = done + rows
        run.save(json_path)
        plot([r for r in run.result["rows"] if "error" not in r], args.out / f"{args.name}.png")

    for n in sorted(args.sizes):
        done += measure_size(n, real, queries, queries_folder, args, save)
    save([])
    print(table(run.result["rows"], COLUMNS))
    print(
        f"load average {run.result['load_average_start']} -> {run.result['load_average_end']}"
        f" on {os.cpu_count()} CPUs; wrote {json_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
