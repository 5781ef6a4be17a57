"""The benchmark collections: real Flickr8k vectors, and synthetic ones shaped like them.

Real image documents are the default model's integer impacts (document top-k) of Flickr8k
images, computed from the backbone features ``python -m model.training features`` caches under
``cache/features`` when they are there (the adapters are cheap), else by encoding the
image files. Queries are dev captions encoded at the query top-k. A collection of ``n``
documents is the real ones first and, beyond them, synthetic documents sampled from the
real ones' statistics (:class:`CorpusStats`): active words per document, document
frequency per word, and impact values.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from .common import CACHE, FLICKR8K, REPO

if TYPE_CHECKING:
    from model import LexVLA

FEATURES = REPO / "cache" / "features"  # where python -m model.training features caches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusStats:
    """What a synthetic collection copies from a real one."""

    vocab: int
    df: np.ndarray  # (vocab,) fraction of documents that contain each word
    active: np.ndarray  # (documents,) active words of each real document
    impacts: np.ndarray  # (nnz,) every real impact value (or a sample of them)

    @classmethod
    def of(cls, docs: sp.csr_matrix) -> CorpusStats:
        """The statistics of a real ``(documents, vocab)`` impact matrix."""
        docs = docs.tocsr()
        df = np.bincount(docs.indices, minlength=docs.shape[1]) / docs.shape[0]
        return cls(docs.shape[1], df, np.diff(docs.indptr), docs.data.copy())


def _first_distinct(draws: np.ndarray, per_row: np.ndarray, keep: np.ndarray, vocab: int) -> tuple:
    """Rows' first ``keep`` distinct words in draw order: ``(row, word)`` arrays, sorted."""
    rows = np.repeat(np.arange(len(per_row)), per_row)
    keys, first = np.unique(rows.astype(np.int64) * vocab + draws, return_index=True)
    order = np.argsort(first, kind="stable")  # draw order, hence row by row
    keys = keys[order]
    row = keys // vocab
    starts = np.searchsorted(row, np.arange(len(per_row)))
    rank = np.arange(len(keys)) - starts[row]
    kept = np.sort(keys[rank < keep[row]])
    return kept // vocab, kept % vocab


class SyntheticSampler:
    """Documents whose active-word counts, word document frequencies and impacts follow
    :class:`CorpusStats`.

    Each document draws its count from the real counts, then words one after another
    (without repeats) with probabilities calibrated so that each word's document frequency
    comes out as the real one, then an impact per word from the real impacts.
    """

    def __init__(
        self, stats: CorpusStats, seed: int = 0, calibration_docs: int = 4000, iterations: int = 10
    ) -> None:
        self.stats = stats
        self.rng = np.random.default_rng(seed)
        target = stats.df
        p = target / target.sum()
        for _ in range(iterations):  # successive sampling saturates frequent words: calibrate
            p = p / p.sum()
            realized = self._df(p, calibration_docs)
            scale = np.where(realized > 0, target / np.maximum(realized, 1e-12), 1.0)
            p = p * np.clip(scale, 0.25, 4.0)
        self.p = p / p.sum()
        self._cdf = np.cumsum(self.p)

    def _df(self, p: np.ndarray, n: int) -> np.ndarray:
        self.p, self._cdf = p / p.sum(), np.cumsum(p / p.sum())
        docs = self.sample(n)
        return np.bincount(docs.indices, minlength=self.stats.vocab) / n

    def sample(self, n: int, chunk: int = 20_000) -> sp.csr_matrix:
        """``n`` synthetic documents as a ``(n, vocab)`` int32 CSR matrix."""
        return _stack(self.chunks(n, chunk), self.stats.vocab)

    def chunks(self, n: int, chunk: int = 20_000) -> list[sp.csr_matrix]:
        """The same, as row blocks of at most ``chunk`` documents."""
        return [self._chunk(min(chunk, n - s)) for s in range(0, n, chunk)]

    def _chunk(self, n: int) -> sp.csr_matrix:
        vocab = self.stats.vocab
        active = np.minimum(self.rng.choice(self.stats.active, size=n), int((self.p > 0).sum()))
        rows, words = [], []
        todo, factor = np.arange(n), 1.5
        while len(todo):  # rows that drew too few distinct words draw again, more of them
            draws_per_row = np.ceil(factor * active[todo]).astype(np.int64) + 8
            u = self.rng.random(int(draws_per_row.sum()))
            draws = np.minimum(np.searchsorted(self._cdf, u * self._cdf[-1]), vocab - 1)
            row, word = _first_distinct(draws, draws_per_row, active[todo], vocab)
            full = np.bincount(row, minlength=len(todo)) == active[todo]
            rows.append(todo[row[full[row]]])
            words.append(word[full[row]])
            todo, factor = todo[~full], factor * 2
        keys = np.sort(np.concatenate(rows).astype(np.int64) * vocab + np.concatenate(words))
        row, word = keys // vocab, keys % vocab
        data = self.rng.choice(self.stats.impacts, size=len(word)).astype(np.int32)
        return sp.csr_matrix(
            (data, word.astype(np.int32), np.searchsorted(row, np.arange(n + 1))),
            shape=(n, vocab),
        )


def collection(real: sp.csr_matrix, n: int, seed: int = 0) -> sp.csr_matrix:
    """``n`` documents: the real ones first (up to ``n``), then synthetic ones."""
    real = real.tocsr().astype(np.int32)
    if n <= real.shape[0]:
        return real[:n]
    sampler = SyntheticSampler(CorpusStats.of(real), seed)
    return _stack([real, *sampler.chunks(n - real.shape[0])], real.shape[1])


