"""The settings of a streaming run (``python -m model.training stream-train``).

Each field carries its ``--help`` text; the CLI makes one flag per field. A resumed run
must have the same settings, except those in ``RESUMABLE_CHANGES`` (``workers`` only
while processes x workers, the number of data readers, stays the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .losses import REGULARISERS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RESUMABLE_CHANGES = frozenset({"max_minutes", "save_every", "log_every", "workers"})


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class StreamSettings:
    """Hyper-parameters and run options (recorded in ``OUT/state.pt``)."""

    # data
    batch_size: int = _setting(64, "pairs per process in one forward pass (micro-batch)")
    accumulate: int = _setting(1, "micro-batches summed into one optimizer step")
    epochs: int = _setting(1, "epochs to train (an epoch: --epoch-samples pairs)")
    epoch_samples: int = _setting(0, "pairs per epoch; 0: one pass over the data")
    max_minutes: float = _setting(0.0, "stop and save after this many minutes; 0: no limit")
    workers: int = _setting(2, "decoding workers per process (DataLoader workers)")
    shuffle_buffer: int = _setting(1000, "samples each reader's shuffle buffer holds")
    flip: bool = _setting(True, "mirror half of the images at random")
    # optimisation
    lr: float = _setting(1e-3, "AdamW learning rate of the adapters and biases")
    finetune_lr: float = _setting(2e-4, "learning rate of LoRA and unfrozen backbone blocks")
    weight_decay: float = _setting(0.01, "AdamW weight decay")
    warmup: float = _setting(0.05, "share of the steps with a linear learning-rate warm-up")
    temperature: float = _setting(0.05, "InfoNCE temperature")
    regulariser: str = _setting("overuse", f"sparsity penalty: {', '.join(REGULARISERS)}, none")
    reg_weight: float = _setting(0.1, "weight of the sparsity penalty")
    reg_warmup: float = _setting(0.25, "share of the steps over which that weight ramps up")
    train_top_k: bool = _setting(True, "score batches through the index's top-k, as search")
    # what is fine-tuned
    lora_rank: int = _setting(8, "LoRA rank on the text LM; 0: the LM stays frozen")
    lora_alpha: int = _setting(16, "LoRA alpha (the update is scaled by alpha / rank)")
    lora_dropout: float = _setting(0.05, "dropout on the LoRA layers' input")
    lora_targets: tuple[str, ...] = _setting(
        ("q_proj", "k_proj", "v_proj", "o_proj"), "LM module names that get LoRA"
    )
    unfreeze_blocks: int = _setting(0, "train the image backbone's last N blocks too")
    # run
    precision: str = _setting("auto", "autocast: auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, ...")
    device: str = _setting("auto", "auto (this process's GPU if any, else CPU), cpu, cuda")
    seed: int = _setting(0, "seeds every random choice: init, data order, captions, flips")
    save_every: int = _setting(50, "optimizer steps between checkpoints")
    log_every: int = _setting(10, "optimizer steps between history lines")
    record_keys: bool = _setting(False, "write each step's sample keys to OUT/keys-rankR.jsonl")

    def __post_init__(self) -> None:
        if self.regulariser not in (*REGULARISERS, "none"):
            raise ValueError(f"regulariser must be one of {', '.join(REGULARISERS)}, none")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if min(self.batch_size, self.accumulate, self.epochs, self.save_every) < 1:
            raise ValueError("batch_size, accumulate, epochs and save_every must be >= 1")
        if self.workers < 0 or self.lora_rank < 0 or self.unfreeze_blocks < 0:
            raise ValueError("workers, lora_rank and unfreeze_blocks cannot be negative")

    def incompatible(self, saved: dict[str, Any]) -> list[str]:
        """The settings that differ from a saved run's and would change its course."""
        current = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return sorted(
            name
            for name, value in current.items()
            if name not in RESUMABLE_CHANGES and saved.get(name) != value
        )
