"""A streaming run killed mid-way and started again with the same command ends where an
uninterrupted run does: same steps, same samples in the same order, same weights."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from model.finetuned import LORA_DIR, LORA_WEIGHTS

REPO = Path(__file__).resolve().parents[3]
STEPS_PER_EPOCH = 6  # 12 pairs a pass, 2 per step
EPOCHS = 3


def command(shards: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "model.training", "stream-train",
        "--data", str(shards), "--init", "tiny-lite0", "--out", str(out),
        "--batch-size", "2", "--epochs", str(EPOCHS), "--workers", "2",
        "--shuffle-buffer", "3", "--lora-rank", "2", "--lora-dropout", "0.2",
        "--save-every", "4", "--log-every", "1", "--record-keys", "--lr", "1e-2",
    ]  # fmt: skip


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(shards: Path, out: Path) -> None:
    subprocess.run(command(shards, out), cwd=REPO, check=True, capture_output=True, timeout=300)


def test_a_killed_run_continues_from_its_last_checkpoint(even_shards: Path, tmp_path: Path) -> None:
    run(even_shards, tmp_path / "whole")
    cut = tmp_path / "cut"
    job = subprocess.Popen(
        command(even_shards, cut), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while len(lines(cut / "history.jsonl")) < 8 and job.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    written = len(lines(cut / "history.jsonl"))
    if job.returncode != -signal.SIGKILL or written == STEPS_PER_EPOCH * EPOCHS:
        pytest.fail("the run ended before it could be killed")
    run(even_shards, cut)

    steps = [row["step"] for row in lines(cut / "history.jsonl")]
    assert steps == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))
    whole, resumed = lines(tmp_path / "whole" / "keys-rank0.jsonl"), lines(cut / "keys-rank0.jsonl")
    assert resumed == whole
    for epoch in range(EPOCHS):
        keys = [k for row in whole[epoch * 6 : (epoch + 1) * 6] for k in row["keys"]]
        assert len(keys) == len(set(keys)) == 12  # every pair once an epoch
    for name in ("adapters.safetensors", f"{LORA_DIR}/{LORA_WEIGHTS}"):
        a, b = load_file(tmp_path / "whole" / "last" / name), load_file(cut / "last" / name)
        assert a.keys() == b.keys()
        assert all((a[k] - b[k]).abs().max() < 1e-6 for k in a), name
