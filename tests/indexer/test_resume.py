"""A build killed with SIGKILL finishes on rerun and equals an uninterrupted build."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from indexer import ImpactSearcher, open_published

from .conftest import write_captioned
from .helpers import brute_force, cli, shard_files, shard_vectors, table

REPO = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_kill_9_then_rerun_equals_an_uninterrupted_build(tmp_path: Path) -> None:
    manifest = write_captioned(tmp_path / "data", 60)
    job = ["build", "--manifest", str(manifest), "--model", "tiny-lite0", "--device", "cpu"]
    job += ["--shard-size", "4", "--batch-size", "2", "--workers", "2", "--quiet"]
    reference, root = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(cli(*job, "--out", str(reference)), check=True, cwd=REPO, capture_output=True)

    victim = subprocess.Popen(cli(*job, "--out", str(root)), cwd=REPO, stderr=subprocess.DEVNULL)
    batch = root / "shards" / "00000-build"
    deadline = time.monotonic() + 120
    while not (batch / "00001").exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = children(victim.pid)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert len(workers) == 2  # the decoding workers die with the job, leaving no orphans
    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(alive, workers))
    assert not (batch / "done.json").exists() and not (root / "current").exists()
    committed = sorted(p.name for p in batch.iterdir() if p.name.isdigit())
    assert 2 <= len(committed) < 15
    before = {name: (batch / name / "images.jsonl").stat() for name in committed}

    summary_path = tmp_path / "summary.json"
    rerun = subprocess.run(
        cli(*job, "--out", str(root), "--summary-json", str(summary_path)),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["resumed_shards"] == len(committed)
    assert summary["encoded_images"] == 60 - 4 * len(committed)  # committed shards not re-encoded
    assert (summary["indexed"], summary["captions"]) == (60, 120)
    for name, stat in before.items():  # committed shards untouched
        now = (batch / name / "images.jsonl").stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    assert shard_files(root) == shard_files(reference)  # same ids, same vectors, same records
    for sql in (
        "SELECT id, path, sha256, captions, metadata, origin, terms FROM images ORDER BY id",
        "SELECT id, image_id, position, text, terms FROM captions ORDER BY id",
    ):
        assert table(open_published(root).metadata, sql) == table(
            open_published(reference).metadata, sql
        )
    docs = shard_vectors(root, "captions")
    with (
        ImpactSearcher(open_published(root).captions) as resumed,
        ImpactSearcher(open_published(reference).captions) as uninterrupted,
    ):
        for query in list(docs.values())[:10]:
            assert (
                resumed.search(query, 20)
                == uninterrupted.search(query, 20)
                == brute_force(query, docs, 20)
            )
