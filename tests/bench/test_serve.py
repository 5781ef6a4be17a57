"""``bench.serve`` runs end to end (a tiny index, a few queries): figures come out."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load import percentile
from bench.serve import main


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([10.0, 0.0], 1.0) == 10.0


def test_bench_runs_against_a_real_server(tiny_index: Path, photos: Path, tmp_path: Path) -> None:
    data = tmp_path / "flickr-like"
    (data / "images").mkdir(parents=True)
    lines = []
    for path in sorted((photos / "images").iterdir()):
        (data / "images" / path.name).write_bytes(path.read_bytes())
        caption = f"a photo of the {path.stem.replace('_', ' ')}"
        lines.append(json.dumps({"image": path.name, "split": "dev", "captions": [caption]}))
    (data / "captions.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "results"
    args = ["--index", str(tiny_index), "--data", str(data), "--out", str(out)]
    args += ["--concurrency", "1", "3", "--text-queries", "4", "6", "--image-queries", "3", "5"]
    assert main(args) == 0
    figures = json.loads((out / "serve.json").read_text())
    runs = {(r["name"], r["concurrency"]): r for r in figures["rows"]}
    assert set(runs) == {("text", 1), ("image", 1), ("text", 3), ("image", 3)}
    assert runs["text", 1]["queries"] == 4 and runs["image", 3]["queries"] == 5
    for run in runs.values():
        assert 0 < run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] and run["qps"] > 0
        assert run["server_cpu_ms"] > 0
    assert {"encode_text", "encode_image", "lucene"} <= set(figures["server_stage_ms"])
    assert (out / "serve.png").is_file()
