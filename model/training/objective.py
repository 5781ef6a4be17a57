"""What one training step optimises: the run's settings, a step's batch and the losses
(the full objective, and the one of query encoders trained against fixed documents)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from ..lexvla import LexVLA
from ..sparse import activate
from .losses import REGULARISERS, caption_words, distillation, flops, info_nce


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one run (recorded in ``OUT/history.json``)."""

    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.05
    regulariser: str = "overuse"  # "overuse", "flops" or "none"
    reg_weight: float = 0.01
    reg_warmup_epochs: int = 10
    raw_flops_weight: float = 0.0  # FLOPs on the unnormalised weights (same ramp): fewer words
    distill_weight: float = 0.0  # > 0: also match a dense MiniLM teacher (model.teacher)
    words_weight: float = 0.0  # > 0: also predict the words of each image's captions
    train_top_k: bool = True  # score batches through the index's top-k, as search does
    dropout: float = 0.0  # dropout on the frozen features the adapters read
    class_prior: float = 0.0  # > 0: train with the ImageNet class-word prior (model.class_words)
    class_words: str = ""  # the checkpoint folder whose class words the prior uses
    config: str = ""  # JSON merged into the --init config, e.g. '{"sparse": {"doc_top_k": 64}}'
    lookup_init: float = 1.0  # new lookup weights start at this times each word's IDF
    train_only: str = ""  # e.g. "sentence,lookup": train only these query encoders (the rest fixed)
    seed: int = 0
    device: str = "cpu"

    @property
    def trained_encoders(self) -> list[str]:
        """The query encoders ``train_only`` names."""
        return [name for name in self.train_only.split(",") if name]

    @property
    def fixed_documents(self) -> bool:
        """Only query encoders besides ``lm`` train: image and caption vectors stay fixed."""
        return bool(self.trained_encoders) and "lm" not in self.trained_encoders

    def __post_init__(self) -> None:
        if self.regulariser not in (*REGULARISERS, "none"):
            raise ValueError(f"regulariser must be one of {', '.join(REGULARISERS)}, none")
        if (self.class_prior > 0) != bool(self.class_words):
            raise ValueError("class_prior and class_words go together")


@dataclass
class TrainBatch:
    """What one step trains on (:meth:`to` moves it to a device)."""

    images: torch.Tensor  # (B, patches, dim) image features
    captions: torch.Tensor  # (B, text dim) stacked caption features, one caption per image
    words: torch.Tensor  # (B, longest) the captions' own-word ids, -1 padded
    word_targets: torch.Tensor | None = None  # (B, vocab) the images' captions' words
    teacher_logits: torch.Tensor | None = None  # (B, B) the dense teacher's similarities

    def to(self, device: torch.device) -> TrainBatch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in moved.items() if v is not None})


def training_loss(
    model: LexVLA, batch: TrainBatch, settings: TrainSettings, ramp: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE over the batch's lexical similarities (image queries against caption
    documents, and each query encoder's caption queries against image documents, the
    two directions weighted alike), the regularisers (their weights times ``ramp``),
    distillation from the teacher's similarities and the prediction of the captions'
    words, when given."""
    images = torch.nn.functional.dropout(batch.images, settings.dropout)
    captions = torch.nn.functional.dropout(batch.captions, settings.dropout)
    logits = model.image_logits(images)
    image_raw = model.add_class_prior(activate(logits), images)  # before normalisation
    text_raw = activate(model.text.logits(captions, model.codebook))  # the caption documents
    image_w, text_w = model.finish(image_raw), model.finish(text_raw)
    queries = [
        text_w if name == "lm" else model.query_weights(name, captions, batch.words)
        for name in model.config.query_encoders
    ]
    t = settings.temperature
    if settings.train_top_k:  # what search scores: a query's top-k against a document's
        i2t = model.truncate(image_w, "query") @ model.truncate(text_w, "document").T
        image_docs = model.truncate(image_w, "document")
        t2i = [model.truncate(q, "query") @ image_docs.T for q in queries]
        queried = torch.stack([info_nce(s.T, t) for s in t2i]).mean()
        loss = (info_nce(i2t, t) + queried) / 2
    else:
        full = [image_w @ text_w.T] + [image_w @ q.T for q in queries if q is not text_w]
        loss = torch.stack([info_nce(s, t) for s in full]).mean()
    parts = {"nce": loss.item()}
    if batch.teacher_logits is not None:  # the teacher matches the full vectors' similarities
        pairs = [text_w] + [q for q in queries if q is not text_w]
        distilled = torch.stack(
            [distillation(image_w @ q.T / t, batch.teacher_logits) for q in pairs]
        ).mean()
        loss = loss + settings.distill_weight * distilled
        parts["distill"] = distilled.item()
    if batch.word_targets is not None:
        predicted = caption_words(logits, batch.word_targets)
        loss = loss + settings.words_weight * predicted
        parts["words"] = predicted.item()
    if settings.regulariser != "none" and settings.reg_weight > 0 and ramp > 0:
        penalty = REGULARISERS[settings.regulariser]
        sparsity = penalty(image_w) + penalty(text_w)
        loss = loss + ramp * settings.reg_weight * sparsity
        parts["reg"] = sparsity.item()
    if settings.raw_flops_weight > 0 and ramp > 0:  # SPLADE's: logits under 0, fewer words
        raw = flops(image_raw) + flops(text_raw)
        loss = loss + ramp * settings.raw_flops_weight * raw
        parts["raw_flops"] = raw.item()
    return loss, parts


def query_encoder_loss(
    model: LexVLA, batch: TrainBatch, settings: TrainSettings
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of query encoders trained against fixed image documents (``train_only``
    without ``lm``): each one's text->image InfoNCE, plus distillation when given."""
    with torch.no_grad():
        images = model.finish(
            model.add_class_prior(activate(model.image_logits(batch.images)), batch.images)
        )
    documents = model.truncate(images, "document") if settings.train_top_k else images
    queries = [
        model.query_weights(name, batch.captions, batch.words) for name in settings.trained_encoders
    ]
    searched = [model.truncate(q, "query") if settings.train_top_k else q for q in queries]
    t = settings.temperature
    loss = torch.stack([info_nce(documents @ q.T, t) for q in searched]).mean()
    parts = {"nce": loss.item()}
    if batch.teacher_logits is not None:
        distilled = torch.stack(
            [distillation(images @ q.T / t, batch.teacher_logits) for q in queries]
        ).mean()
        loss = loss + settings.distill_weight * distilled
        parts["distill"] = distilled.item()
    return loss, parts
