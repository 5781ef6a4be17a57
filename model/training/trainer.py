"""Training the image and text adapters on cached features (``model.training train``).

Loss (``model.training.objective``): symmetric InfoNCE on the lexical similarities of
a batch, plus a sparsity regulariser (the overuse penalty by default, FLOPs as an
option) whose weight ramps up quadratically. The frozen backbone and LM run once
(``features``); each epoch then costs seconds. Every epoch writes a resumable state;
the epoch with the best dev recall is kept as a checkpoint folder (``OUT/best``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from ..class_words import CLASS_WORDS, ClassWords
from ..lexvla import LexVLA
from ..sentence import MINILM, SentenceEncoder
from .class_prior import with_prior
from .data import load_split
from .evaluate import encode_split, lexical_retrieval
from .features import sentence_embeddings, sentences_file
from .objective import TrainBatch, TrainSettings, query_encoder_loss, training_loss
from .optim import make_optimizer
from .splits import SplitFeatures, load_split_features, sample_batches, word_targets
from .starting_model import build_model, init_lookup_weights
from .teacher import Teacher, train_teacher

log = logging.getLogger(__name__)


class Trainer:
    """Runs epochs over cached features, with dev selection and resumable state."""

    def __init__(
        self,
        model: LexVLA,
        train: SplitFeatures,
        dev: SplitFeatures,
        settings: TrainSettings,
        out: Path,
        teacher: Teacher | None = None,
    ) -> None:
        if (teacher is None) != (settings.distill_weight == 0):
            raise ValueError("a teacher is needed exactly when distill_weight > 0")
        self.model = model
        self.train_split = train
        self.dev = dev
        self.settings = settings
        self.out = out
        self.teacher = teacher
        self.steps_per_epoch = len(train.images) // settings.batch_size
        trainable = model.trainable_state()
        if not train.lm and not settings.fixed_documents:
            raise ValueError(
                "the LM's caption features are needed unless only query encoders train"
            )
        only = tuple(f"queries.{name}." for name in settings.trained_encoders)
        params = []
        for name, parameter in model.named_parameters():
            chosen = name in trainable and (not only or name.startswith(only))
            parameter.requires_grad_(chosen)
            if chosen:
                params.append(parameter)
        total = settings.epochs * self.steps_per_epoch
        self.optimizer, self.schedule = make_optimizer(
            params, settings.lr, settings.weight_decay, total, total // 20
        )
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.epoch = 0
        self.best = -1.0
        self.history: list[dict[str, float]] = []

    @property
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def reg_ramp(self) -> float:
        """The regularisers' share of their weights: a quadratic ramp over the warm-up."""
        return min(1.0, (self.epoch + 1) / max(1, self.settings.reg_warmup_epochs)) ** 2

    def save_state(self) -> None:
        state = {
            "epoch": self.epoch,
            "adapters": self.model.trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best": self.best,
            "history": self.history,
            "settings": asdict(self.settings),
        }
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)

    def resume(self) -> bool:
        """Continue from ``OUT/state.pt`` if a previous run left one."""
        if not self.state_path.is_file():
            return False
        state = torch.load(self.state_path, weights_only=False)
        if state["settings"] != asdict(self.settings):
            raise ValueError(
                f"{self.state_path} was written with other settings; use another --out"
            )
        self.model.load_state_dict(state["adapters"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        log.info("resumed after epoch %d (best dev R@1 sum %.1f)", self.epoch, self.best)
        return True

    def batch(self, images: torch.Tensor, captions: torch.Tensor, rows: torch.Tensor) -> TrainBatch:
        """A step's batch from sampled images and the rows of their sampled captions."""
        split, settings = self.train_split, self.settings
        words = split.words[rows] if split.words is not None else torch.full((len(rows), 1), -1)
        targets = None
        if settings.words_weight > 0:
            targets = word_targets(split, rows // split.per, len(self.model.vocab))
        teacher = self.teacher.logits(images, rows) if self.teacher else None
        return TrainBatch(images, captions, words, targets, teacher)

    def run_epoch(self) -> dict[str, float]:
        self.model.train()
        device = self.model.codebook.device
        sums: dict[str, float] = {}
        start = time.perf_counter()
        ramp = self.reg_ramp()
        bar = tqdm(
            sample_batches(self.train_split, self.settings.batch_size, self.generator),
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
        )
        for images, captions, rows in bar:
            batch = self.batch(images, captions, rows).to(device)
            if self.settings.fixed_documents:
                loss, parts = query_encoder_loss(self.model, batch, self.settings)
            else:
                loss, parts = training_loss(self.model, batch, self.settings, ramp)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{loss.item():.3f}")
        seconds = time.perf_counter() - start
        self.model.eval()
        encoded = encode_split(self.model, self.dev)
        report = lexical_retrieval(self.model, self.dev, encoded)
        row = {key: value / self.steps_per_epoch for key, value in sums.items()}
        for name in self.model.config.query_encoders:  # each encoder's text->image recall
            row[f"dev_t2i_r1_{name}"] = lexical_retrieval(self.model, self.dev, encoded, name).t2i[
                1
            ]
        row |= {
            "epoch": self.epoch + 1,
            "pairs_per_s": self.steps_per_epoch * self.settings.batch_size / seconds,
            "dev_i2t_r1": report.i2t[1],
            "dev_t2i_r1": report.t2i[1],
            "dev_i2t_r10": report.i2t[10],
            "dev_t2i_r10": report.t2i[10],
            "image_words": report.image_words,
            "caption_words": report.caption_words,
        }
        return row

    def fit(self) -> list[dict[str, float]]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        with tqdm(total=self.settings.epochs, initial=self.epoch, desc="training") as bar:
            while self.epoch < self.settings.epochs:
                row = self.run_epoch()
                self.epoch += 1
                self.history.append(row)
                score = row["dev_i2t_r1"] + row["dev_t2i_r1"]
                if score > self.best:
                    self.best = score
                    self.model.save_pretrained(self.out / "best")
                self.save_state()
                (self.out / "history.json").write_text(json.dumps(self.history, indent=1))
                log.info(
                    "epoch %d: nce %.3f, dev R@1 i2t %.1f t2i %.1f, words img %.0f txt %.0f",
                    row["epoch"],
                    row["nce"],
                    row["dev_i2t_r1"],
                    row["dev_t2i_r1"],
                    row["image_words"],
                    row["caption_words"],
                )
                bar.set_postfix(pairs_s=f"{row['pairs_per_s']:.0f}", dev_r1=f"{score:.1f}")
                bar.update(1)
        return self.history


def train(init: str, data: Path, out: Path, cache: Path, settings: TrainSettings) -> Path:
    """Train adapters from ``init`` (a config name or checkpoint) on ``data``'s train split,
    choosing the epoch on dev; returns the best checkpoint folder (``out/best``)."""
    torch.manual_seed(settings.seed)  # dropout and anything else drawn from the global one
    model, untrained = build_model(init, settings.config, settings.seed)
    if settings.class_prior > 0:
        words = ClassWords.load(Path(settings.class_words) / CLASS_WORDS)
        with_prior(model, words, settings.class_prior)
    model = model.to(settings.device)
    # mirrored images augment the image adapter; fixed documents need neither them nor
    # the LM's caption features
    fixed = settings.fixed_documents
    train_split = load_split_features(model, data, "train", cache, flipped=not fixed, lm=not fixed)
    dev = load_split_features(model, data, "dev", cache)
    assert train_split.words is not None
    init_lookup_weights(model, train_split.words, untrained, settings.lookup_init)
    teacher = None
    if settings.distill_weight > 0:
        captions = [c for p in load_split(data, "train") for c in p.captions]
        path = sentences_file(cache, "train", MINILM)
        embeddings = sentence_embeddings(SentenceEncoder(MINILM), captions, path)
        teacher = train_teacher(train_split, embeddings, settings.seed)
    Trainer(model, train_split, dev, settings, out, teacher).fit()
    return out / "best"
