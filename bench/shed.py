"""``python -m bench.shed``: the service overloaded, alone and while an indexer runs.

``--clients`` clients (32) send distinct Flickr8k dev captions as text queries for
``--seconds`` (60) to a real server (:class:`~bench.server.ServiceProcess`, the service's
default settings) on an index of the first 1,000 dev images (built when missing); a
client that is shed (429) waits the ``Retry-After`` it was told. The second run does the
same on a copy of the index while ``python -m indexer add`` adds the next ``--add``
dev images, started midway on this machine (the service picks up the new version by
itself). For each run it prints what was served (p50, p99, QPS), how many requests were
shed and how many got a 5xx, and the longest times in which no client got any answer
and in which nothing was served, with the load average; writes ``shed.json`` into
``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .common import CACHE, FLICKR8K, REPO, ensure_index, latency_summary, server_run, table
from .load import Answer, Send, dev_queries, sustain, text_request
from .server import ServiceProcess

log = logging.getLogger("bench.shed")

INDEXED = 1000  # dev images in the index served


def figures(answers: list[Answer], seconds: float) -> dict[str, Any]:
    """Served latency and QPS, shed and failed counts, and the longest silences."""
    served = [a.seconds for a in answers if a.status == 200]
    return {
        "requests": len(answers),
        "served": len(served),
        **latency_summary(served, seconds),
        "max_ms": round(1000 * max(served), 1),
        "shed_429": sum(a.status == 429 for a in answers),
        "errors_5xx": sum(500 <= a.status < 600 for a in answers),
        "no_answer": sum(a.status == 0 for a in answers),
        "other": sorted({a.status for a in answers} - {0, 200, 429} - set(range(500, 600))),
        "no_answer_for_s": longest_gap(answers, seconds, lambda a: a.status != 0),
        "nothing_served_for_s": longest_gap(answers, seconds, lambda a: a.status == 200),
    }


def longest_gap(answers: list[Answer], seconds: float, counts: Callable[[Answer], bool]) -> float:
    """The longest time in the run in which no answer that ``counts`` arrived."""
    ends = sorted([0.0, seconds, *(a.began + a.seconds for a in answers if counts(a))])
    return round(max(b - a for a, b in itertools.pairwise(ends)), 2)


def add_manifest(data: Path, out: Path, count: int) -> Path:
    """The ``count`` dev images after the indexed ones, as an indexer manifest."""
    rows = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    dev = [r for r in rows if r["split"] == "dev"][INDEXED : INDEXED + count]
    out.write_text("".join(json.dumps({"id": r["image"], "path": r["image"]}) + "\n" for r in dev))
    return out


def load_run(
    index: Path, texts: list[str], args: argparse.Namespace, add: Path | None
) -> dict[str, Any]:
    """One run of the load; with ``add``, ``indexer add`` of that manifest midway."""
    indexer: dict[str, Any] = {}
    with ServiceProcess(index) as server:
        server.wait_ready(args.startup_timeout)
        warm = [text_request(t, args.k) for t in texts[-5:]]
        sustain(server, warm, 1, 5.0)
        requests = [text_request(t, args.k) for t in texts[:-5]]
        if add is None:
            answers = sustain(server, requests, args.clients, args.seconds)
        else:
            answers = _with_indexer(server, index, requests, args, add, indexer)
        reloads = httpx.get(f"{server.url}/stats").json()["reloads"]
    return {"with_indexer": add is not None, **figures(answers, args.seconds)} | {
        "reloads": reloads,
        **indexer,
    }


def _with_indexer(
    server: ServiceProcess,
    index: Path,
    requests: list[Send],
    args: argparse.Namespace,
    manifest: Path,
    facts: dict[str, Any],
) -> list[Answer]:
    """:func:`sustain` in a thread while ``python -m indexer add`` runs from midway."""
    command = [
        *(sys.executable, "-m", "indexer", "add", "--manifest", str(manifest)),
        *("--root", str(args.data / "images"), "--index", str(index)),
        *("--no-captions", "--quiet"),
    ]
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(sustain, server, requests, args.clients, args.seconds)
        time.sleep(args.seconds / 2)
        began = time.monotonic()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        facts |= {
            "indexer_command": " ".join(["python", *command[1:]]),
            "indexer_started_s": round(args.seconds / 2, 1),
            "indexer_seconds": round(time.monotonic() - began, 1),
            "indexer_returncode": done.returncode,
        }
        if done.returncode:
            log.error("indexer add failed: %s", done.stderr[-2000:])
        return load.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shed", description=__doc__)
    parser.add_argument("--index", type=Path, default=CACHE / "service-index")
    parser.add_argument("--data", type=Path, default=FLICKR8K)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="load per run")
    parser.add_argument("--add", type=int, default=100, help="dev images indexer add adds")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-indexer", action="store_true", help="skip the second run")
    args, run = server_run(parser, "shed", argv)
    ensure_index(args.index, args.data, INDEXED)
    texts, _ = dev_queries(args.data)
    rows: list[dict[str, Any]] = []
    run.result |= {"index": str(args.index), "clients": args.clients, "rows": rows}
    rows.append(load_run(args.index, texts, args, None))
    log.info("%s", rows[-1])
    if not args.no_indexer:
        CACHE.mkdir(parents=True, exist_ok=True)
        copy = CACHE / "shed-add-index"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(args.index, copy, symlinks=True)
        manifest = add_manifest(args.data, CACHE / "shed-add.jsonl", args.add)
        rows.append(load_run(copy, texts, args, manifest))
        log.info("%s", rows[-1])
        shutil.rmtree(copy, ignore_errors=True)
    path = run.save(args.out / "shed.json")
    columns = ("with_indexer", "served", "qps", "p50_ms", "p99_ms", "max_ms", "shed_429")
    print(table(rows, (*columns, "errors_5xx", "no_answer_for_s", "nothing_served_for_s")))
    print(f"load average {run.result['load_average_start']} -> {run.result['load_average_end']}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
