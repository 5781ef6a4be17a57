"""The class-word prior's training side: class vectors from the trained text side, and
the prior's weight chosen on dev (``python -m model.training class-prior``).

Each ImageNet class gets the trained text side's vector of the prompt ``"a {class}."``
(its top ``k`` words); an image's word weights become ``normalize(w + weight * prior)``
(``LexVLA.add_class_prior``). A later training run can keep the prior in the loop
(``train --class-prior --class-words``).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..class_words import ClassWords, class_names
from ..lexvla import LexVLA
from .evaluate import encode_images, encode_split, lexical_retrieval
from .retrieval import RetrievalReport
from .splits import SplitFeatures

PROMPT = "a {}."


@torch.no_grad()
def compute_class_words(model: LexVLA, k: int = 64) -> ClassWords:
    """The class vectors from the model's trained text side (1,000 prompts, ~1 min on CPU)."""
    prompts = [PROMPT.format(name) for name in class_names()]
    return ClassWords.from_weights(model.encode_texts(prompts).word_weights, k)


def with_prior(model: LexVLA, class_words: ClassWords, weight: float) -> LexVLA:
    """Attach class words to ``model`` (in place) with the given prior weight."""
    model.class_words = class_words
    model.config = replace(model.config, class_prior=weight)
    return model


def sweep_prior_weights(
    model: LexVLA, split: SplitFeatures, class_words: ClassWords, weights: list[float]
) -> list[tuple[float, RetrievalReport]]:
    """Recall on ``split`` with each prior weight (captions encoded once)."""
    encoded = encode_split(model, split)
    reports = []
    for weight in weights:
        encoded.images = encode_images(
            with_prior(model, class_words, weight), split.images, split.flipped
        )
        reports.append((weight, lexical_retrieval(model, split, encoded)))
    return reports
