"""The model a training or evaluation run starts from: a fresh config or a checkpoint,
with query encoders added to a trained model and their word weights' starting values."""

from __future__ import annotations

import json

import torch

from .. import load_encoder
from ..config import load_named_config, named_configs
from ..lexvla import LexVLA
from ..query_encoders import LookupEncoder

CHECKPOINT_OVERRIDES = {"sparse", "query_encoders", "query_encoder", "vision"}
VISION_OVERRIDES = {"average_mirror"}  # what a trained checkpoint may change of its vision


def build_model(init: str, overrides: str, seed: int = 0) -> tuple[LexVLA, set[str]]:
    """The model to train or evaluate and its untrained query encoders: a fresh model of
    the named config ``init`` (the JSON ``overrides`` merged in, adapters initialised from
    ``seed``), or the checkpoint ``init``, whose overrides may change its sparse settings
    and add query encoders (trained later with ``train_only``)."""
    changes = json.loads(overrides) if overrides else {}
    if init in named_configs() and init != "default":
        model = LexVLA.from_config(load_named_config(init).merged(changes), seed)
        return model, set(model.queries)
    trained = load_encoder(init)
    if set(changes) - CHECKPOINT_OVERRIDES or set(changes.get("vision", {})) - VISION_OVERRIDES:
        allowed = ", ".join(sorted(CHECKPOINT_OVERRIDES - {"vision"}))
        raise ValueError(
            f"a checkpoint's config overrides may only change {allowed} and vision.average_mirror"
        )
    config = trained.config.merged(changes)
    if config.query_encoders == trained.config.query_encoders:
        trained.config = config
        return trained, set()
    model = LexVLA(config, trained.vocab, seed=seed)
    missing, _ = model.load_state_dict(trained.state_dict(), strict=False)
    added = set(model.queries) - set(trained.queries)
    if any(not k.startswith(tuple(f"queries.{name}." for name in added)) for k in missing):
        raise ValueError(f"{init} does not hold the weights its config names: {missing}")
    model.class_words = trained.class_words
    return model, added


def init_lookup_weights(
    model: LexVLA, words: torch.Tensor, encoders: set[str], scale: float = 1.0
) -> None:
    """Start the word weights of the lookup encoders among ``encoders`` at ``scale`` times
    each word's IDF over the training captions (``softplus(weight) = scale * log(N / df)``);
    unseen words get the largest IDF."""
    df = torch.bincount(words[words >= 0], minlength=len(model.vocab)).float()
    idf = torch.log(len(words) / df.clamp(min=1.0))
    for name in encoders:
        for module in model.queries[name].modules():
            if isinstance(module, LookupEncoder):
                with torch.no_grad():
                    module.weight.copy_(torch.log(torch.expm1((scale * idf).clamp(min=1e-3))))
