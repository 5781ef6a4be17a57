"""Batch indexing of images and captions into Lucene impact indexes, and reading them back.

Jobs: ``python -m indexer build|add|remove|rebuild|info`` (:mod:`indexer.cli`).
What a search service needs:

- :func:`open_published` -> :class:`PublishedIndex` (paths of the current version and
  its :class:`IndexManifest`); ``PublishedIndex.is_current()`` says when to reopen.
- :class:`ImpactSearcher` over ``PublishedIndex.images`` or ``.captions``.
- :class:`MetadataStore` over ``PublishedIndex.metadata``: rows and stored term vectors.
- :func:`decode_image` to decode query images exactly as indexed images were.
"""

from .decode import DecodedImage, ImageSkipped, decode_image
from .layout import IndexNotFoundError, PublishedIndex, current_version, open_published
from .lucene import JAVA_LOCK, ImpactSearcher, LuceneError
from .manifest import IndexManifest, ModelInfo
from .store import CaptionRow, ImageRow, MetadataStore

__all__ = [
    "JAVA_LOCK",
    "CaptionRow",
    "DecodedImage",
    "ImageRow",
    "ImageSkipped",
    "ImpactSearcher",
    "IndexManifest",
    "IndexNotFoundError",
    "LuceneError",
    "MetadataStore",
    "ModelInfo",
    "PublishedIndex",
    "current_version",
    "decode_image",
    "open_published",
]
