"""Collections for indexer tests: real photos, every kind of bad input, captioned manifests."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from indexer import JobOptions
from indexer.records import SkipReason

PHOTOS = ("astronaut", "coffee", "rocket", "camera", "chelsea", "coins", "horse", "moon")
CAPTIONS = (
    "a dog runs on the beach",
    "two men ride bikes down the street",
    "a red car parked in the snow",
    "the cat sleeps on a sofa",
    "a boy jumps into the ocean",
    "people walk through a field",
    "a white horse in the grass",
    "a girl in a red shirt sits",
)


def photo(name: str, size: int = 96) -> Image.Image:
    """A real scikit-image photo, small so tests stay fast."""
    image = Image.fromarray(getattr(skimage.data, name)())
    return image.convert("RGB").resize((size, size))


def noise(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny valid PNG that claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def write_bad_collection(folder: Path) -> dict[str, str | None]:
    """Two real photos and every kind of awkward or bad file; id -> expected skip reason."""
    folder.mkdir(parents=True, exist_ok=True)
    photo("astronaut").save(folder / "astronaut.jpg")
    photo("coffee").save(folder / "coffee.png")
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    palette = Image.new("P", (30, 30), 1)  # red, its left half transparent
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(0, (0, 0, 15, 30))
    palette.save(folder / "palette.png", transparency=0)
    Image.fromarray(np.full((30, 30), 32768, dtype=np.uint16)).save(folder / "gray16.png")
    Image.new("RGBA", (30, 30), (0, 0, 255, 128)).save(folder / "alpha.png")
    Image.new("LA", (30, 30), (10, 200)).save(folder / "gray-alpha.png")
    Image.fromarray(np.full((20, 20), 0.25, dtype=np.float32)).save(folder / "float.tif")
    frames = [noise(seed) for seed in (1, 2)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    photo("rocket").resize((60, 30)).save(folder / "rotated.jpg", exif=exif)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "random.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    jpeg = (folder / "astronaut.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = (folder / "coffee.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "bomb.png").write_bytes(png_header_only(30000, 30000))
    shutil.copyfile(folder / "astronaut.jpg", folder / "zz-copy-of-astronaut.jpg")
    (folder / "broken-link.jpg").symlink_to(folder / "missing.jpg")
    (folder / ".hidden.jpg").write_bytes(jpeg)  # hidden files are not walked
    indexed = ("astronaut.jpg", "coffee.png", "cmyk.jpg", "palette.png", "gray16.png")
    indexed += ("alpha.png", "gray-alpha.png", "float.tif", "animated.gif", "rotated.jpg")
    expected: dict[str, str | None] = dict.fromkeys(indexed)
    expected |= {
        "empty.jpg": SkipReason.EMPTY_FILE.value,
        "notes.txt": SkipReason.NOT_AN_IMAGE.value,
        "random.jpg": SkipReason.NOT_AN_IMAGE.value,
        "truncated.jpg": SkipReason.CORRUPT.value,
        "truncated.png": SkipReason.CORRUPT.value,
        "bomb.png": SkipReason.BOMB.value,
        "zz-copy-of-astronaut.jpg": SkipReason.DUPLICATE.value,
        "broken-link.jpg": SkipReason.UNREADABLE.value,
    }
    return expected


def write_captioned(folder: Path, count: int, first_seed: int = 0) -> Path:
    """``count`` distinct images with two captions each, and their manifest."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    with manifest.open("w") as f:
        for i in range(count):
            name = f"img{first_seed + i:04d}.png"
            noise(first_seed + i).save(images / name)
            captions = [CAPTIONS[(first_seed + i) % len(CAPTIONS)], CAPTIONS[i * 3 % len(CAPTIONS)]]
            line = {
                "id": f"doc{first_seed + i}",
                "image": f"images/{name}",
                "captions": captions,
                "n": i,
            }
            f.write(json.dumps(line) + "\n")
    return manifest


def fast_options(**changes: object) -> JobOptions:
    """Tiny model, in-process decoding, no progress bars."""
    defaults: dict[str, object] = {
        "model": "tiny-lite0",
        "device": "cpu",
        "workers": 0,
        "batch_size": 4,
        "shard_size": 4,
        "progress": False,
    }
    return JobOptions(**(defaults | changes))  # type: ignore[arg-type]


@pytest.fixture
def bad_collection(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    folder = tmp_path / "bad"
    return folder, write_bad_collection(folder)
