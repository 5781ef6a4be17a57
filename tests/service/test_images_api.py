"""Image files, thumbnails and word heatmaps of indexed images."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer import decode_image
from model import LexVLA


def test_image_file_is_served_as_indexed(client: TestClient, photos: Path) -> None:
    response = client.get("/images/rocket.jpg")
    assert response.status_code == 200
    assert response.content == (photos / "images" / "rocket.jpg").read_bytes()
    assert response.headers["content-type"] == "image/jpeg"


def test_thumbnail_is_a_small_jpeg(client: TestClient) -> None:
    response = client.get("/thumbnails/rocket.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(response.content))
    assert max(thumb.size) == client.app.state.settings.thumbnail_size  # type: ignore[attr-defined]


@pytest.mark.parametrize("route", ["images", "thumbnails"])
def test_unknown_images_are_404(client: TestClient, route: str) -> None:
    response = client.get(f"/{route}/no-such-image.jpg")
    assert response.status_code == 404
    assert "no image with id 'no-such-image.jpg'" in response.json()["detail"]


def test_heatmap_is_the_models_patch_weights_of_the_word(
    client: TestClient, photos: Path, tiny_lite0: LexVLA
) -> None:
    response = client.get("/heatmaps/chelsea.jpg", params={"word": "Cat"})
    assert response.status_code == 200
    heatmap = response.json()
    picture = decode_image(photos / "images" / "chelsea.jpg", int(tiny_lite0.image.image_size))
    encoded = tiny_lite0.encode_patches([picture.image])
    rows, cols = encoded.grid
    assert (heatmap["image_id"], heatmap["word"]) == ("chelsea.jpg", "cat")
    assert (heatmap["rows"], heatmap["cols"]) == (rows, cols)
    expected = encoded.patch_word_weights[0, :, tiny_lite0.vocab.index["cat"]].reshape(rows, cols)
    assert len(heatmap["weights"]) == rows
    for got, want in zip(heatmap["weights"], expected.tolist()):
        assert got == pytest.approx(want, abs=1e-4)
    assert heatmap["max"] == pytest.approx(float(encoded.patch_word_weights.max()), abs=1e-4)
    assert all(v >= 0 for row in heatmap["weights"] for v in row)


def test_heatmap_errors(client: TestClient) -> None:
    unknown_image = client.get("/heatmaps/nothing.jpg", params={"word": "cat"})
    assert unknown_image.status_code == 404 and "nothing.jpg" in unknown_image.json()["detail"]
    assert client.get("/heatmaps/chelsea.jpg").status_code == 422
    assert client.get("/heatmaps/chelsea.jpg", params={"word": ""}).status_code == 422


@pytest.mark.parametrize("word", [" ", "\t", "\x00"])
def test_a_blank_heatmap_word_is_422(client: TestClient, word: str) -> None:
    response = client.get("/heatmaps/chelsea.jpg", params={"word": word})
    assert response.status_code == 422, response.text
    assert "word" in response.json()["detail"]


def test_an_unknown_word_is_422_on_heatmaps_as_on_search(client: TestClient) -> None:
    """One status for one mistake: a word outside the vocabulary is a bad parameter value."""
    heatmap = client.get("/heatmaps/chelsea.jpg", params={"word": "zebra"})
    search = client.get("/search", params={"q": "a cat", "boost": "zebra"})
    assert heatmap.status_code == search.status_code == 422
    assert "not in the model's vocabulary: zebra" in heatmap.json()["detail"]
    assert heatmap.json()["detail"] == search.json()["detail"]
