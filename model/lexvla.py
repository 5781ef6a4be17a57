"""The LexVLA model: image and text encoders into one word vocabulary.

A checkpoint is one folder: ``config.json``, ``adapters.safetensors`` (the trained
adapters and biases), ``vocab.json``, and, when a backbone or LM was randomly
initialised (tests), ``frozen.safetensors`` plus the tokenizer file; after streaming
training also the LM's LoRA adapter and unfrozen backbone blocks (``model.finetuned``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from .backbones import build_backbone
from .class_words import CLASS_WORDS, ClassWords
from .config import CONFIG_DIR, LexVLAConfig
from .finetuned import base_state_dict, load_finetuned
from .image_encoder import ImageEncoder, smooth_patches
from .language_model import load_language_model
from .query_encoders import (
    QUERY_ENCODERS,
    HybridQueryEncoder,
    LookupEncoder,
    SentenceQueryEncoder,
    padded_word_ids,
)
from .random_init import one_thread, seeded
from .sentence import SentenceEncoder
from .sparse import activate, quantize, sparsify, to_term_dict
from .text_encoder import TextEncoder
from .vocabulary import Vocabulary, build_vocabulary, read_wordlist

ADAPTERS = "adapters.safetensors"
FROZEN = "frozen.safetensors"


@dataclass
class LexicalOutput:
    """Word weights of a batch; per-patch weights and their grid for images on request."""

    word_weights: torch.Tensor  # (batch, vocab), non-negative
    patch_word_weights: torch.Tensor | None = None  # (batch, patches, vocab)
    grid: tuple[int, int] | None = None  # (rows, cols) of the patch grid


def _resolve(name: str, folder: Path | None) -> Path:
    """A file named in a config: absolute, in the checkpoint folder, or in model/configs."""
    for base in (folder, CONFIG_DIR):
        if base is not None and (base / name).exists():
            return base / name
    return Path(name)


def _is_trainable(key: str) -> bool:
    return (
        ".adapter." in key
        or key.startswith("queries.")
        or (key.endswith(".bias") and key.count(".") == 1)
    )


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
        tokenizer_file = _resolve(config.text.tokenizer, folder) if config.text.tokenizer else None
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
        self.queries = self._query_encoders(hidden)
        self.class_words: ClassWords | None = None  # the ImageNet prior (model.class_words)
        self.finetuned = ""  # digest of a checkpoint's LoRA and backbone files (model.finetuned)
        if config.class_prior > 0 and not hasattr(backbone, "classify_features"):
            raise ValueError(f"{config.vision.backbone} has no classifier for a class prior")

    def _query_encoders(self, hidden: int) -> nn.ModuleDict:
        """The trained query encoders besides ``lm`` (``model.query_encoders``)."""
        encoders = nn.ModuleDict()
        for name in self.config.query_encoders:
            if name not in QUERY_ENCODERS:
                raise ValueError(f"unknown query encoder {name!r}; known: {QUERY_ENCODERS}")
            if name == "lookup":
                encoders[name] = LookupEncoder(len(self.vocab))
            elif name in ("sentence", "hybrid"):
                if self.text.sentence is None:
                    raise ValueError(f"the {name} query encoder needs text.sentence_encoder")
                kind = SentenceQueryEncoder if name == "sentence" else HybridQueryEncoder
                width, dim = self.config.text_adapter_hidden, self.text.sentence.dim
                encoders[name] = kind(dim, width, hidden, len(self.vocab))
        return encoders

    # ---- construction and checkpoints -------------------------------------------------

    @classmethod
    def from_config(cls, config: LexVLAConfig, seed: int = 0) -> LexVLA:
        """A fresh model: vocabulary from the tokenizer and word list, untrained adapters
        initialised from ``seed``.

        The text bias starts at minus the logits of the caption-free prompt, which
        removes the large constant offset every caption vector otherwise carries.
        """
        tokenizer_file = _resolve(config.text.tokenizer, None) if config.text.tokenizer else None
        _, tokenizer = load_language_model(config.text.lm, config.text.lm_config, tokenizer_file)
        vocab = build_vocabulary(tokenizer, read_wordlist(_resolve(config.wordlist, None)))
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
        state = load_file(str(folder / ADAPTERS))
        if (folder / FROZEN).is_file():
            state.update(load_file(str(folder / FROZEN)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if _is_trainable(k)]
        if missing or unexpected:
            raise ValueError(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")
        if config.class_prior > 0:
            if not (folder / CLASS_WORDS).is_file():
                raise FileNotFoundError(f"{folder} sets class_prior but has no {CLASS_WORDS}")
            model.class_words = ClassWords.load(folder / CLASS_WORDS)
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
        return {k: v for k, v in self.state_dict().items() if _is_trainable(k)}

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config
        # float16 halves the file; the weights load back into float32 parameters.
        trained = {k: v.half().contiguous() for k, v in self.trainable_state().items()}
        save_file(trained, folder / ADAPTERS)
        self.vocab.save(folder / "vocab.json")
        frozen: dict[str, torch.Tensor] = {}
        if config.text.sentence_encoder == "random":
            assert self.text.sentence is not None
            frozen |= {f"text.sentence.{k}": v for k, v in self.text.sentence.state_dict().items()}
        if config.text.lm == "random":
            frozen |= {f"text.lm.{k}": v for k, v in base_state_dict(self.text.lm).items()}
            assert config.text.tokenizer is not None
            source = _resolve(config.text.tokenizer, None)
            if source.resolve() != (folder / source.name).resolve():
                shutil.copyfile(source, folder / source.name)
            config = replace(config, text=replace(config.text, tokenizer=source.name))
        if config.vision.weights is None:
            frozen |= {
                f"image.backbone.{k}": v for k, v in self.image.backbone.state_dict().items()
            }
        if frozen:
            save_file({k: v.detach().clone() for k, v in frozen.items()}, folder / FROZEN)
        if config.class_prior > 0:
            if self.class_words is None:
                raise ValueError("class_prior is set but the model has no class words")
            self.class_words.save(folder / CLASS_WORDS)
        config.save(folder / "config.json")

    # ---- encoding ----------------------------------------------------------------------

    def finish(self, weights: torch.Tensor) -> torch.Tensor:
        """L2-normalise word weights when the config says so.  # (batch, vocab)"""
        return nn.functional.normalize(weights, dim=-1) if self.config.normalize else weights

    def text_weights(self, stacked: torch.Tensor) -> torch.Tensor:
        """Caption word weights from stacked text features (``TextFeatures.stacked()``).

        # (batch, vocab)
        """
        return self.finish(activate(self.text.logits(stacked, self.codebook)))

    def image_weights(
        self, features: torch.Tensor, with_patches: bool = False, patch_window: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image word weights from patch features, and per-patch weights on request.

        With a class prior (``config.class_prior > 0``) both also get the ImageNet
        classifier's words (``model.class_words``). Per-patch weights are unnormalised:
        they say how strongly each patch (the mean of its ``patch_window`` neighbourhood)
        activates each word, which is what heatmaps and PatchDis read.
        """
        weights = self.image_words(self.image_logits(features), features)
        patches = None
        if with_patches:
            local = smooth_patches(features, patch_window)
            own = activate(self.image.patch_logits(local, self.codebook))
            patches = self.add_class_prior(own, local.unsqueeze(-2))
        return weights, patches

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
        """Query word weights from cached text features and own-word ids (training and
        evaluation): ``stacked`` as :meth:`text_weights` takes it.  # (batch, vocab)"""
        if encoder == "lm":
            return self.text_weights(stacked)
        if encoder == "lookup":
            return self.finish(cast(LookupEncoder, self.queries["lookup"])(word_ids))
        if encoder == "sentence":
            return self.finish(self._expansion(self.queries["sentence"], stacked))
        hybrid = cast(HybridQueryEncoder, self.queries["hybrid"])
        return self.finish(self._expansion(hybrid.sentence, stacked) + hybrid.lookup(word_ids))

    def _expansion(self, encoder: nn.Module, stacked: torch.Tensor) -> torch.Tensor:
        """A sentence query encoder's word weights from the embedding at the end of
        ``stacked``.  # (batch, vocab)"""
        sentence = cast(SentenceQueryEncoder, encoder)
        dim = int(sentence.adapter.norm.normalized_shape[0])
        return activate(sentence.logits(stacked[:, -dim:], self.codebook))

    @torch.inference_mode()
    def encode_queries(self, texts: Sequence[str], encoder: str | None = None) -> LexicalOutput:
        """Text queries -> ``(batch, vocab)`` word weights with ``encoder`` (default: the
        config's ``query_encoder``); ``lm`` is :meth:`encode_texts`."""
        name = encoder or self.config.query_encoder
        if name not in self.config.query_encoders:
            raise ValueError(f"this model has no {name!r} query encoder")
        if name == "lm":
            return self.encode_texts(texts)
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
        with_patches: bool = False,
        batch_size: int = 32,
        image_size: int | None = None,
        patch_window: int = 1,
    ) -> LexicalOutput:
        """Images -> ``(batch, vocab)`` word weights (+ per-patch weights and grid)."""
        weights, patches = [], []
        for start in range(0, len(images), batch_size):
            pixels = self.image.pixels(images[start : start + batch_size], image_size)
            features = self.image.patch_features(pixels)
            w, p = self.image_weights(features, with_patches, patch_window)
            weights.append(w)
            if p is not None:
                patches.append(p)
        grid = None
        if with_patches:
            side = round(patches[0].shape[1] ** 0.5)
            grid = (side, side)
        return LexicalOutput(
            word_weights=torch.cat(weights),
            patch_word_weights=torch.cat(patches) if with_patches else None,
            grid=grid,
        )
