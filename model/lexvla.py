"""The LexVLA model: image and text encoders into one word vocabulary.

A checkpoint is one folder: ``config.json``, ``adapters.safetensors`` (the trained
adapters and biases), ``vocab.json``, and, when a backbone or LM was randomly
initialised (tests), ``frozen.safetensors`` plus the tokenizer file; after streaming
training also the LM's LoRA adapter and unfrozen backbone blocks (``model.finetuned``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch import nn

from .backbones import build_backbone
from .checkpoint import (
    is_trainable,
    load_checkpoint,
    resolve_file,
    save_checkpoint,
    tokenizer_path,
)
from .class_words import ClassWords
from .config import LexVLAConfig
from .finetuned import load_finetuned
from .image_encoder import ImageEncoder, smooth_patches
from .language_model import load_language_model
from .query_encoders import (
    HybridQueryEncoder,
    LookupEncoder,
    SentenceQueryEncoder,
    build_query_encoders,
    padded_word_ids,
)
from .random_init import one_thread, seeded
from .sentence import SentenceEncoder, runs_in_bfloat16
from .sparse import activate, quantize, sparsify, to_term_dict
from .text_encoder import TextEncoder
from .vocabulary import Vocabulary, build_vocabulary, read_wordlist

IMAGE_PASS = 8  # pictures per backbone pass: fastest on a CPU; a GPU wants more


@dataclass
class LexicalOutput:
    """Word weights of a batch."""

    word_weights: torch.Tensor  # (batch, vocab), non-negative


@dataclass
class PatchOutput:
    """Per-patch word weights of a batch of images and their patch grid."""

    patch_word_weights: torch.Tensor  # (batch, patches, vocab), non-negative
    grid: tuple[int, int]  # (rows, cols)


class LexVLA(nn.Module):
    """Both encoders and the shared frozen codebook (centred LM output rows of the vocabulary)."""

    codebook: torch.Tensor  # (vocab, hidden)

    def __init__(
        self, config: LexVLAConfig, vocab: Vocabulary, folder: Path | None = None, seed: int = 0
    ) -> None:
        """Build the encoders; the untrained adapters start from ``seed`` (see
        :mod:`model.random_init`)."""
        super().__init__()
        self.config = config
        self.vocab = vocab
        with seeded(seed):
            self._build(folder)
        self.eval()

    def _build(self, folder: Path | None) -> None:
        config, vocab = self.config, self.vocab
        tokenizer_file = tokenizer_path(config, folder)
        lm, tokenizer = load_language_model(config.text.lm, config.text.lm_config, tokenizer_file)
        hidden = int(lm.config.hidden_size)
        # The LM's output rows share a large common direction (norm ~2 of ~3 for SmolLM2):
        # it would move every word of a vector up or down together, so that a fresh adapter
        # starts with all-or-nothing vectors that training kills. Centring the rows removes
        # it; for the LM's own prediction it is a per-caption constant (ranking unchanged).
        rows = lm.get_output_embeddings().weight.detach()[list(vocab.token_ids)]
        self.register_buffer("codebook", rows - rows.mean(dim=0))  # (V, hidden)
        text = config.text
        sentence = (
            SentenceEncoder(text.sentence_encoder, text.sentence_config, tokenizer_file)
            if text.sentence_encoder
            else None
        )
        self.text = TextEncoder(
            lm, tokenizer, text, len(vocab), config.text_adapter_hidden, sentence
        )
        vision = config.vision
        backbone = build_backbone(vision.backbone, vision.weights, vision.backbone_config)
        self.image = ImageEncoder(
            backbone, config.vision.image_size, config.image_adapter_hidden, hidden, len(vocab)
        )
        sentence_dim = self.text.sentence.dim if self.text.sentence is not None else None
        self.queries = build_query_encoders(
            config.query_encoders, len(vocab), hidden, config.text_adapter_hidden, sentence_dim
        )
        self.class_words: ClassWords | None = None  # the ImageNet prior (model.class_words)
        self._codebook_bf16: torch.Tensor | None = None  # see _query_codebook
        self.finetuned = ""  # digest of a checkpoint's LoRA and backbone files (model.finetuned)
        if config.class_prior > 0 and not hasattr(backbone, "classify_features"):
            raise ValueError(f"{config.vision.backbone} has no classifier for a class prior")

    # ---- construction and checkpoints -------------------------------------------------

    @classmethod
    def from_config(cls, config: LexVLAConfig, seed: int = 0) -> LexVLA:
        """A fresh model: vocabulary from the tokenizer and word list, untrained adapters
        initialised from ``seed``.

        The text bias starts at minus the logits of the caption-free prompt, which
        removes the large constant offset every caption vector otherwise carries.
        """
        tokenizer_file = tokenizer_path(config, None)
        _, tokenizer = load_language_model(config.text.lm, config.text.lm_config, tokenizer_file)
        vocab = build_vocabulary(tokenizer, read_wordlist(resolve_file(config.wordlist, None)))
        model = cls(config, vocab, seed=seed)
        with torch.no_grad(), one_thread():
            empty = model.text.lm_features([""])  # the bias only needs the LM's end state
            model.text.bias.copy_(-(empty.end @ model.codebook.T)[0])
        return model

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> LexVLA:
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a LexVLA checkpoint (no config.json)")
        config = LexVLAConfig.load(folder / "config.json")
        model = cls(config, Vocabulary.load(folder / "vocab.json"), folder)
        load_checkpoint(model, folder)
        model.finetuned = load_finetuned(model, folder)
        return model

    def fingerprint(self) -> str:
        """A short hash of what decides this model's vectors: its config, trained weights,
        class words and vocabulary (the frozen backbone and LM are named by the config).

        An index records it; a service running a model with another one refuses the index.
        """
        digest = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for key, tensor in sorted(self.trainable_state().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        if self.class_words is not None:
            digest.update(self.class_words.indices.numpy().tobytes())
            digest.update(self.class_words.values.numpy().tobytes())
        digest.update(self.vocab.digest().encode())
        digest.update(self.finetuned.encode())
        return digest.hexdigest()[:16]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The adapters and per-word biases: everything training changes."""
        return {k: v for k, v in self.state_dict().items() if is_trainable(k)}

    def save_pretrained(self, folder: str | Path) -> None:
        save_checkpoint(self, Path(folder))

    # ---- encoding ----------------------------------------------------------------------

    def finish(self, weights: torch.Tensor) -> torch.Tensor:
        """L2-normalise word weights when the config says so.  # (batch, vocab)"""
        return nn.functional.normalize(weights, dim=-1) if self.config.normalize else weights

    def text_weights(self, stacked: torch.Tensor) -> torch.Tensor:
        """Caption word weights from stacked text features (``TextFeatures.stacked()``).

        # (batch, vocab)
        """
        return self.finish(activate(self.text.logits(stacked, self.codebook)))

    def image_weights(self, features: torch.Tensor) -> torch.Tensor:
        """Image word weights from patch features (with a class prior, the ImageNet
        classifier's words added, ``model.class_words``).  # (batch, vocab)"""
        return self.image_words(self.image_logits(features), features)

    def patch_weights(self, features: torch.Tensor, patch_window: int = 1) -> torch.Tensor:
        """Unnormalised per-patch word weights: how strongly each patch (the mean of its
        ``patch_window`` neighbourhood) activates each word, the class prior included;
        what heatmaps and PatchDis read.  # (batch, patches, vocab)"""
        local = smooth_patches(features, patch_window)
        own = activate(self.image.patch_logits(local, self.codebook))
        return self.add_class_prior(own, local.unsqueeze(-2))

    def mirror_mean(self, weights: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
        """An image's words averaged with its mirror image's (``vision.average_mirror``).
        # (batch, vocab)"""
        return self.finish(weights + mirrored)

    def image_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The pooled vocabulary logits of images' patch features.  # (batch, vocab)"""
        return self.image.pooled_logits(features, self.codebook, self.config.pooling)

    def image_words(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Image word weights from :meth:`image_logits` (the class prior added).
        # (batch, vocab)"""
        return self.finish(self.add_class_prior(activate(logits), features))

    def add_class_prior(self, weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``weights + class_prior * |weights| * prior``, the prior being the class words of
        ``features`` ``(..., patches, dim)`` under the backbone's ImageNet classifier; the
        same share of the vector for an image and a patch.  # (..., vocab)
        """
        if self.class_words is None or self.config.class_prior == 0:
            return weights
        backbone = self.image.backbone
        classify = cast(Callable[[torch.Tensor], torch.Tensor], backbone.classify_features)
        prior = self.class_words.mix(classify(features).softmax(dim=-1), len(self.vocab))
        return weights + self.config.class_prior * weights.norm(dim=-1, keepdim=True) * prior

    def index_vectors(self, weights: torch.Tensor, role: str) -> torch.Tensor:
        """What the index stores (``document``) or a search sends (``query``): the words
        :meth:`truncate` keeps as integer impacts from the one quantizer.  # (batch, vocab)
        """
        return quantize(self.truncate(weights, role), self.config.sparse.quant_scale)

    def truncate(self, weights: torch.Tensor, role: str) -> torch.Tensor:
        """The words a ``document`` or ``query`` keeps (``SparseConfig``), as float weights."""
        sparse = self.config.sparse
        if role not in ("document", "query"):
            raise ValueError(f"role must be 'document' or 'query', not {role!r}")
        document = role == "document"
        return sparsify(
            weights,
            sparse.doc_top_k if document else sparse.query_top_k,
            sparse.doc_min_weight if document else 0.0,
            sparse.renormalize and self.config.normalize,
        )

    def term_dicts(self, weights: torch.Tensor, role: str) -> list[dict[str, int]]:
        """Index vectors as ``{word: impact}`` per row (the JsonVectorCollection form)."""
        return [to_term_dict(row, self.vocab.words) for row in self.index_vectors(weights, role)]

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> LexicalOutput:
        """Captions or queries -> ``(batch, vocab)`` word weights."""
        parts = []
        for start in range(0, len(texts), batch_size):
            features = self.text.features(list(texts[start : start + batch_size]))
            parts.append(self.text_weights(features.stacked()))
        return LexicalOutput(word_weights=torch.cat(parts))

    def query_weights(
        self, encoder: str, stacked: torch.Tensor, word_ids: torch.Tensor
    ) -> torch.Tensor:
        """Text query word weights from cached text features and own-word ids (training and
        evaluation): ``stacked`` as :meth:`text_weights` takes it.  # (batch, vocab)"""
        keep = None  # words searched whatever their rank
        if encoder == "lm":
            weights = self.text_weights(stacked)
        elif encoder == "lookup":
            weights = self.finish(cast(LookupEncoder, self.queries["lookup"])(word_ids))
        elif encoder == "sentence":
            weights = self.finish(self._expansion(self.queries["sentence"], stacked))
        else:
            hybrid = cast(HybridQueryEncoder, self.queries["hybrid"])
            own = hybrid.lookup(word_ids)
            weights = self.finish(self._expansion(hybrid.sentence, stacked) + own)
            keep = own > 0
        return self.text_query(weights, keep)

    def text_query(self, weights: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """A text query's words: its top ``sparse.text_query_top_k`` when that is set, plus
        the words ``keep`` marks (``hybrid``: the query's own words) whatever their rank,
        at most ``sparse.query_top_k`` in all, the marked ones first (so the index's query
        cut after this keeps them).  # (batch, vocab)"""
        sparse = self.config.sparse
        if not sparse.text_query_top_k:
            return weights
        renormalize = sparse.renormalize and self.config.normalize
        return sparsify(
            weights, sparse.text_query_top_k, 0.0, renormalize, keep, sparse.query_top_k
        )

    def _expansion(self, encoder: nn.Module, stacked: torch.Tensor) -> torch.Tensor:
        """A sentence query encoder's word weights from the embedding at the end of
        ``stacked``.  # (batch, vocab)"""
        sentence = cast(SentenceQueryEncoder, encoder)
        dim = int(sentence.adapter.norm.normalized_shape[0])
        return activate(sentence.logits(stacked[:, -dim:], self._query_codebook()))

    def _query_codebook(self) -> torch.Tensor:
        """The codebook a sentence query reads: outside training, on a CPU with native
        bfloat16, a bfloat16 copy (the batch-1 product is memory-bound: half the bytes,
        ~2x faster); otherwise the codebook itself."""
        if torch.is_grad_enabled() or not runs_in_bfloat16(self.codebook.device):
            return self.codebook
        cached = self._codebook_bf16
        if cached is None or cached.device != self.codebook.device:  # first use, or moved
            cached = self._codebook_bf16 = self.codebook.to(torch.bfloat16)
        return cached

    @torch.inference_mode()
    def encode_queries(self, texts: Sequence[str], encoder: str | None = None) -> LexicalOutput:
        """Text queries -> ``(batch, vocab)`` word weights with ``encoder`` (default: the
        config's ``query_encoder``); ``lm`` is :meth:`encode_texts`."""
        name = encoder or self.config.query_encoder
        if name not in self.config.query_encoders:
            raise ValueError(f"this model has no {name!r} query encoder")
        if name == "lm":
            return LexicalOutput(
                word_weights=self.text_query(self.encode_texts(texts).word_weights)
            )
        device = self.codebook.device
        ids = padded_word_ids(texts, self.vocab.index).to(device)
        stacked = torch.zeros(len(texts), 0, device=device)
        if name in ("sentence", "hybrid"):
            assert self.text.sentence is not None
            stacked = self.text.sentence(list(texts))
        return LexicalOutput(word_weights=self.query_weights(name, stacked, ids))

    @torch.inference_mode()
    def encode_images(
        self,
        images: Sequence[Image.Image],
        batch_size: int = IMAGE_PASS,
        image_size: int | None = None,
    ) -> LexicalOutput:
        """Images -> ``(batch, vocab)`` word weights.

        ``batch_size`` is the pictures per backbone pass: with ``vision.average_mirror``
        a pass holds half as many images and their mirror images."""
        mirror = self.config.vision.average_mirror
        step = max(1, batch_size // 2) if mirror else batch_size
        weights = []
        for pixels in self._pixel_batches(images, step, image_size):
            n = len(pixels)
            both = torch.cat([pixels, pixels.flip(-1)]) if mirror else pixels
            w = self.image_weights(self.image.patch_features(both))
            weights.append(self.mirror_mean(w[:n], w[n:]) if mirror else w)
        return LexicalOutput(word_weights=torch.cat(weights))

    @torch.inference_mode()
    def encode_patches(
        self,
        images: Sequence[Image.Image],
        batch_size: int = IMAGE_PASS,
        image_size: int | None = None,
        patch_window: int = 1,
    ) -> PatchOutput:
        """Images -> per-patch word weights (:meth:`patch_weights`) and their grid; the
        images as given, never mirrored."""
        patches = [
            self.patch_weights(self.image.patch_features(pixels), patch_window)
            for pixels in self._pixel_batches(images, batch_size, image_size)
        ]
        side = round(patches[0].shape[1] ** 0.5)
        return PatchOutput(patch_word_weights=torch.cat(patches), grid=(side, side))

    def _pixel_batches(
        self, images: Sequence[Image.Image], size: int, image_size: int | None
    ) -> Iterator[torch.Tensor]:
        for start in range(0, len(images), size):
            yield self.image.pixels(images[start : start + size], image_size)
