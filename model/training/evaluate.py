"""Retrieval on the 1,000 images x 5,000 captions protocol (``model.training evaluate``).

Image->text and text->image Recall@1/5/10 through exactly what the index stores
(top-k and the one quantizer), mean active words, the dense baseline of the same
backbones trained in the same run, and published figures for reference.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..lexvla import LexVLA
from .dense import train_dense_baseline
from .retrieval import RetrievalReport, dense_report, lexical_report
from .splits import SplitFeatures, load_split_features

log = logging.getLogger(__name__)

LEXICAL = "lexical"  # the report of the configured query encoder

# Published Flickr8k results of a model trained on Flickr8k (Kiros et al. 2014, VSE).
PUBLISHED = {"VSE (Kiros et al. 2014)": {"i2t": (18.0, 40.9, 55.0), "t2i": (12.5, 37.0, 51.5)}}


@torch.no_grad()
def encode_images(
    model: LexVLA, images: torch.Tensor, flipped: torch.Tensor | None = None, batch: int = 250
) -> torch.Tensor:
    """Word weights of cached image features ``(images, patches, dim)``, averaged with the
    mirrored ones ``flipped`` for a model that averages mirror images.  # (images, vocab)"""
    device = model.codebook.device
    mirrored = flipped if model.config.vision.average_mirror else None
    if model.config.vision.average_mirror and mirrored is None:
        raise ValueError("this model averages mirror images: give the mirrored features")

    def weights(features: torch.Tensor, start: int) -> torch.Tensor:
        return model.image_weights(features[start : start + batch].to(device).float())

    parts = []
    for i in range(0, len(images), batch):
        w = weights(images, i)
        if mirrored is not None:
            w = model.mirror_mean(w, weights(mirrored, i))
        parts.append(w.cpu())
    return torch.cat(parts)


@torch.no_grad()
def encode_captions(
    model: LexVLA, split: SplitFeatures, encoder: str | None = None, batch: int = 1000
) -> torch.Tensor:
    """Word weights of every caption of a split from its cached features: as documents
    (``encoder`` None: the caption encoder) or as ``encoder``'s text queries.
    # (captions, vocab)"""
    device = model.codebook.device
    words = split.words if split.words is not None else torch.full((len(split.captions), 1), -1)
    parts = []
    for i in range(0, len(split.captions), batch):
        rows = split.captions[i : i + batch].to(device)
        if encoder is None:
            parts.append(model.text_weights(rows).cpu())
        else:
            parts.append(model.query_weights(encoder, rows, words[i : i + batch].to(device)).cpu())
    return torch.cat(parts)


@dataclass
class Encoded:
    """Word weights of a split: images, caption documents and each encoder's queries."""

    images: torch.Tensor  # (images, vocab)
    captions: torch.Tensor  # (captions, vocab), the lm caption encoder
    queries: dict[str, torch.Tensor]  # query encoder -> (captions, vocab)


def encode_split(
    model: LexVLA, split: SplitFeatures, images: torch.Tensor | None = None
) -> Encoded:
    """Word weights of every image and caption of a split, for every query encoder."""
    captions = encode_captions(model, split)
    queries = {name: encode_captions(model, split, name) for name in model.config.query_encoders}
    encoded = encode_images(model, split.images, split.flipped) if images is None else images
    return Encoded(encoded, captions, queries)


def frequent_words(model: LexVLA, image_weights: torch.Tensor, n: int = 20) -> list[str]:
    """The ``n`` words most image documents keep (the paper's "false discovery" check:
    a word every image has explains nothing), with their share of images in percent."""
    kept = (model.index_vectors(image_weights, "document") > 0).float().mean(dim=0)
    top = kept.argsort(descending=True)[:n]
    return [f"{model.vocab.words[i]} {100 * float(kept[i]):.0f}" for i in top]


