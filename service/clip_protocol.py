"""clip-retrieval's back-end protocol: its request fields, and our hits as its results.

clip-retrieval's client (``ClipClient``) and web front end (clip-front) post
``/knn-service`` and ``/metadata`` bodies (JSON, whatever their content type says) and
read ``[{id, similarity, url, caption, ...}]``. Fields are read as its back end reads
them, with its back end's defaults; fields this product has no model for
(``use_mclip``, ``use_safety_model``, ``use_violence_detector``, ``aesthetic_score``,
``aesthetic_weight``) are accepted and ignored (:func:`ignored_fields` names those a
request set), and unknown fields are ignored as the back end ignores them.

Differences that a client sees: ids are strings (an image id, or ``image_id#n`` for a
caption); ``similarity`` is the score over ``quant_scale`` squared (the cosine of the
quantized vectors); each result carries ``score`` and ``matches`` (the words that make
the score, summing to it exactly); and ``embedding_input`` is a lexical vector
``{word: weight}``, not a list of floats.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer import CaptionRow, ImageRow

from .explain import word_matches
from .query import Target
from .schemas import MAX_K, MAX_QUERY_CHARS, MAX_URL_CHARS, WordMatch
from .searcher import RankedDoc
from .urls import image_url, thumbnail_url

MAX_VECTOR_WORDS = 1024  # Lucene's clause limit
IGNORED = (
    "use_mclip",
    "use_safety_model",
    "use_violence_detector",
    "aesthetic_score",
    "aesthetic_weight",
)
TARGETS = {"image": Target.images, "text": Target.captions}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KnnRequest(_Lenient):
    """A ``/knn-service`` body. The first of ``text`` (when not empty), ``image``,
    ``image_url`` and ``embedding_input`` is the query, as in clip-retrieval."""

    text: str | None = Field(default=None, max_length=MAX_QUERY_CHARS)
    image: str | None = Field(default=None, description="the query image, base64")
    image_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    embedding_input: (
        Annotated[
            dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]],
            Field(max_length=MAX_VECTOR_WORDS),
        ]
        | None
    ) = Field(
        default=None,
        description="a lexical vector {word: weight} over the model's vocabulary (non-negative "
        "weights of any scale; kept as a query is: its top words, normalised, quantized)",
    )
    modality: Literal["image", "text"] = Field(
        default="image", description="what to find: images, or captions (text)"
    )
    num_images: int = Field(default=40, ge=1, description="results with metadata and matches")
    num_result_ids: int | None = Field(
        default=None, ge=1, description=f"results in all (default num_images; at most {MAX_K})"
    )
    indice_name: str | None = Field(
        default=None, max_length=64, description="the index (default: the first)"
    )
    deduplicate: bool = Field(default=False, description="leave near-duplicate results out")
    use_mclip: bool = Field(default=False, description="ignored")
    use_safety_model: bool = Field(default=False, description="ignored")
    use_violence_detector: bool = Field(default=False, description="ignored")
    aesthetic_score: int | str | None = Field(default=None, description="ignored")
    aesthetic_weight: float | str | None = Field(default=None, description="ignored")

    @field_validator("embedding_input", mode="before")
    @classmethod
    def _lexical(cls, given: object) -> object:
        if isinstance(given, list):
            raise ValueError(
                "a list of floats (a dense CLIP embedding) cannot be searched here: give a "
                "lexical vector {word: weight} over this service's vocabulary"
            )
        return given

    @property
    def k(self) -> int:
        """How many hits to search for."""
        return min(max(self.num_images, self.num_result_ids or 0), MAX_K)

    @property
    def target(self) -> Target:
        return TARGETS[self.modality]


class MetadataRequest(_Lenient):
    """A ``/metadata`` body: result ids of one index."""

    ids: list[str | int] = Field(max_length=MAX_K)
    indice_name: str | None = Field(default=None, max_length=64)


class KnnResult(BaseModel):
    """One ``/knn-service`` result; past ``num_images``, only ``id``, ``similarity`` and
    ``score`` (``/metadata`` gives the rest, as in clip-retrieval)."""

    model_config = ConfigDict(extra="allow")  # metadata given at indexing, as columns

    id: str
    similarity: float = Field(description="score / quant_scale², the quantized cosine")
    score: int = Field(description="the exact sum of matches[*].contribution")
    url: str | None = None
    caption: str | None = None
    image_id: str | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None
    matches: list[WordMatch] | None = None


class MetadataItem(BaseModel):
    id: str | int
    metadata: dict[str, Any]


def ignored_fields(request: KnnRequest) -> list[str]:
    """The fields this product ignores that ``request`` set to something."""
    return [name for name in IGNORED if getattr(request, name) not in (None, "", False)]


def metadata(image: ImageRow, caption: CaptionRow | None, base: str, index: str | None) -> dict:
    """A result's columns: metadata given at indexing, then absolute URLs and the caption
    (the matched one for a caption, else the image's first)."""
    text = caption.text if caption is not None else next(iter(image.captions), "")
    return {
        **image.metadata,
        "url": base + image_url(image.id, index),
        "caption": text,
        "image_id": image.id,
        "thumbnail_url": base + thumbnail_url(image.id, index),
        "width": image.width,
        "height": image.height,
    }


def knn_results(
    hits: list[RankedDoc],
    query: dict[str, int],
    num_images: int,
    quant_scale: float,
    base: str,
    index: str | None,
) -> list[dict[str, Any]]:
    """``hits`` as clip-retrieval results; URLs start with ``base`` and name ``index``."""
    results = []
    for rank, hit in enumerate(hits):
        result: dict[str, Any] = {}
        if rank < num_images:
            result = metadata(hit.image, hit.caption, base, index)
            result["matches"] = [m.model_dump() for m in word_matches(query, hit.terms)]
        result |= {"id": hit.doc_id, "similarity": hit.score / quant_scale**2, "score": hit.score}
        results.append(result)
    return results
