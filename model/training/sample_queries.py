"""A newcomer's first queries: one plain query naming what each sample photo shows.

``make demo`` indexes scikit-image's sample photos (``model.samples``); a user's first
searches name what they see. Each query's photo is ranked among all the sample photos
by the index's own scores (document and query vectors as the index stores them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lexvla import LexVLA
from ..samples import sample_photos

SAMPLE_QUERIES = {
    "astronaut": "an astronaut",
    "camera": "a man with a camera",
    "chelsea": "a cat",
    "coffee": "a cup of coffee",
    "coins": "coins",
    "rocket": "a rocket launch",
    "hubble_deep_field": "galaxies in space",
    "moon": "the surface of the moon",
    "grass": "grass",
    "brick": "a brick wall",
    "gravel": "gravel",
    "retina": "the retina of an eye",
    "immunohistochemistry": "cells under a microscope",
}


@dataclass(frozen=True)
class SampleRanks:
    """Where each sample photo ranks (1 = first) for its own query."""

    ranks: dict[str, int]

    def hit_rate(self, k: int) -> float:
        """The share of queries whose photo is among the first ``k``."""
        return sum(rank <= k for rank in self.ranks.values()) / len(self.ranks)


@torch.inference_mode()
def sample_photo_ranks(model: LexVLA, encoder: str | None = None) -> SampleRanks:
    """Rank every sample photo for each query of :data:`SAMPLE_QUERIES` with ``encoder``
    (default: the model's query encoder); ties count against the photo."""
    photos = sample_photos()
    names = list(photos)
    images = model.encode_images(list(photos.values())).word_weights
    documents = model.index_vectors(images, "document").double()
    queries = model.encode_queries(list(SAMPLE_QUERIES.values()), encoder).word_weights
    scores = model.index_vectors(queries, "query").double() @ documents.T
    ranks = {}
    for row, name in zip(scores, SAMPLE_QUERIES):
        own = row[names.index(name)]
        ranks[name] = int((row >= own).sum())
    return SampleRanks(ranks)
