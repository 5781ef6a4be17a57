"""``python -m bench.upload_memory``: the server's memory under parallel large uploads.

Sends ``--uploads`` image searches at once, each a ``--side`` x ``--side`` PNG (a smooth
gradient, so the file is small and the pixels many), to a real server on ``--index``,
and samples the server process's resident memory (``VmRSS``) every 20 ms: before, at
its peak, and ``--settle`` seconds after the last answer. Prints the figures and writes
``upload_memory.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import io
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from .common import CACHE, rss_mb, server_run
from .server import ServiceProcess

log = logging.getLogger("bench.upload_memory")


def gradient_png(side: int) -> bytes:
    """A ``side`` x ``side`` RGB PNG of two gradients (about 160 KB at 7000 pixels)."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    red = np.broadcast_to(ramp[None, :], (side, side))
    green = np.broadcast_to(ramp[:, None], (side, side))
    pixels = np.stack([red, green, np.full_like(red, 128)], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=9)
    return out.getvalue()


class Sampler:
    """Process ``pid``'s peak resident memory in the ``with`` block (every ``interval`` s)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(pid=self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_memory", description=__doc__)
    parser.add_argument("--index", type=Path, default=CACHE / "service-index")
    parser.add_argument("--uploads", type=int, default=8, help="uploads sent at once")
    parser.add_argument("--side", type=int, default=7000, help="image side in pixels")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before 'after'")
    parser.add_argument("--name", default="upload_memory", help="name of the JSON file")
    args, run = server_run(parser, "upload_memory", argv)
    png = gradient_png(args.side)
    files = {"image": ("big.png", png, "image/png")}
    with ServiceProcess(args.index) as server:
        server.wait_ready(args.startup_timeout)
        with httpx.Client(base_url=server.url, timeout=300) as http:
            http.get("/search", params={"q": "a dog on the beach"}).raise_for_status()
        before = rss_mb(pid=server.pid)

        def upload(_: int) -> tuple[int, float]:
            began = time.perf_counter()
            with httpx.Client(base_url=server.url, timeout=300) as http:
                status = http.post("/search", files=files, data={"k": "5"}).status_code
            return status, time.perf_counter() - began

        with Sampler(server.pid) as sampler, ThreadPoolExecutor(args.uploads) as pool:
            answers = list(pool.map(upload, range(args.uploads)))
            time.sleep(args.settle)
        after = rss_mb(pid=server.pid)
    run.result |= {
        "index": str(args.index),
        "png_bytes": len(png),
        "pixels": args.side * args.side,
        "uploads": args.uploads,
        "statuses": sorted({status for status, _ in answers}),
        "slowest_answer_s": round(max(seconds for _, seconds in answers), 2),
        "rss_mb": {"before": round(before), "peak": round(sampler.peak), "after": round(after)},
    }
    path = run.save(args.out / f"{args.name}.json")
    print(
        f"{args.uploads} x {args.side}x{args.side} PNG ({len(png) // 1000} KB): statuses "
        f"{run.result['statuses']}, slowest answer {run.result['slowest_answer_s']} s, "
        f"server RSS before {before:.0f} MB, peak {sampler.peak:.0f} MB, "
        f"after {after:.0f} MB (load {run.result['load_average_start']}); {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
