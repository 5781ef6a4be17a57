"""Several processes (``torchrun``): process group set-up and the collectives training uses.

``torchrun --nproc-per-node N -m model.training stream-train ...`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; without them the run is
one process and every collective here is the identity. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


@dataclass(frozen=True)
class Process:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that logs and writes checkpoints."""
        return self.rank == 0


def start_process(device: str) -> Process:
    """Join the process group ``torchrun`` describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Process()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def stop_process(process: Process) -> None:
    if process.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def gather_rows(tensor: torch.Tensor, process: Process) -> torch.Tensor:
    """Every process's ``(rows, ...)`` stacked in rank order, gradients flowing back to each
    process's own rows.  # (world * rows, ...)"""
    if process.world == 1:
        return tensor
    return torch.cat(dist_nn.all_gather(tensor.contiguous()))


def gather_objects(value: Any, process: Process) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order."""
    if process.world == 1:
        return [value]
    values: list[Any] = [None] * process.world
    dist.all_gather_object(values, value)
    return values


def agree(flag: bool, process: Process) -> bool:
    """The main process's ``flag``, the same on every process."""
    if process.world == 1:
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def resolve_device(name: str, process: Process) -> torch.device:
    """``auto``: this process's GPU when there is one, else the CPU."""
    if name == "auto":
        name = f"cuda:{process.local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type (``None``: full float32); ``auto`` is bf16 or fp16 on CUDA only."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs CUDA; use bf16 or fp32 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16
