"""Recall on a split from live encodings of its photos and captions (``evaluate --live``).

Cached features (``model.training.features``) describe the frozen backbone and LM; a
checkpoint that fine-tuned them (LoRA, unfrozen backbone blocks: ``model.finetuned``)
is evaluated from the files, through ``LexVLA.encode_images`` and ``encode_texts``,
exactly as the indexer and the service encode.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..image_encoder import load_image
from ..lexvla import LexVLA
from ..query_encoders import padded_word_ids
from .data import Pair, load_split
from .evaluate import Encoded, Evaluation, lexical_evaluation


def encode_pairs(
    model: LexVLA, pairs: list[Pair], image_batch: int = 32, text_batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Word weights of every photo ``(images, vocab)`` and caption ``(captions, vocab)``;
    caption ``c`` belongs to photo ``c // captions per photo``."""
    images = [
        model.encode_images([load_image(p.image) for p in pairs[i : i + image_batch]]).word_weights
        for i in tqdm(range(0, len(pairs), image_batch), desc="photos", unit="batch")
    ]
    captions = [c for p in pairs for c in p.captions]
    order = sorted(range(len(captions)), key=lambda i: len(captions[i]))  # less padding
    weights = torch.empty(len(captions), len(model.vocab))
    for start in tqdm(range(0, len(order), text_batch), desc="captions", unit="batch"):
        rows = order[start : start + text_batch]
        weights[rows] = model.encode_texts([captions[i] for i in rows]).word_weights
    return torch.cat(images), weights


def caption_queries(model: LexVLA, texts: list[str], encoder: str, batch: int = 64) -> torch.Tensor:
    """The query vectors ``encoder`` makes of ``texts``.  # (texts, vocab)"""
    return torch.cat(
        [
            model.encode_queries(texts[i : i + batch], encoder).word_weights
            for i in range(0, len(texts), batch)
        ]
    )


def evaluate_live(model: LexVLA, data: Path, split: str) -> Evaluation:
    """Lexical recall of ``model`` on ``split``, encoded from its photos and captions
    (caption queries of each of the model's query encoders too)."""
    pairs = load_split(data, split)
    images, captions = encode_pairs(model, pairs)
    texts = [c for p in pairs for c in p.captions]
    queries = {
        name: captions if name == "lm" else caption_queries(model, texts, name)
        for name in model.config.query_encoders
    }
    words = padded_word_ids(texts, model.vocab.index)
    return lexical_evaluation(model, Encoded(images, captions, queries), words)
