"""``python -m bench.curve``: how latency and memory grow with the collection, log-log.

Reads the ``search.json`` that :mod:`bench.search` wrote, fits ``log y = a + b log n``
per engine for p50 latency (1 thread), resident memory and bytes on disk, and writes
``curve.json`` (the slopes ``b``: 1 means linear growth) and ``curve.png``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .common import RESULTS, save_figure, table

METRICS = (
    ("p50_ms", "p50 latency (ms)"),
    ("rss_mb", "resident memory (MB)"),
    ("disk_mb", "on disk (MB)"),
)


def loglog_slope(sizes: list[float], values: list[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``log10 value`` against ``log10 size``."""
    if len(sizes) < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(np.log10(sizes), np.log10(values), 1)
    return float(slope), float(intercept)


def fits(rows: list[dict[str, Any]], threads: int = 1) -> list[dict[str, Any]]:
    """One row per engine and metric: the sizes, values and fitted slope."""
    out = []
    for engine in dict.fromkeys(r["engine"] for r in rows):
        mine = sorted(
            (r for r in rows if r["engine"] == engine and r.get("threads") == threads),
            key=lambda r: r["docs"],
        )
        for key, _ in METRICS:
            points = [(r["docs"], r[key]) for r in mine if r.get(key) and r[key] > 0]
            slope, intercept = loglog_slope([p[0] for p in points], [p[1] for p in points])
            out.append(
                {
                    "engine": engine,
                    "metric": key,
                    "docs": [p[0] for p in points],
                    "values": [p[1] for p in points],
                    "slope": round(slope, 3),
                    "intercept": round(intercept, 3),
                }
            )
    return out


def plot(fitted: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(15, 4.2))
    for ax, (key, title) in zip(axes, METRICS):
        for f in (f for f in fitted if f["metric"] == key and f["docs"]):
            line = ax.plot(f["docs"], f["values"], "o", label=f"{f['engine']} (slope {f['slope']})")
            if not math.isnan(f["slope"]):
                xs = np.array([min(f["docs"]), max(f["docs"])], dtype=float)
                ax.plot(
                    xs,
                    10 ** (f["intercept"] + f["slope"] * np.log10(xs)),
                    "--",
                    color=line[0].get_color(),
                )
        ax.set(xscale="log", yscale="log", title=title, xlabel="documents")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.curve", description=__doc__)
    parser.add_argument("--search", type=Path, default=RESULTS / "search.json")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = [r for r in json.loads(args.search.read_text())["rows"] if "error" not in r]
    fitted = fits(rows)
    (args.out / "curve.json").write_text(
        json.dumps({"source": str(args.search), "fits": fitted}, indent=2) + "\n"
    )
    plot(fitted, args.out / "curve.png")
    summary = [
        {
            "engine": f["engine"],
            "metric": f["metric"],
            "slope": f["slope"],
            "at_largest": f["values"][-1] if f["values"] else None,
            "largest_docs": f["docs"][-1] if f["docs"] else None,
        }
        for f in fitted
    ]
    print(table(summary, ("engine", "metric", "slope", "at_largest", "largest_docs")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