def own_word_retention(model: LexVLA, words: torch.Tensor | None, queries: torch.Tensor) -> float:
    """Percent of the captions' own vocabulary words (``words``: padded ids, as
    ``SplitFeatures.words``) that their searched query vectors keep (pooled)."""
    if words is None:
        raise ValueError("the split has no own-word ids")
    kept = model.index_vectors(queries, "query") > 0
    own = words >= 0
    found = kept.gather(1, words.clamp(min=0)) & own
    return 100.0 * float(found.sum()) / max(1, int(own.sum()))


def lexical_retrieval(
    model: LexVLA,
    split: SplitFeatures | None,
    encoded: Encoded | None = None,
    encoder: str | None = None,
) -> RetrievalReport:
    """Recall through the index vectors: image queries against caption documents, and
    ``encoder``'s (default: the config's) caption queries against image documents; the
    split is encoded from its cached features unless ``encoded`` is given."""
    if encoded is None:
        if split is None:
            raise ValueError("lexical_retrieval needs a split or its encodings")
        encoded = encode_split(model, split)
    queries = encoded.queries[encoder or model.config.query_encoder]
    return lexical_report(
        model.index_vectors(encoded.images, "document"),
        model.index_vectors(encoded.images, "query"),
        model.index_vectors(encoded.captions, "document"),
        model.index_vectors(queries, "query"),
    )


@dataclass
class Evaluation:
    """The figures of one model on one split: lexical (and dense baseline) recall."""

    name: str
    reports: dict[str, RetrievalReport]
    frequent_image_words: list[str]
    retention: dict[str, float]  # query encoder -> own-word retention (%)

    def lines(self) -> list[str]:
        """The printed report: one row per model, the published figures, the ratios."""
        rows = [f"  {name:<24} {report.row()}" for name, report in self.reports.items()]
        for name, figures in PUBLISHED.items():
            i2t, t2i = (" / ".join(map(str, figures[d])) for d in ("i2t", "t2i"))
            rows.append(f"  {name:<24} i2t {i2t} | t2i {t2i}")
        if "dense baseline" in self.reports:
            lex, dense = self.reports[LEXICAL], self.reports["dense baseline"]
            rows.append(
                f"  lexical / dense R@1: i2t {lex.i2t[1] / dense.i2t[1]:.2f}, "
                f"t2i {lex.t2i[1] / dense.t2i[1]:.2f}"
            )
        kept = ", ".join(f"{name} {share:.1f}" for name, share in self.retention.items())
        rows.append(f"  own words kept by the query vectors (%): {kept}")
        rows.append(
            f"  most frequent image words (% of images): {', '.join(self.frequent_image_words)}"
        )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: asdict(report) for name, report in self.reports.items()},
            "frequent_image_words": self.frequent_image_words,
            "own_word_retention": self.retention,
        }


def evaluate(
    model: LexVLA, data: Path, split: str, cache: Path, baseline: bool = True, seed: int = 0
) -> Evaluation:
    """Lexical recall of ``model`` on ``split`` and, with ``baseline``, the dense baseline
    trained on the same cached features of the train split (its image vectors averaged
    with the mirror images' too when the model averages them)."""
    features = load_split_features(model, data, split, cache)
    evaluation = lexical_evaluation(model, encode_split(model, features), features.words)
    if baseline:
        train = load_split_features(model, data, "train", cache, flipped=True)
        dense = train_dense_baseline(train, seed=seed)
        mirror = model.config.vision.average_mirror
        evaluation.reports["dense baseline"] = dense_report(*dense.encode(features, mirror))
    return evaluation


def lexical_evaluation(model: LexVLA, encoded: Encoded, words: torch.Tensor | None) -> Evaluation:
    """The lexical figures of a split's encodings: recall with every query encoder, the
    own-word retention of the captions' ``words`` (padded ids) and frequent image words."""
    reports = {LEXICAL: lexical_retrieval(model, None, encoded)}
    for name in model.config.query_encoders:
        if name != model.config.query_encoder:
            reports[f"lexical, {name} queries"] = lexical_retrieval(model, None, encoded, name)
    retention = {
        name: own_word_retention(model, words, queries) for name, queries in encoded.queries.items()
    }
    return Evaluation(model.config.name, reports, frequent_words(model, encoded.images), retention)
