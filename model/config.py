"""Model configuration: frozen dataclasses that round-trip through JSON.

A named config lives in ``model/configs/NAME.json``; a checkpoint folder holds the
same JSON as ``config.json`` next to its weights and vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"

DEFAULT_EXAMPLE = "The man is riding a white horse."
DEFAULT_EXAMPLE_WORDS = ("man", "riding", "white", "horse")


@dataclass(frozen=True)
class VisionConfig:
    """The image backbone and its input size.

    ``weights``: ``"registry"`` (weights from a registry package), a local path or hub
    name (DINOv2 through transformers), or ``None`` for random initialisation.
    ``backbone_config``: architecture overrides for a random backbone (tests).
    ``average_mirror``: an image's words are the mean of its own and its mirror image's
    (test-time augmentation: twice the backbone's work per image; training is unchanged).
    """

    backbone: str = "efficientnet-lite0"
    weights: str | None = "registry"
    image_size: int = 224
    backbone_config: dict[str, Any] | None = None
    average_mirror: bool = False


@dataclass(frozen=True)
class TextConfig:
    """The causal LM that predicts a caption's words in context.

    ``lm``: a registry name (``"smollm2-135m-instruct"``), a local path or hub name,
    or ``"random"`` with ``lm_config`` (a ``LlamaConfig`` dict) and ``tokenizer`` (a
    ``tokenizer.json`` path relative to ``model/configs``).
    ``sentence_encoder``: ``None``, ``"all-minilm-l6-v2"`` (registry package), a local
    path, or ``"random"`` with ``sentence_config`` (a ``BertConfig`` dict; the tokenizer
    is ``tokenizer``): a sentence embedding the text adapter reads too.
    """

    lm: str = "smollm2-135m-instruct"
    lm_config: dict[str, Any] | None = None
    tokenizer: str | None = None
    example: str = DEFAULT_EXAMPLE
    example_words: tuple[str, ...] = DEFAULT_EXAMPLE_WORDS
    max_caption_tokens: int = 64
    sentence_encoder: str | None = None
    sentence_config: dict[str, Any] | None = None


@dataclass(frozen=True)
class SparseConfig:
    """What the index keeps of a vector and what a search sends.

    A document keeps its words of weight >= ``doc_min_weight`` (a weight of the
    L2-normalised vector), at most ``doc_top_k``; a query its top ``query_top_k``, and a
    text query (any query encoder) its top ``text_query_top_k`` when that is set (> 0).
    ``renormalize``: rescale what is kept to unit length (a score stays a cosine).
    Impacts are ``round(weight * quant_scale)``; a word whose impact rounds to 0 is gone.
    """

    doc_top_k: int = 256
    query_top_k: int = 64
    quant_scale: float = 256.0
    doc_min_weight: float = 0.0
    renormalize: bool = True
    text_query_top_k: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.doc_top_k <= 1024:
            raise ValueError("doc_top_k must be in 1..1024 (Lucene's clause limit)")
        if self.query_top_k <= 0 or self.quant_scale <= 0:
            raise ValueError("query_top_k and quant_scale must be positive")
        if self.text_query_top_k < 0:
            raise ValueError("text_query_top_k must be >= 0 (0: query_top_k)")
        if not 0 <= self.doc_min_weight < 1:
            raise ValueError("doc_min_weight must be in [0, 1)")


@dataclass(frozen=True)
class LexVLAConfig:
    """Everything needed to rebuild a LexVLA model around its trained adapters."""

    name: str = "lexvla-lite0-smollm2"
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    sparse: SparseConfig = field(default_factory=SparseConfig)
    image_adapter_hidden: int = 1024
    text_adapter_hidden: int = 1024
    pooling: str = "features"  # "features", "latent" or "max": see ImageEncoder.pooled_logits
    normalize: bool = True  # L2-normalise word weights, so a dot product is a cosine
    class_prior: float = 0.0  # weight of the ImageNet class-word prior (model.class_words)
    wordlist: str = "/usr/share/dict/words"
    query_encoders: tuple[str, ...] = ("lm",)  # the text-query encoders this model has
    query_encoder: str = "lm"  # the one text searches use (model.query_encoders)

    def __post_init__(self) -> None:
        if self.query_encoder not in self.query_encoders:
            raise ValueError(
                f"query_encoder {self.query_encoder!r} is not one of query_encoders "
                f"{list(self.query_encoders)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LexVLAConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        text = dict(data.get("text", {}))
        if "example_words" in text:
            text["example_words"] = tuple(text["example_words"])
        top = {k: v for k, v in data.items() if k not in ("vision", "text", "sparse")}
        if "query_encoders" in top:
            top["query_encoders"] = tuple(top["query_encoders"])
        return cls(
            **top,
            vision=VisionConfig(**data.get("vision", {})),
            text=TextConfig(**text),
            sparse=SparseConfig(**data.get("sparse", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> LexVLAConfig:
        return cls.from_dict(json.loads(path.read_text()))

    def with_sparse(self, **changes: Any) -> LexVLAConfig:
        return replace(self, sparse=replace(self.sparse, **changes))

    def merged(self, overrides: dict[str, Any]) -> LexVLAConfig:
        """This config with ``overrides`` merged in (nested sections key by key)."""
        data = self.to_dict()
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return LexVLAConfig.from_dict(data)


def named_configs() -> list[str]:
    """Names of the configs that ship in ``model/configs`` (not the tokenizer files there)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if '"name"' in p.read_text()[:200])


def load_named_config(name: str) -> LexVLAConfig:
    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no config named {name!r}; known: {', '.join(named_configs())}")
    return LexVLAConfig.load(path)
