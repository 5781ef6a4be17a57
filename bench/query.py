"""``python -m bench.query``: what one query costs to encode on this machine, at batch 1.

Times the text queries a user types (``QUERIES``, cycled) with each of the model's
query encoders (``lm``, ``sentence``, ``lookup``: see ``model.query_encoders``) and
sample photos as image queries, one at a time after a warm-up, and reports p50 / p99
milliseconds and the process's peak resident memory. Writes ``query.json`` into
``--out`` and prints it. Throughput at larger batches is :mod:`bench.encode`'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .common import RESULTS, Run, latency_summary, rss_mb

QUERIES = (
    "a dog runs on the beach",
    "two children playing in a fountain",
    "a man rides a bike",
    "a black and white dog jumps over a log",
    "people walking down a busy city street",
    "a girl in a pink dress",
    "a surfer riding a big wave",
    "a cat sleeping on a sofa",
)


def latencies(encode: Callable[[object], object], items: list[object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` batch-1 calls over ``items`` (after one warm-up)."""
    encode(items[0])
    seconds = []
    for i in range(repeats):
        began = time.perf_counter()
        encode(items[i % len(items)])
        seconds.append(time.perf_counter() - began)
    return seconds


def encode_text(model: Any, encoder: str, text: object) -> object:
    """One text query through one query encoder, up to the vector a search sends."""
    weights = model.encode_queries([text], encoder).word_weights
    return model.term_dicts(weights, "query")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__)
    parser.add_argument("--model", default=None, help="checkpoint folder or config name")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--repeats", type=int, default=40, help="queries of each kind to time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    from model import load_encoder
    from model.samples import sample_photos

    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run("query", ["python -m bench.query", *(argv if argv is not None else sys.argv[1:])])
    model = load_encoder(args.model)
    photos: list[object] = list(sample_photos().values())
    texts: list[object] = list(QUERIES)
    runs: list[tuple[str, list[object], Callable[[object], object]]] = [
        (f"text, {name}", texts, partial(encode_text, model, name))
        for name in model.config.query_encoders
    ]
    runs.append(("image", photos, lambda p: model.encode_images([p])))  # type: ignore[list-item]
    rows = []
    for kind, items, encode in runs:
        seconds = latencies(encode, items, args.repeats)
        default = kind in (f"text, {model.config.query_encoder}", "image")
        rows.append({"kind": kind, "default": default, **latency_summary(seconds, sum(seconds))})
    run.result |= {
        "model": model.config.name,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "peak_rss_mb": round(rss_mb("VmHWM"), 1),
    }
    path = run.save(args.out / "query.json")
    for row in rows:
        print(row)
    print(f"peak RSS {run.result['peak_rss_mb']} MB; figures in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
