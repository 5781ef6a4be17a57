"""What every benchmark shares: machine facts, load, memory, latency summaries, output."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .load import percentile

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "cache" / "bench"
FLICKR8K = REPO.parent / "shared" / "data" / "flickr8k"

log = logging.getLogger("bench")


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write as PNG (110 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and OS of this machine (``lscpu``, ``/proc/meminfo``)."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Thread(s) per core", "L3 cache"):
                info[key.strip().lower().replace(" ", "_")] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    if mem:
        info["ram_gib"] = round(int(mem.group(1)) / 2**20, 1)
    return info


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def rss_mb(field: str = "VmRSS", pid: int | str = "self") -> float:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``) in MB (this one's
    unless ``pid`` is given)."""
    match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (or of ``path`` itself when it is a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def latency_summary(seconds: Sequence[float], wall: float) -> dict[str, float]:
    """p50 / p99 / mean in milliseconds and queries per second over ``wall`` seconds."""
    ms = [1000 * s for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "qps": round(len(ms) / wall, 2),
    }


class Run:
    """One benchmark run: header facts, load at start and end, and its JSON output."""

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.result: dict[str, Any] = {
            "benchmark": name,
            "command": " ".join(command),
            "machine": machine(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average_start": load_average(),
        }

    def save(self, path: Path) -> Path:
        """Write the result as JSON (with the load average now as the end load)."""
        self.result["load_average_end"] = load_average()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.result, indent=2) + "\n")
        return path


def server_run(
    parser: argparse.ArgumentParser, name: str, argv: list[str] | None
) -> tuple[argparse.Namespace, Run]:
    """Arguments and the :class:`Run` of a benchmark against the HTTP service:
    ``--startup-timeout`` and ``--out`` added to ``parser``, logging set up."""
    parser.add_argument("--startup-timeout", type=float, default=1200, help="seconds to wait")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    given = argv if argv is not None else sys.argv[1:]
    return args, Run(name, [f"python -m bench.{name}", *given])


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (Markdown pipe syntax) of ``columns`` of ``rows``."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def ensure_index(index: Path, data: Path, images: int) -> None:
    """Build an images-only index of the first ``images`` dev images unless there is one."""
    from indexer import IndexNotFoundError, open_published

    try:
        open_published(index)
        return
    except IndexNotFoundError:
        pass
    manifest = index.parent / f"{index.name}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    dev = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    dev = [row for row in dev if row["split"] == "dev"][:images]
    manifest.write_text(
        "".join(json.dumps({"id": r["image"], "path": r["image"]}) + "\n" for r in dev)
    )
    command = [
        sys.executable,
        "-m",
        "indexer",
        "build",
        "--manifest",
        str(manifest),
        "--root",
        str(data / "images"),
        "--out",
        str(index),
        "--no-captions",
        "--quiet",
    ]
    log.info("building the index: %s", " ".join(command))
    subprocess.run(command, check=True, cwd=REPO)
