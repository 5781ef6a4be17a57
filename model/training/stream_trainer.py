"""Streaming training (``python -m model.training stream-train``): the paper's recipe.

Pairs stream from shards (``model.training.stream_loader``); the backbones run live each
step; the LM is fine-tuned with LoRA, the adapters and biases are trained as in the
cached recipe, optionally the backbone's last blocks too. Several processes
(``torchrun``) train one model with DDP; the contrastive loss and the sparsity penalty
cover the global batch (features all-gathered with gradients). Bf16/fp16 autocast on
CUDA, gradient accumulation. The main process writes ``OUT/last`` (a checkpoint folder)
and ``OUT/state.pt`` every ``save_every`` steps; a rerun of the same command continues
from there: same step, same data position of every reader, same random state.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed, finetune, stream_run
from .distributed import Process, agree, gather_objects, gather_rows
from .live import LiveLexVLA, batch_loss
from .optim import make_optimizer
from .starting_model import build_model
from .stream_loader import Batch, Decoding, PairStream, derive_seed, generator, make_loader
from .stream_settings import StreamSettings
from .stream_sources import Shard, open_source

log = logging.getLogger(__name__)


class StreamTrainer:
    """One process's share of a streaming run."""

    def __init__(
        self, init: str, shards: list[Shard], out: Path, settings: StreamSettings, process: Process
    ) -> None:
        self.shards, self.out, self.settings, self.process = shards, out, settings, process
        self.device = distributed.resolve_device(settings.device, process)
        self.dtype = distributed.autocast_dtype(settings.precision, self.device)
        model, _ = build_model(init, "", settings.seed)  # a fresh model's adapters from the seed
        init_generator = generator(settings.seed, 1)
        self.lora = None
        if settings.lora_rank > 0:
            self.lora = finetune.add_lora(
                model.text.lm,
                settings.lora_rank,
                settings.lora_alpha,
                settings.lora_dropout,
                settings.lora_targets,
                init_generator,
            )
            model.text.reset_prefix_cache()
        self.tuned = finetune.unfreeze_backbone(model, settings.unfreeze_blocks)
        self.params = finetune.trainable_parameters(model)
        self.model = model.to(self.device)
        live = LiveLexVLA(model, self.lora is not None, bool(self.tuned))
        self.net: torch.nn.Module = live
        if process.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(live, device_ids=ids, broadcast_buffers=False)
        self.readers = process.world * max(1, settings.workers)
        self.global_batch = settings.batch_size * settings.accumulate * process.world
        epoch = settings.epoch_samples or sum(s.samples for s in shards)
        self.steps_per_epoch = epoch // self.global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(f"an epoch of {epoch} pairs is less than one global batch")
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.optimizer, self.schedule = make_optimizer(
            finetune.parameter_groups(self.params, settings.lr, settings.finetune_lr),
            settings.lr,
            settings.weight_decay,
            self.total_steps,
            int(settings.warmup * self.total_steps),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.step = 0
        self.positions: dict[int, int] = {}  # reader -> raw samples it has handed on
        self.skipped: dict[int, Counter[str]] = {}  # reader -> skipped samples by reason
        torch.manual_seed(derive_seed(settings.seed, 2, process.rank))  # dropout (LoRA)

    def reg_weight(self) -> float:
        """Quadratic ramp of the sparsity penalty's weight over ``reg_warmup`` of the steps."""
        ramp_steps = max(1.0, self.settings.reg_warmup * self.total_steps)
        return self.settings.reg_weight * min(1.0, (self.step + 1) / ramp_steps) ** 2

    def forward_backward(self, batches: list[Batch]) -> dict[str, float]:
        """Gradients of one optimizer step's micro-batches (summed); their loss parts."""
        sums: dict[str, float] = {}
        reg = self.reg_weight()
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            no_sync = getattr(self.net, "no_sync", None)
            with nullcontext() if last or no_sync is None else no_sync():
                autocast = torch.autocast(self.device.type, self.dtype, enabled=bool(self.dtype))
                with autocast:
                    image_w, text_w = self.net(batch.pixels.to(self.device), batch.captions)
                image_w = gather_rows(image_w.float(), self.process)
                text_w = gather_rows(text_w.float(), self.process)
                loss, parts = batch_loss(self.model, image_w, text_w, self.settings, reg)
                self.scaler.scale(loss / len(batches)).backward()
            for key, value in (parts | {"loss": loss.item()}).items():
                sums[key] = sums.get(key, 0.0) + value / len(batches)
        return sums

    def optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def note(self, batch: Batch) -> None:
        """Record a consumed batch's reader position and skipped samples."""
        self.positions[batch.reader] = batch.position
        self.skipped.setdefault(batch.reader, Counter()).update(batch.skipped)

    def save(self) -> None:
        """Write ``OUT/last`` and ``OUT/state.pt`` (main process; all must call this)."""
        positions = gather_objects(self.positions, self.process)
        skipped = gather_objects(self.skipped, self.process)
        rng = gather_objects(torch.get_rng_state(), self.process)
        if not self.process.main:
            return
        finetune.save_checkpoint(self.model, self.out / "last", self.lora, self.tuned)
        stream_run.write_state(
            self.out,
            {
                "step": self.step,
                "params": {n: p.detach().cpu() for n, p in self.params.items()},
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "positions": {k: v for part in positions for k, v in part.items()},
                "skipped": {k: v for part in skipped for k, v in part.items()},
                "rng": rng,
                "world": self.process.world,
                "readers": self.readers,
                "shards": stream_run.shard_list(self.shards),
                "settings": asdict(self.settings),
            },
        )

    def resume(self) -> bool:
        """Continue from ``OUT/state.pt`` if an earlier run left one."""
        state = stream_run.read_state(
            self.out, self.settings, self.process.world, self.readers, self.shards
        )
        if state is None:
            return False
        for name, value in state["params"].items():
            self.params[name].data.copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.positions = state["step"], state["positions"]
        self.skipped = state["skipped"]
        torch.set_rng_state(state["rng"][self.process.rank])
        for name in (stream_run.HISTORY, stream_run.keys_file(self.process.rank)):
            stream_run.keep_steps(self.out / name, self.step)
        log.info("resumed at step %d of %d", self.step, self.total_steps)
        return True

    def log_line(self, parts: dict[str, float], pairs_per_s: float) -> dict[str, Any]:
        """One ``OUT/history.jsonl`` line (all processes take part in the count)."""
        counts: Counter[str] = Counter()
        for part in gather_objects(self.skipped, self.process):
            for counter in part.values():
                counts.update(counter)
        return {
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 4),
            **{k: round(v, 5) for k, v in parts.items()},
            "lr": self.schedule.get_last_lr()[0],
            "pairs": self.step * self.global_batch,
            "pairs_per_s": round(pairs_per_s, 2),
            "skipped": dict(counts),
        }

    def fit(self) -> Path:
        """Train to the last step (or the time limit); the checkpoint folder ``OUT/last``."""
        settings = self.settings
        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        image = self.model.image
        decoding = Decoding(image.image_size, image.mean, image.std, settings.flip, settings.seed)
        stream = PairStream(
            self.shards,
            decoding,
            self.process.rank,
            self.process.world,
            settings.workers,
            settings.shuffle_buffer,
            self.positions,
        )
        pin = self.device.type == "cuda"
        loader = iter(make_loader(stream, settings.batch_size, settings.workers, pin))
        self.net.train()
        if self.lora is not None and settings.lora_dropout > 0:
            self.model.text.lm.train()  # LoRA dropout on (the LM itself has none)
        started = time.monotonic()
        meter = stream_run.Meter(self.step)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.process.main)
        stop = False
        while self.step < self.total_steps and not stop:
            batches = [next(loader) for _ in range(settings.accumulate)]
            for batch in batches:
                self.note(batch)
            parts = self.forward_backward(batches)
            self.optimizer_step()
            self.record_keys(batches)
            meter.add(parts)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}")
            stop = agree(0 < settings.max_minutes * 60 < time.monotonic() - started, self.process)
            last = stop or self.step == self.total_steps
            if self.step % settings.log_every == 0 or last:
                self.write_history(*meter.flush(self.step, self.global_batch))
            if self.step % settings.save_every == 0 or last:
                self.save()
        bar.close()
        if stop:
            log.info("time limit reached at step %d of %d", self.step, self.total_steps)
        return self.out / "last"

    def record_keys(self, batches: list[Batch]) -> None:
        """With ``record_keys``: the step's sample keys in ``OUT/keys-rankR.jsonl``."""
        if self.settings.record_keys:
            keys = [k for b in batches for k in b.keys]
            path = self.out / stream_run.keys_file(self.process.rank)
            stream_run.append_line(path, {"step": self.step, "keys": keys})

    def write_history(self, parts: dict[str, float], pairs_per_s: float) -> None:
        """Append a line to ``OUT/history.jsonl`` (main process; all must call this)."""
        row = self.log_line(parts, pairs_per_s)
        if self.process.main:
            stream_run.append_line(self.out / stream_run.HISTORY, row)
            log.info("step %d: %s", self.step, row)


def stream_train(
    init: str, data: Path, split: str | None, out: Path, settings: StreamSettings
) -> Path:
    """Train ``init`` (a config name or checkpoint) on the pairs of ``data``; the final
    checkpoint folder (``out/last``)."""
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    process = distributed.start_process(device)
    try:
        shards = open_source(data, split)
        return StreamTrainer(init, shards, out, settings, process).fit()
    finally:
        distributed.stop_process(process)
