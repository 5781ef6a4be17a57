"""What the search core is asked: a :class:`Query` against a :class:`Target`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image

from .query_edit import QueryEdits


class Target(StrEnum):
    """What a query searches: indexed images or indexed captions."""

    images = "images"
    captions = "captions"


@dataclass(frozen=True)
class Query:
    """One search of the index ``index``: text (possibly empty when edits alone make the
    query), an image, or a lexical vector ``terms`` (``{word: weight}``)."""

    index: str
    target: Target
    k: int
    edits: QueryEdits = field(default_factory=QueryEdits)
    text: str | None = None
    image: Image.Image | None = None
    terms: dict[str, float] | None = None
