"""``python -m bench.report``: put the tables of ``bench/results/*.json`` into the README.

Each table sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in
``bench/README.md``; the prose around them is written by hand.
"""

from __future__ import annotations

import argparse
import json
import re
from functools import partial
from pathlib import Path
from typing import Any

from .common import RESULTS, table
from .ray_encode import COLUMNS as RAY_ENCODE_COLUMNS

README = Path(__file__).resolve().parent / "README.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _header(result: dict[str, Any]) -> str:
    return (
        f"_{result['started']}, `{result['command']}`; load average (1/5/15 min) "
        f"{result['load_average_start']} at the start, {result['load_average_end']} at the end._"
    )


def tables() -> dict[str, str]:
    """Markdown of every result there is, by README marker name."""
    out = {}
    if search := _load("search"):
        rows = [r for r in search["rows"] if "error" not in r]
        columns: tuple[str, ...] = (
            "engine",
            "docs",
            "threads",
            "p50_ms",
            "p99_ms",
            "qps",
            "cpu_p50_ms",
            "qps_per_cpu_s",
            "recall_at_k",
            "build_s",
            "build_cpu_s",
            "disk_mb",
            "rss_mb",
        )
        failed = [
            f"{r['engine']} at {r['docs']:,}: {r['error']}" for r in search["rows"] if "error" in r
        ]
        out["search"] = "\n\n".join(
            [_header(search), table(rows, columns)]
            + ([f"Failed: {'; '.join(failed)}"] if failed else [])
        )
    if curve := _load("curve"):
        rows = [
            {
                "engine": f["engine"],
                "metric": f["metric"],
                "slope": f["slope"],
                "sizes": ", ".join(f"{d:,}" for d in f["docs"]),
            }
            for f in curve["fits"]
        ]
        out["curve"] = table(rows, ("engine", "metric", "slope", "sizes"))
    if encode := _load("encode"):
        out["encode"] = "\n\n".join(
            [
                _header(encode),
                table(
                    encode["rows"], ("kind", "batch", "items", "per_s", "ms_per_batch", "per_cpu_s")
                ),
                f"GPU: {encode['gpu']}.",
            ]
        )
    if serve := _load("serve"):
        columns = (
            "name",
            "concurrency",
            "queries",
            "qps",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "server_cpu_ms",
        )
        stages = ", ".join(f"{k} {v}" for k, v in serve.get("server_stage_ms", {}).items())
        out["serve"] = "\n\n".join(
            [
                _header(serve),
                table(serve["rows"], columns),
                f"Server means per batch (ms; batch_size in queries): {stages}.",
            ]
        )
    if clauses := _load("clauses"):
        text, image = clauses["text_query_terms"], clauses["image_query_terms"]
        out["clauses"] = "\n\n".join(
            [
                _header(clauses),
                table(clauses["raw_anserini"], ("terms", "limit", "refused", "hits", "error")),
                f"Real queries at query top-k {clauses['query_top_k']}: text up to "
                f"{text['max']} words ({text['queries']} queries), image up to "
                f"{image['max']} words ({image['queries']} queries). The product's own search "
                f"with {clauses['product_search_at_longest']['terms']} words returned "
                f"{clauses['product_search_at_longest']['hits']} hits.",
            ]
        )
    if ray_encode := _load("ray_encode"):
        overhead = ray_encode["ray_overhead_at_one_worker_percent"]
        out["ray_encode"] = "\n\n".join(
            [
                _header(ray_encode),
                table(ray_encode["rows"], RAY_ENCODE_COLUMNS),
                f"Ray with one actor against the local run with one encoder thread: "
                f"{overhead['steady_img_s']} % slower once running (steady), "
                f"{overhead['pipeline_img_s']} % over the {ray_encode['sizes'][1]}-image "
                f"job's whole encoding stage, {overhead['encoder_img_s']} % in the model "
                "itself (negative: faster).",
            ]
        )
    if shards := _load("shards"):
        columns = ("engine", "docs", "clients", "p50_ms", "p99_ms", "qps", "recall_at_k")
        out["shards"] = "\n\n".join([_header(shards), table(shards["rows"], (*columns, "build_s"))])
    if bridge := _load("bridge"):
        out["bridge"] = "\n\n".join(
            [_header(bridge), table(bridge["rows"], ("step", "cpu_p50_ms", "cpu_mean_ms"))]
        )
    return out


def _fill(markdown: str, match: re.Match[str]) -> str:
    return match.group(1) + markdown + "\n" + match.group(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    for name, markdown in tables().items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(partial(_fill, markdown), text)
    args.readme.write_text(text)
    print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
