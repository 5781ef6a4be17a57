"""``python -m bench.encode``: encoder throughput against batch size on this machine's CPU.

Encodes real Flickr8k dev images and dev captions with the default model at each batch
size (after one warm-up batch) and reports images/s and captions/s. Writes
``encode.json`` and ``encode.png`` into ``--out`` and prints a table. ``--device cuda``
measures a GPU the same way when there is one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .common import FLICKR8K, RESULTS, Run, save_figure, table


def throughput(encode: Any, items: list[Any], batch: int, batches: int) -> dict[str, float]:
    """Items per second of ``encode(items, batch_size=batch)`` over ``batches`` batches."""
    encode(items[:batch], batch_size=batch)  # warm-up
    work = items[: batch * batches]
    began, cpu = time.perf_counter(), time.process_time()
    encode(work, batch_size=batch)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {
        "cpu_s": round(cpu, 3),
        "per_cpu_s": round(len(work) / cpu, 2),
        "items": len(work),
        "seconds": round(seconds, 3),
        "per_s": round(len(work) / seconds, 2),
        "ms_per_batch": round(1000 * seconds / batches, 1),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind in ("images", "captions"):
        mine = [r for r in rows if r["kind"] == kind]
        ax.plot([r["batch"] for r in mine], [r["per_s"] for r in mine], "o-", label=f"{kind}/s")
    ax.set(
        xscale="log",
        xlabel="batch size",
        ylabel="items per second",
        title="Encoding throughput (CPU)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encode", description=__doc__)
    parser.add_argument("--image-batches", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--caption-batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument(
        "--items", type=int, default=64, help="items timed per batch size (at least one batch)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=FLICKR8K)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    from model import load_encoder
    from model.image_encoder import load_image
    from model.training.data import load_split

    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run("encode", ["python -m bench.encode", *(argv if argv is not None else sys.argv[1:])])
    model = load_encoder().to(args.device)
    pairs = load_split(args.data, "dev")
    largest = max(args.items, max(args.image_batches + args.caption_batches))
    images = [load_image(p.image) for p in pairs[:largest]]
    captions = [p.captions[0] for p in pairs[:largest]]
    rows: list[dict[str, Any]] = []
    run.result |= {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "gpu": "not measured: no GPU was lent to this task (the device tool was unavailable)"
        if args.device == "cpu"
        else args.device,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, items, sizes, encode in (
        ("images", images, args.image_batches, model.encode_images),
        ("captions", captions, args.caption_batches, model.encode_texts),
    ):
        for batch in sizes:
            batches = max(1, args.items // batch)
            rows.append({"kind": kind, "batch": batch, **throughput(encode, items, batch, batches)})
            print(rows[-1], flush=True)
            run.save(args.out / "encode.json")  # after every row: a killed run keeps them
            plot(rows, args.out / "encode.png")
    print(table(rows, ("kind", "batch", "items", "per_s", "ms_per_batch", "per_cpu_s")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
