"""Robust image decoding: every file ends as an upright RGB image or a reason to skip it
(:func:`load_item`: a job's item, hashed and decoded, or its skipped record).

Handles what real collections hold: EXIF rotation, CMYK, palette and alpha images
(composited on white), 16-bit and float images (rescaled, not clipped), and rejects
empty, non-image, truncated and corrupt files and decompression bombs (more pixels
than Pillow's ``Image.MAX_IMAGE_PIXELS``; :func:`set_pixel_limit` changes it).
Large images are decoded at a reduced scale when the encoder wants a small input (JPEGs
in the DCT domain), so query images should go through :func:`decode_image` too for
identical vectors.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .records import ImageRecord, Item, SkipReason

# The pixel limit is checked explicitly below (thread-safe); Pillow's warning is noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's limit, about 89 megapixels
EXIF_ORIENTATION = 0x0112
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
TRANSPOSES = {  # EXIF orientation -> the transposition that makes the stored pixels upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
REDUCIBLE_MODES = frozenset(
    {"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
)
WHITE = (255, 255, 255, 255)
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, MemoryError)


class ImageSkipped(Exception):
    """An input that cannot become an image, with the reason the summary reports."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class DecodedImage:
    """An upright RGB image (resized when a size was asked for) and its original size."""

    image: Image.Image
    width: int  # upright, before resizing
    height: int


def set_pixel_limit(max_pixels: int | None) -> None:
    """Images with more pixels than this are skipped as decompression bombs."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _rescaled(values: np.ndarray, full_scale: float) -> Image.Image:
    """A single-channel 8-bit image from high-depth values, ``full_scale`` -> 255."""
    scaled = np.clip(values.astype(np.float64) * (255.0 / full_scale), 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB from any mode: alpha over white, high bit depths rescaled, the rest converted."""
    if img.mode in SIXTEEN_BIT_MODES:
        img = _rescaled(np.asarray(img), 65535.0)
    elif img.mode == "I":
        values = np.asarray(img)
        peak = float(values.max(initial=0))
        img = _rescaled(values, 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak)
    elif img.mode == "F":
        values = np.asarray(img)
        img = _rescaled(values, 1.0 if float(values.max(initial=0)) <= 1.0 else 255.0)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    return img.convert("RGB")


def _over_the_limit(pillow_message: str) -> str:
    """Pillow's bomb message names twice the limit; say which limit was set instead."""
    count = re.search(r"\((\d+) pixels\)", pillow_message)
    pixels = f"{count[1]} pixels" if count else "the image"
    return f"{pixels} exceeds the limit of {Image.MAX_IMAGE_PIXELS}"


def _open(source: Path | bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except UnidentifiedImageError as exc:
        raise ImageSkipped(SkipReason.NOT_AN_IMAGE, "no image format Pillow reads") from exc
    except Image.DecompressionBombError as exc:  # over twice the limit: Pillow's own check
        raise ImageSkipped(SkipReason.BOMB, _over_the_limit(str(exc))) from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise ImageSkipped(SkipReason.UNREADABLE, str(exc)) from exc
    except DECODE_ERRORS as exc:
        raise ImageSkipped(SkipReason.CORRUPT, str(exc)) from exc


def _byte_count(source: Path | bytes) -> int:
    if isinstance(source, bytes):
        return len(source)
    try:
        return source.stat().st_size
    except OSError as exc:
        raise ImageSkipped(SkipReason.UNREADABLE, str(exc)) from exc


def _reduced(img: Image.Image, min_side: int | None) -> Image.Image:
    """``img`` shrunk by the largest whole factor that keeps each side >= ``min_side``
    (box averaging; modes whose values are no intensities, like palettes, stay)."""
    factor = min(img.size) // min_side if min_side else 1
    return img.reduce(factor) if factor >= 2 and img.mode in REDUCIBLE_MODES else img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1))
    except (*DECODE_ERRORS, TypeError):
        return 1  # a broken EXIF block: keep the pixels as stored


def decode_image(
    source: Path | bytes, size: int | None = None, *, min_side: int | None = None
) -> DecodedImage:
    """Decode an image file (or a file's bytes) upright in RGB, squashed to ``size`` x
    ``size`` when given.

    When the picture is far larger than needed it is decoded at a reduced scale: JPEGs
    in the DCT domain, other formats by a whole-factor reduction right after loading,
    each side staying at least ``min_side`` (default ``size``), so no copy of the full
    size pixels is made. Raises :class:`ImageSkipped` with the reason when the file
    cannot be used.
    """
    if _byte_count(source) == 0:
        raise ImageSkipped(SkipReason.EMPTY_FILE, "0 bytes")
    min_side = min_side or size
    with _open(source) as img:
        width, height = img.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and width * height > limit:
            raise ImageSkipped(
                SkipReason.BOMB, f"{width}x{height} pixels exceeds the limit of {limit}"
            )
        if min_side is not None and img.format == "JPEG":
            img.draft(img.mode, (min_side, min_side))  # DCT scaling, >= min_side on each side
        try:
            img.load()
        except DECODE_ERRORS as exc:
            raise ImageSkipped(SkipReason.CORRUPT, str(exc)) from exc
        orientation = _orientation(img)
        if orientation in SWAPPING_ORIENTATIONS:
            width, height = height, width
        stored = _reduced(img, min_side)
        upright = stored.transpose(TRANSPOSES[orientation]) if orientation in TRANSPOSES else stored
        rgb = to_rgb(upright)
    if size is not None:
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return DecodedImage(rgb, width, height)


@dataclass
class Loaded:
    """One decoded item: the image for the encoder (``None`` when skipped) and its record."""

    image: Image.Image | None
    record: ImageRecord


def load_item(item: Item, image_size: int) -> Loaded:
    """Hash and decode one item; any failure becomes a skipped record."""
    if item.skip is not None:
        return Loaded(None, ImageRecord.skipped(item, SkipReason(item.skip), item.detail))
    path = Path(item.path)
    try:
        sha256, size = file_digest(path)
        decoded = decode_image(path, image_size)
    except ImageSkipped as skipped:
        return Loaded(None, ImageRecord.skipped(item, skipped.reason, skipped.detail))
    except OSError as exc:
        return Loaded(None, ImageRecord.skipped(item, SkipReason.UNREADABLE, str(exc)))
    except Exception as exc:  # a decoder bug on one odd file must not stop the job
        detail = f"{type(exc).__name__}: {exc}"
        return Loaded(None, ImageRecord.skipped(item, SkipReason.CORRUPT, detail))
    record = ImageRecord.decoded(item, sha256, size, decoded.width, decoded.height)
    return Loaded(decoded.image, record)
