"""Batch indexing of images and captions into Lucene impact indexes, and reading them back.

Jobs: ``python -m indexer build|add|remove|rebuild|info`` (:mod:`indexer.cli`), or from
Python :func:`build`, :func:`add`, :func:`remove`, :func:`rebuild` with
:class:`JobOptions` and a :class:`Source`. What a search service needs:

- :func:`open_published` -> :class:`PublishedIndex` (paths of the current version and
  its :class:`IndexManifest`); ``PublishedIndex.is_current()`` says when to reopen;
  :func:`open_version` opens a kept one by name. A version of several search shards
  gives each shard's paths by ``PublishedIndex.search_shard(n)``; :func:`shard_of` says
  which shard holds an image (and :func:`split_caption_id` a caption's image).
- :class:`ImpactSearcher` over ``PublishedIndex.images`` or ``.captions`` (exact, or in two
  phases with a :class:`TwoPhase` plan).
- :class:`MetadataStore` over ``PublishedIndex.metadata``: rows and stored term vectors.
- :func:`decode_image` (and :func:`set_pixel_limit`) to decode query images exactly as
  indexed images were.
"""

from .decode import DecodedImage, ImageSkipped, decode_image, set_pixel_limit
from .jobs import add, build, rebuild, remove
from .layout import (
    IndexNotFoundError,
    PublishedIndex,
    current_version,
    open_published,
    open_version,
)
from .lucene import ImpactSearcher, LuceneError, TwoPhase
from .manifest import IndexManifest, ModelInfo
from .options import JobError, JobOptions
from .records import SkipReason, split_caption_id
from .search_shards import shard_of
from .sources import Source, SourceError, walk_folder
from .store import CaptionRow, ImageRow, MetadataStore
from .summary import JobSummary

__all__ = [
    "CaptionRow",
    "DecodedImage",
    "ImageRow",
    "ImageSkipped",
    "ImpactSearcher",
    "IndexManifest",
    "IndexNotFoundError",
    "JobError",
    "JobOptions",
    "JobSummary",
    "LuceneError",
    "MetadataStore",
    "ModelInfo",
    "PublishedIndex",
    "SkipReason",
    "Source",
    "SourceError",
    "TwoPhase",
    "add",
    "build",
    "current_version",
    "decode_image",
    "open_published",
    "open_version",
    "rebuild",
    "remove",
    "set_pixel_limit",
    "shard_of",
    "split_caption_id",
    "walk_folder",
]
