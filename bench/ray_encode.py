"""``python -m bench.ray_encode``: images/s of ``python -m indexer build`` on this machine,
locally and through Ray with 1 and 2 CPU encoder actors.

Every run is the real CLI in a fresh process on Flickr8k dev images (images only, the
default model), into a new index. Ray runs join a local Ray cluster this process starts
(3 logical CPUs, so that 2 one-CPU actors and a decoding task fit; the machine's cores
are shared by all of them). Each configuration runs at two job sizes (``--sizes``), the
configurations alternating, ``--repeats`` rounds. Reported, as medians: ``pipeline``
images/s of the larger job (the summary's encoding stage, from the first image decoded to
the last shard committed, Ray's start of its actors included), ``steady`` images/s (the
extra images of the larger job over its extra pipeline seconds: the rate once running,
whatever a job pays once), ``startup_s`` (what the pipeline takes beyond its images at the
steady rate), ``encoder_img_s`` (the model's own rate per encoder: images over the
seconds the encoders spent in it) and the larger job's wall time. The overhead at one
worker compares Ray with one actor against the local run with one encoder thread. Writes
``ray_encode.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from indexer.options import JobOptions

from .common import CACHE, FLICKR8K, REPO, RESULTS, Run, table

log = logging.getLogger("bench.ray_encode")

# one encoder thread beside one decoding process: the local counterpart of one actor
# beside decoding tasks
CONFIGS: dict[str, list[str]] = {
    "local, 1 thread": ["--workers", "1", "--threads", "1"],
    "local, 2 threads": ["--workers", "1", "--threads", "2"],
    "ray, 1 actor": ["--ray-actors", "1", "--ray-actor-cpus", "1"],
    "ray, 2 actors": ["--ray-actors", "2", "--ray-actor-cpus", "1"],
}
COLUMNS = (
    "config",
    "rounds",
    "pipeline_img_s",
    "steady_img_s",
    "startup_s",
    "encoder_img_s",
    "wall_s",
    "load_average",
)


def dev_manifest(data: Path, images: int, path: Path) -> Path:
    """The first ``images`` Flickr8k dev images as an images-only manifest."""
    rows = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    dev = [row for row in rows if row["split"] == "dev"][:images]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": r["image"], "path": r["image"]}) + "\n" for r in dev))
    return path


def run_build(
    manifest: Path, data: Path, out: Path, config: str, args: argparse.Namespace, address: str
) -> dict[str, Any]:
    """One ``python -m indexer build`` in ``config``: images encoded, pipeline and wall s."""
    flags = CONFIGS[config] + (["--ray", address] if config.startswith("ray") else [])
    summary = out.parent / f"{out.name}.json"
    command = [sys.executable, "-m", "indexer", "build", "--manifest", str(manifest)]
    command += ["--root", str(data / "images"), "--out", str(out), "--no-captions", "--quiet"]
    command += ["--device", "cpu", "--shard-size", str(args.shard_size)]
    command += ["--batch-size", str(args.batch_size), "--summary-json", str(summary), *flags]
    began = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO)
    wall = time.monotonic() - began
    result = json.loads(summary.read_text())
    shutil.rmtree(out)
    return {
        "images": result["encoded_images"],
        "pipeline_s": result["timings"]["pipeline"],
        "wall_s": wall,
        "timings": result["timings"],
    }


def round_figures(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    """One configuration's figures from a round's two job sizes."""
    steady = (large["images"] - small["images"]) / (large["pipeline_s"] - small["pipeline_s"])
    return {
        "pipeline_img_s": large["images"] / large["pipeline_s"],
        "steady_img_s": steady,
        "startup_s": large["pipeline_s"] - large["images"] / steady,
        # the model alone, per encoder (actors' seconds add up): what the pipeline costs it
        "encoder_img_s": large["images"] / large["timings"]["encode_images"],
        "wall_s": large["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_encode", description=__doc__)
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=[500, 1000], help="Flickr8k dev images per job"
    )
    parser.add_argument("--shard-size", type=int, default=125)
    parser.add_argument("--batch-size", type=int, default=JobOptions.batch_size)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--object-store-mb", type=int, default=1500, help="the model is 680 MB")
    parser.add_argument("--data", type=Path, default=FLICKR8K)
    parser.add_argument("--work", type=Path, default=CACHE / "ray_encode")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import ray

    run = Run(
        "ray_encode", ["python -m bench.ray_encode", *(argv if argv is not None else sys.argv[1:])]
    )
    manifests = [dev_manifest(args.data, n, args.work / f"dev-{n}.jsonl") for n in args.sizes]
    ray.init(
        address="local",  # a cluster of its own, never one already running here
        num_cpus=3,
        object_store_memory=args.object_store_mb * 2**20,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    address = ray.get_runtime_context().gcs_address
    rounds: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeats):
            for name in args.configs:
                load = os.getloadavg()[0]
                small, large = (
                    run_build(manifest, args.data, args.work / "index", name, args, address)
                    for manifest in manifests
                )
                figures = round_figures(small, large)
                load_average = [round(load, 2), round(os.getloadavg()[0], 2)]
                rounds.append(
                    {"config": name, "repeat": repeat, "load_average": load_average}
                    | figures
                    | {"runs": [small, large]}
                )
                log.info("%s round %d: %s, load %s", name, repeat, figures, load_average)
    finally:
        ray.shutdown()
    rows = []
    for name in args.configs:
        mine = [r for r in rounds if r["config"] == name]
        loads = [value for r in mine for value in r["load_average"]]
        rows.append(
            {
                "config": name,
                "rounds": len(mine),
                **{
                    key: round(statistics.median(r[key] for r in mine), 2)
                    for key in (
                        "pipeline_img_s",
                        "steady_img_s",
                        "startup_s",
                        "encoder_img_s",
                        "wall_s",
                    )
                },
                "load_average": f"{min(loads):.1f}-{max(loads):.1f}",
            }
        )
    by_name = {row["config"]: row for row in rows}
    overhead = {}
    if {"local, 1 thread", "ray, 1 actor"} <= set(by_name):
        for key in ("pipeline_img_s", "steady_img_s", "encoder_img_s"):
            local, distributed = by_name["local, 1 thread"][key], by_name["ray, 1 actor"][key]
            overhead[key] = round(100 * (local - distributed) / local, 1)  # % slower
    run.result |= {
        "sizes": args.sizes,
        "shard_size": args.shard_size,
        "batch_size": args.batch_size,
        "rounds": rounds,
        "rows": rows,
        "ray_overhead_at_one_worker_percent": overhead,
    }
    path = run.save(args.out / "ray_encode.json")
    print(table(rows, COLUMNS))
    print(f"Ray at one actor vs local at one thread, % slower: {overhead}")
    start, end = run.result["load_average_start"], run.result["load_average_end"]
    print(f"load average {start} -> {end}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
