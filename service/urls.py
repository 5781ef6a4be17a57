"""The API's addresses of an indexed image, its thumbnail and its word heatmaps."""

from __future__ import annotations

from urllib.parse import quote


def image_url(image_id: str) -> str:
    return f"/images/{quote(image_id)}"


def thumbnail_url(image_id: str) -> str:
    return f"/thumbnails/{quote(image_id)}"
