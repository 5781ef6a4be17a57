"""The index manifest: which model wrote the vectors and what a published version holds."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model import LexVLA

FORMAT = 1  # bump when the on-disk layout changes


@dataclass(frozen=True)
class ModelInfo:
    """The encoder an index was written with; queries must use the same one."""

    source: str  # what ``load_encoder`` was given ("default", a config name or a folder)
    name: str
    fingerprint: str
    vocab_digest: str
    vocab_size: int
    quant_scale: float
    doc_top_k: int
    query_top_k: int

    @classmethod
    def of(cls, model: LexVLA, source: str) -> ModelInfo:
        sparse = model.config.sparse
        return cls(
            source=source,
            name=model.config.name,
            fingerprint=model.fingerprint(),
            vocab_digest=model.vocab.digest(),
            vocab_size=len(model.vocab),
            quant_scale=sparse.quant_scale,
            doc_top_k=sparse.doc_top_k,
            query_top_k=sparse.query_top_k,
        )


@dataclass(frozen=True)
class IndexManifest:
    """``manifest.json`` of a published version."""

    version: str
    created: str  # ISO 8601, UTC
    model: ModelInfo
    images: int  # image documents in the image index
    captions: int  # caption documents in the caption index
    batches: tuple[str, ...]  # the shard batches this version was built from, in order
    build: dict[str, Any]  # how it was built: mode ("full" or "incremental"), seconds
    format: int = FORMAT
    shards: int = 1  # search shards (indexer.search_shards); 1: one Lucene index of each kind

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexManifest:
        return cls(
            **{
                **data,
                "model": ModelInfo(**data["model"]),
                "batches": tuple(data["batches"]),
            }
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> IndexManifest:
        return cls.from_json(json.loads(path.read_text()))
