"""What flows between the stages: input items, their outcomes and why one was skipped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class SkipReason(StrEnum):
    """Why an input did not make it into the index (the summary groups by these)."""

    EMPTY_FILE = "empty file"
    UNREADABLE = "unreadable file"
    NOT_AN_IMAGE = "not an image"
    CORRUPT = "truncated or corrupt image"
    BOMB = "decompression bomb"
    NO_WORDS = "no active words"
    DUPLICATE = "duplicate content"
    DUPLICATE_ID = "duplicate id"
    BAD_MANIFEST_LINE = "bad manifest line"


@dataclass(frozen=True)
class Item:
    """One image to index, as the reader found it (``path`` is absolute)."""

    id: str
    path: str
    captions: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    skip: str | None = None  # a SkipReason value when the input is already known to be bad
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Item:
        return cls(**{**data, "captions": tuple(data["captions"])})


@dataclass(frozen=True)
class ImageRecord:
    """The outcome for one item: indexed (with file facts) or skipped (with the reason)."""

    id: str
    path: str
    indexed: bool
    reason: str | None = None  # a SkipReason value when skipped
    detail: str | None = None  # the underlying error message, for the log
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None  # after EXIF rotation
    height: int | None = None
    captions: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        return cls(**{**data, "captions": tuple(data["captions"])})

    @classmethod
    def skipped(cls, item: Item, reason: SkipReason, detail: str | None = None) -> ImageRecord:
        return cls._of(item, indexed=False, reason=reason.value, detail=detail)

    @classmethod
    def decoded(cls, item: Item, sha256: str, size: int, width: int, height: int) -> ImageRecord:
        return cls._of(item, indexed=True, sha256=sha256, bytes=size, width=width, height=height)

    @classmethod
    def _of(cls, item: Item, **outcome: Any) -> ImageRecord:
        return cls(
            id=item.id, path=item.path, captions=item.captions, metadata=item.metadata, **outcome
        )


def caption_id(image_id: str, position: int) -> str:
    """The document id of an image's ``position``-th caption."""
    return f"{image_id}#{position}"


def split_caption_id(doc_id: str) -> tuple[str, int]:
    """(image id, position) of a caption document id."""
    image_id, position = doc_id.rsplit("#", 1)
    return image_id, int(position)


def check_terms(terms: Mapping[str, int]) -> dict[str, int]:
    """Positive integer impacts only (zeros dropped); words must not contain spaces."""
    checked = {}
    for word, impact in terms.items():
        if impact < 0:
            raise ValueError(f"negative impact {impact} for {word!r}")
        if not word or word != word.strip() or len(word.split()) != 1:
            raise ValueError(f"{word!r} is not a single whitespace-free term")
        if impact:
            checked[word] = int(impact)
    return checked
