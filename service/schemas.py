"""Request and response bodies of the API (pydantic models; unknown fields are rejected)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .query import Target

MAX_QUERY_CHARS = 1000  # the text encoder reads 64 tokens; longer text is a client bug
MAX_K = 1000
MAX_EDIT_WORDS = 64
MAX_URL_CHARS = 2048
WordList = list[str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchOptions(Strict):
    """What every search takes besides its query (text or image)."""

    index: str | None = Field(
        default=None, max_length=64, description="the index to search (default: the first)"
    )
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="number of hits")
    target: Target = Field(default=Target.images, description="search images or captions")
    explain: bool = Field(default=True, description="explain each hit word by word")
    boost: WordList = Field(
        default_factory=list,
        max_length=MAX_EDIT_WORDS,
        description="words to add to the query or make its strongest",
    )
    drop: WordList = Field(
        default_factory=list, max_length=MAX_EDIT_WORDS, description="words to remove"
    )

    @field_validator("boost", "drop")
    @classmethod
    def _words(cls, words: WordList) -> WordList:
        return [w.strip().lower() for w in words if w.strip()]


class TextSearch(SearchOptions):
    """A text query (``+word`` / ``-word`` in the text boost or drop a word), or the
    address of a query image (``url``; only where the service allows image URLs)."""

    q: str | None = Field(
        default=None, min_length=1, max_length=MAX_QUERY_CHARS, description="query text"
    )
    url: str | None = Field(
        default=None, min_length=1, max_length=MAX_URL_CHARS, description="a query image's URL"
    )

    @field_validator("q")
    @classmethod
    def _not_blank(cls, q: str | None) -> str | None:
        if q is not None and not q.strip():
            raise ValueError("the query is empty (only whitespace)")
        return q.strip() if q is not None else None

    @model_validator(mode="after")
    def _one_query(self) -> TextSearch:
        if (self.q is None) == (self.url is None):
            raise ValueError("give either q (the query text) or url (a query image's address)")
        return self


class WordMatch(BaseModel):
    """One word a hit shares with the query: ``contribution = query_weight * doc_weight``.

    Weights are the integer impacts Lucene holds (weight = impact / ``quant_scale``).
    """

    word: str
    query_weight: int
    doc_weight: int
    contribution: int


class HitMetadata(BaseModel):
    captions: list[str]
    image_url: str
    thumbnail_url: str
    width: int | None = None
    height: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="metadata given at indexing")


class Hit(BaseModel):
    """One result. ``score`` is the exact sum of ``matches[*].contribution``."""

    id: str = Field(description="document id: an image id, or image_id#n for a caption")
    image_id: str
    score: int
    rank: int
    caption: str | None = Field(default=None, description="the matched caption (captions only)")
    metadata: HitMetadata
    matches: list[WordMatch] | None = Field(
        default=None, description="shared words, largest contribution first (explain=true)"
    )


class QueryWord(BaseModel):
    """A word of the query vector that was searched."""

    word: str
    weight: int
    boosted: bool = False


class QueryInfo(BaseModel):
    kind: Literal["text", "image"]
    text: str | None = Field(default=None, description="the text encoded (edits removed)")
    words: list[QueryWord] = Field(description="the query vector searched, highest first")
    boost: list[str]
    drop: list[str]


class SearchResponse(BaseModel):
    query: QueryInfo
    index: str = Field(description="the index searched")
    target: Target
    k: int
    hits: list[Hit]
    quant_scale: float = Field(description="impact = round(weight * quant_scale)")
    index_version: str
    took_ms: float


class Heatmap(BaseModel):
    """How strongly each patch of an image activates one word (PatchDis)."""

    image_id: str
    word: str
    rows: int
    cols: int
    weights: list[list[float]] = Field(description="rows x cols non-negative patch weights")
    max: float = Field(description="largest weight of any word on any patch of this image")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    index_version: str | None = Field(default=None, description="the default index's version")
    indexes: dict[str, str] | None = Field(default=None, description="every index's version")
    model: str | None = None


class Stats(BaseModel):
    index: str = Field(description="the index these figures are of")
    indexes: list[str] = Field(description="every index served, the default first")
    images: int
    captions: int
    vocabulary_size: int
    model: dict[str, Any]
    index_version: str
    manifest: dict[str, Any]
    reloads: int
    queued: int


class ReloadResult(BaseModel):
    index: str
    version: str
    changed: bool


class Issue(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every 4xx and 5xx answer: what went wrong, in a sentence (and per field for 422)."""

    detail: str
    errors: list[Issue] | None = None
