"""``python -m model.bench``: encoder speed on this machine (a script, not a test).

Prints text-query latency at batch 1 (p50/p99), captions/s at batch 64, images/s at
batch 32, the vocabulary size and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable

import torch

from . import load_encoder
from .samples import sample_photos

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


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m model.bench", description=__doc__)
    parser.add_argument("--model", default=None, help="checkpoint folder or config name")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads"
    )
    parser.add_argument("--repeats", type=int, default=40, help="batch-1 queries to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_encoder(args.model)

    queries = [QUERIES[i % len(QUERIES)] for i in range(args.repeats)]
    latencies = []
    model.encode_texts([queries[0]])
    for query in queries:
        start = time.perf_counter()
        model.encode_texts([query])
        latencies.append(time.perf_counter() - start)
    latencies.sort()

    captions = [QUERIES[i % len(QUERIES)] + f" number {i}" for i in range(64)]
    caption_s = timed(lambda: model.encode_texts(captions, batch_size=64), 3)
    photos = list(sample_photos().values())
    images = (photos * 3)[:32]
    image_s = timed(lambda: model.encode_images(images, batch_size=32), 3)

    figures = {
        "model": model.config.name,
        "threads": args.threads,
        "query_ms_p50": 1000 * statistics.median(latencies),
        "query_ms_p99": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "captions_per_s_batch64": 64 / statistics.median(caption_s),
        "images_per_s_batch32": 32 / statistics.median(image_s),
        "vocabulary": len(model.vocab),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
