"""Two real gloo processes (DDP, features all-gathered) against one process on their
concatenated batch: the same loss and the same gradients."""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from model.image_encoder import preprocess
from model.samples import sample_photos
from model.training import distributed
from model.training.stream_loader import Batch
from model.training.stream_sources import Shard
from model.training.stream_trainer import StreamTrainer

from .stream_helpers import PHOTO_CAPTIONS, tiny_settings

PAIRS = 8
SHARDS = [Shard(f"s{i}", 16) for i in range(4)]


def full_batch() -> Batch:
    """Eight real photos and their captions (tiny-dinov2's input size and statistics)."""
    photos = list(sample_photos().items())[:PAIRS]
    pixels = preprocess([p for _, p in photos], 56, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    captions = [PHOTO_CAPTIONS[name] for name, _ in photos]
    return Batch(pixels, captions, [name for name, _ in photos], 0, PAIRS, {})


def gradients(process: distributed.Process, rows: slice, out: Path) -> None:
    """One step's loss parts and (DDP-averaged) gradients on ``rows`` of the full batch."""
    torch.set_num_threads(1)
    settings = tiny_settings(batch_size=PAIRS // process.world, reg_weight=0.5, reg_warmup=0.0)
    trainer = StreamTrainer("tiny-dinov2", SHARDS, out, settings, process)
    trainer.net.train()
    full = full_batch()
    batch = Batch(full.pixels[rows], full.captions[rows], full.keys[rows], 0, 0, {})
    parts = trainer.forward_backward([batch])
    grads = {name: p.grad.clone() for name, p in trainer.params.items() if p.grad is not None}
    torch.save({"parts": parts, "grads": grads}, out / f"rank{process.rank}.pt")


def ddp_worker(rank: int, world: int, port: int, out: Path) -> None:
    os.environ |= {
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(rank),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    process = distributed.start_process("cpu")
    try:
        share = PAIRS // world
        gradients(process, slice(rank * share, (rank + 1) * share), out)
    finally:
        distributed.stop_process(process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_match_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    gradients(distributed.Process(), slice(0, PAIRS), tmp_path / "one")
    mp.spawn(ddp_worker, args=(2, free_port(), tmp_path / "two"), nprocs=2)
    single = torch.load(tmp_path / "one" / "rank0.pt")
    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt") for r in (0, 1)]
    assert single["parts"]["reg"] > 0
    for result in ranks:
        for key, value in single["parts"].items():
            assert abs(result["parts"][key] - value) < 1e-5, key
        assert result["grads"].keys() == single["grads"].keys()
        lora = [k for k in single["grads"] if ".lora_B." in k]
        assert lora and any(single["grads"][k].abs().sum() > 0 for k in lora)
        for name, grad in single["grads"].items():
            assert torch.allclose(result["grads"][name], grad, atol=1e-6, rtol=1e-4), name
