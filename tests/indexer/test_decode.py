from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.decode import (
    DEFAULT_MAX_PIXELS,
    ImageSkipped,
    decode_image,
    load_item,
    set_pixel_limit,
)
from indexer.records import Item, SkipReason

from .conftest import png_header_only


def pixels(folder: Path, name: str, size: int | None = None) -> np.ndarray:
    return np.asarray(decode_image(folder / name, size).image, dtype=np.int32)


def test_every_file_of_the_bad_collection_gets_its_outcome(bad_collection) -> None:  # type: ignore[no-untyped-def]
    folder, expected = bad_collection
    for name, reason in expected.items():
        if reason == SkipReason.DUPLICATE.value:
            reason = None  # duplicates are a job-level decision; the file itself decodes
        loaded = load_item(Item(id=name, path=str(folder / name)), 32)
        assert loaded.record.reason == reason, (name, loaded.record.detail)
        assert loaded.record.indexed == (reason is None)
        if reason is None:
            assert loaded.image is not None and loaded.image.size == (32, 32)
            assert loaded.image.mode == "RGB"
            assert loaded.record.sha256 and loaded.record.bytes
        else:
            assert loaded.image is None and loaded.record.detail


def test_conversions_keep_the_picture(bad_collection) -> None:  # type: ignore[no-untyped-def]
    folder, _ = bad_collection
    red = pixels(folder, "cmyk.jpg")[15, 20]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    palette = pixels(folder, "palette.png")
    assert (palette[:, :15] == 255).all()  # transparent -> white, not black
    assert tuple(palette[0, 20]) == (255, 0, 0)
    assert abs(int(pixels(folder, "gray16.png")[0, 0, 0]) - 128) <= 1  # rescaled, not clipped
    assert abs(int(pixels(folder, "float.tif")[0, 0, 0]) - 64) <= 1
    blue = pixels(folder, "alpha.png")[0, 0]  # half-transparent blue over white
    assert abs(blue[0] - 127) <= 2 and blue[2] == 255
    over_white = 10 * 200 / 255 + 255 * (1 - 200 / 255)
    assert abs(int(pixels(folder, "gray-alpha.png")[0, 0, 0]) - over_white) <= 1


def test_exif_rotation_is_applied_and_reported(bad_collection) -> None:  # type: ignore[no-untyped-def]
    folder, _ = bad_collection
    decoded = decode_image(folder / "rotated.jpg")
    assert (decoded.width, decoded.height) == (30, 60) == decoded.image.size
    assert decode_image(folder / "rotated.jpg", 16).image.size == (16, 16)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_catches_bombs_below_pillows_hard_limit(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(png_header_only(10000, 10000))  # 100 Mpx: a warning only
    with pytest.raises(ImageSkipped) as caught:
        decode_image(tmp_path / "big.png")
    assert caught.value.reason == SkipReason.BOMB
    Image.new("RGB", (40, 40)).save(tmp_path / "small.png")
    set_pixel_limit(1000)
    try:
        with pytest.raises(ImageSkipped, match="exceeds the limit of 1000"):
            decode_image(tmp_path / "small.png")
    finally:
        set_pixel_limit(DEFAULT_MAX_PIXELS)
    assert decode_image(tmp_path / "small.png").image.size == (40, 40)


def test_directories_and_missing_files_are_unreadable(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.jpg"):
        loaded = load_item(Item(id="x", path=str(path)), 32)
        assert loaded.record.reason == SkipReason.UNREADABLE.value


def test_large_jpegs_decode_at_reduced_scale_close_to_a_full_decode(tmp_path: Path) -> None:
    big = Image.fromarray(np.kron(np.eye(8), np.ones((100, 100))).astype(np.uint8) * 255)
    big.convert("RGB").save(tmp_path / "big.jpg", quality=95)
    fast = pixels(tmp_path, "big.jpg", 64)
    with Image.open(tmp_path / "big.jpg") as img:
        full_size = img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    full = np.asarray(full_size, dtype=np.int32)
    assert np.abs(fast - full).mean() < 8


def test_large_pngs_are_reduced_right_after_loading_and_stay_close(tmp_path: Path) -> None:
    ramp = np.linspace(0, 255, 2400)
    picture = np.stack([np.tile(ramp, (1200, 1)), np.tile(ramp[::2, None], (1, 2400))] * 2, -1)
    Image.fromarray(picture[..., :3].astype(np.uint8)).save(tmp_path / "big.png")
    reduced = decode_image(tmp_path / "big.png", min_side=100).image
    assert reduced.size == (200, 100), "the largest whole factor keeping each side >= 100"
    fast = pixels(tmp_path, "big.png", 64)
    with Image.open(tmp_path / "big.png") as img:
        full = np.asarray(img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
    assert np.abs(fast - full.astype(np.int32)).mean() < 2
    assert decode_image((tmp_path / "big.png").read_bytes(), 64).image.size == (64, 64)
