"""``python -m bench.serve``: the HTTP service's latency and QPS at several concurrencies.

Serves an index of Flickr8k dev images with ``python -m service`` and loads it from this
process (a separate load generator), with :mod:`bench.load`'s client: distinct dev
captions as text queries and dev photos as image uploads, at each ``--concurrency``.
Builds the index first when it is missing (``python -m indexer build`` of the first
``--images`` dev images, no captions). The server runs without a queue deadline, so
what is measured is latency under queueing, never load shedding (:mod:`bench.shed`
measures that). Writes ``serve.json`` and ``serve.png`` into
``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from .common import CACHE, FLICKR8K, ensure_index, save_figure, server_run, table
from .load import dev_queries, image_request, measure, stage_means, text_request
from .server import ServiceProcess

log = logging.getLogger("bench.serve")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, qps) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = [r for r in rows if r["name"] == name]
        xs = [r["concurrency"] for r in mine]
        line = lat.plot(xs, [r["p50_ms"] for r in mine], "o-", label=f"{name} p50")
        lat.plot(
            xs, [r["p99_ms"] for r in mine], "s--", color=line[0].get_color(), label=f"{name} p99"
        )
        qps.plot(xs, [r["qps"] for r in mine], "o-", label=name)
    lat.set(
        xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms", title="HTTP latency"
    )
    qps.set(xscale="log", xlabel="concurrent clients", ylabel="queries/s", title="HTTP throughput")
    for ax in (lat, qps):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--index", type=Path, default=CACHE / "service-index")
    parser.add_argument("--images", type=int, default=1000, help="dev images when building")
    parser.add_argument("--data", type=Path, default=FLICKR8K)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--text-queries",
        type=int,
        nargs="+",
        default=[40, 96, 128],
        help="text queries at each concurrency",
    )
    parser.add_argument(
        "--image-queries",
        type=int,
        nargs="+",
        default=[20, 48, 64],
        help="image queries at each concurrency",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    args, run = server_run(parser, "serve", argv)
    ensure_index(args.index, args.data, args.images)
    texts, images = dev_queries(args.data)
    # latency under queueing, not load shedding (bench.shed measures that): no deadline
    # a request of these runs could reach
    server = ServiceProcess(args.index, "--queue-deadline-s", "600", port=args.port)
    rows: list[dict[str, Any]] = []
    run.result |= {"index": str(args.index), "k": args.k, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        run.result["server_startup_s"] = round(server.wait_ready(args.startup_timeout), 1)
        run.result["stats"] = httpx.get(f"{server.url}/stats").json()
        measure(
            server,
            "warm-up",
            [text_request(t, args.k) for t in texts[-5:]]
            + [image_request(p, args.k) for p in images[-5:]],
            1,
        )
        used_t = used_i = 0
        for c, nt, ni in zip(args.concurrency, args.text_queries, args.image_queries):
            text = [text_request(t, args.k) for t in texts[used_t : used_t + nt]]
            image = [image_request(p, args.k) for p in images[used_i : used_i + ni]]
            used_t, used_i = used_t + nt, used_i + ni
            for name, requests in (("text", text), ("image", image)):
                rows.append(asdict(measure(server, name, requests, c)))
                log.info("%s", rows[-1])
                run.save(args.out / "serve.json")  # after every row: a killed run keeps them
        run.result["server_stage_ms"] = stage_means(server.url)
    finally:
        server.stop()
    run.save(args.out / "serve.json")
    plot(rows, args.out / "serve.png")
    print(
        table(rows, ("name", "concurrency", "queries", "qps", "p50_ms", "p99_ms", "server_cpu_ms"))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