def _stack(blocks: list[sp.csr_matrix], vocab: int) -> sp.csr_matrix:
    """Row blocks as one int32 CSR matrix, int32 indices (one copy, not two)."""
    if not blocks:
        return sp.csr_matrix((0, vocab), dtype=np.int32)
    indptr = np.concatenate([[0], np.cumsum([b.nnz for b in blocks])]).astype(np.int64)
    row_ptr = np.concatenate(
        [[0]] + [b.indptr[1:].astype(np.int64) + indptr[i] for i, b in enumerate(blocks)]
    )
    indices = np.concatenate([b.indices.astype(np.int32) for b in blocks])
    data = np.concatenate([b.data.astype(np.int32) for b in blocks])
    blocks.clear()
    return sp.csr_matrix((data, indices, row_ptr), shape=(len(row_ptr) - 1, vocab), copy=False)


def save_csr(matrix: sp.csr_matrix, folder: Path) -> Path:
    """A CSR matrix as three ``.npy`` files (memory-mappable) plus its shape."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("indptr", "indices", "data"):
        np.save(folder / f"{name}.npy", getattr(matrix, name))
    (folder / "shape.json").write_text(json.dumps(list(matrix.shape)))
    return folder


def load_csr(folder: Path, mmap: bool = True) -> sp.csr_matrix:
    """The matrix :func:`save_csr` wrote (arrays memory-mapped by default)."""
    mode: Literal["r"] | None = "r" if mmap else None
    arrays = [np.load(folder / f"{n}.npy", mmap_mode=mode) for n in ("data", "indices", "indptr")]
    shape = tuple(json.loads((folder / "shape.json").read_text()))
    return sp.csr_matrix(tuple(arrays), shape=shape, copy=False)


# ---- real vectors from the default model ------------------------------------------------


def model_tag(checkpoint: Path | None = None) -> str:
    """A short tag of a checkpoint's (default: the shipped one's) weights and config (a
    retrained model gets a new one; editing its model card or checking it out does not)."""
    from model import DEFAULT_CHECKPOINT

    folder = checkpoint or DEFAULT_CHECKPOINT
    digest = hashlib.sha1()
    for name in ("adapters.safetensors", "class_words.safetensors", "config.json", "vocab.json"):
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:10]


@cache
def load_model(checkpoint: Path | None = None) -> LexVLA:
    """The model of ``checkpoint`` (default: the shipped one), loaded once."""
    from model import load_encoder

    return load_encoder(checkpoint)


def _to_csr(rows: list[np.ndarray]) -> sp.csr_matrix:
    return sp.vstack([sp.csr_matrix(r.astype(np.int32)) for r in rows], format="csr")


def real_documents(
    checkpoint: Path | None = None, data: Path = FLICKR8K, limit: int = 7000, encode: bool = False
) -> sp.csr_matrix:
    """Impacts of up to ``limit`` Flickr8k images (dev first, then train), cached.

    Images whose backbone features are cached in ``cache/features`` cost little; others
    are encoded from their files only with ``encode`` (about 0.1 s an image here).
    """
    import torch

    from model.image_encoder import load_image
    from model.training.data import load_split
    from model.training.evaluate import encode_images
    from model.training.features import feature_paths

    model = load_model(checkpoint)
    paths = {s: feature_paths(FEATURES, s, model.config) for s in ("dev", "train")}
    needed = ("image", "image_flip") if model.config.vision.average_mirror else ("image",)
    cached = {s: all(paths[s][n].is_file() for n in needed) for s in paths}
    splits = [s for s in ("dev", "train") if encode or cached[s]]
    out = CACHE / f"real-docs-{model_tag(checkpoint)}-{limit}-{'-'.join(splits)}"
    if (out / "shape.json").is_file():
        return load_csr(out, mmap=False)
    rows: list[np.ndarray] = []
    for split in splits:
        need = limit - sum(len(r) for r in rows)
        if need <= 0:
            break
        if cached[split]:
            features = [torch.load(paths[split][n], weights_only=True)[:need] for n in needed]
            log.info("real documents: %d %s images from cached features", len(features[0]), split)
            weights = encode_images(model, *features)
            rows.append(model.index_vectors(weights, "document").numpy())
        else:
            pairs = load_split(data, split)[:need]
            log.info("real documents: encoding %d %s images (no feature cache)", len(pairs), split)
            for b in range(0, len(pairs), 32):
                images = [load_image(p.image) for p in pairs[b : b + 32]]
                weights = model.encode_images(images).word_weights
                rows.append(model.index_vectors(weights, "document").numpy())
    docs = _to_csr(rows)
    save_csr(docs, out)
    return docs


def real_queries(
    checkpoint: Path | None = None, data: Path = FLICKR8K, n: int = 200
) -> sp.csr_matrix:
    """Impacts of ``n`` distinct Flickr8k dev captions as the model's query encoder
    searches them, cached."""
    from .load import dev_queries

    out = CACHE / f"queries-{model_tag(checkpoint)}-{n}"
    if (out / "shape.json").is_file():
        return load_csr(out, mmap=False)
    model = load_model(checkpoint)
    texts = dev_queries(data)[0][:n]
    weights = model.encode_queries(texts).word_weights
    queries = _to_csr([model.index_vectors(weights, "query").numpy()])
    save_csr(queries, out)
    return queries
