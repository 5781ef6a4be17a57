"""The API's addresses of an indexed image, its thumbnail and its word heatmaps."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _in_index(path: str, index: str | None) -> str:
    """``path`` in the index ``index`` (None: the default index, no parameter)."""
    return f"{path}?{urlencode({'index': index})}" if index is not None else path


def image_url(image_id: str, index: str | None = None) -> str:
    return _in_index(f"/images/{quote(image_id)}", index)


def thumbnail_url(image_id: str, index: str | None = None) -> str:
    return _in_index(f"/thumbnails/{quote(image_id)}", index)
