"""Indexed files as an attacker would touch them: the service serves only the bytes that
were indexed, as the image type they decode as, with ``nosniff`` and a Content-Security-
Policy; a file that is gone, overwritten or swapped for a link is a JSON 404 that names
the image id, never a server path, on every route that reads it (no 500)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench.server import ServiceProcess
from indexer import JobOptions, Source, build
from model import LexVLA
from service import create_app

from .conftest import index_settings

SCRIPT = b"<script>alert(document.cookie)</script>"
PHOTOS = {  # a name in the served folder: the sample photo copied there
    "kept.jpg": "astronaut.jpg",
    "victim.jpg": "chelsea.jpg",
    "twin.jpg": "coffee.jpg",
    "gone.jpg": "rocket.jpg",
    "noise.jpg": "camera.jpg",
    "swapped.jpg": "grass.jpg",
}
ROUTES = ("images", "thumbnails", "heatmaps")


def polyglot_gif() -> bytes:
    """A valid GIF whose comment block is an HTML script."""
    out = io.BytesIO()
    Image.new("RGB", (48, 32), "blue").save(out, format="GIF", comment=SCRIPT)
    assert SCRIPT in out.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def folder(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served") / "photos"
    folder.mkdir()
    for name, sample in PHOTOS.items():
        shutil.copy(photos / "images" / sample, folder / name)
    (folder / "poly.html").write_bytes(polyglot_gif())
    return folder


@pytest.fixture(scope="module")
def served_index(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0: LexVLA
) -> Path:
    """An index of ``folder`` built by the indexer's real job (a folder source)."""
    index = tmp_path_factory.mktemp("served-index") / "index"
    options = JobOptions(model="tiny-lite0", device="cpu", workers=0, progress=False)
    build(Source.folder(folder), index, options, model=tiny_lite0)
    return index


@pytest.fixture(scope="module")
def served(served_index: Path) -> Iterator[TestClient]:
    app = create_app(index_settings(served_index))
    with TestClient(app, raise_server_exceptions=False) as client:  # a 500 is an answer
        yield client


def get(client: TestClient, route: str, image_id: str) -> object:
    params = {"word": "cat"} if route == "heatmaps" else None
    return client.get(f"/{route}/{image_id}", params=params)


def refused(client: TestClient, image_id: str, folder: Path) -> list[str]:
    """Each route's answer for ``image_id``: a JSON 404 naming the id and no path."""
    responses = {route: get(client, route, image_id) for route in ROUTES}
    statuses = {route: r.status_code for route, r in responses.items()}  # type: ignore[attr-defined]
    assert statuses == dict.fromkeys(ROUTES, 404)
    details = [r.json()["detail"] for r in responses.values()]  # type: ignore[attr-defined]
    for detail in details:
        assert image_id in detail and str(folder) not in detail and "/tmp" not in detail, detail
    return details


def test_an_html_polyglot_is_served_as_the_gif_it_is(served: TestClient) -> None:
    response = served.get("/images/poly.html")
    assert response.status_code == 200
    assert response.content == polyglot_gif()
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy


def test_files_are_served_as_the_type_they_decode_as(served: TestClient, folder: Path) -> None:
    response = served.get("/images/kept.jpg")
    assert response.status_code == 200
    assert response.content == (folder / "kept.jpg").read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    thumbnail = served.get("/thumbnails/poly.html")
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"


def test_the_page_and_the_api_carry_a_content_security_policy(served: TestClient) -> None:
    page = served.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for path in ("/healthz", "/search?q=a+cat", "/stats", "/nothing-here"):
        response = served.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "default-src 'none'" in response.headers["content-security-policy"], path


def test_a_file_swapped_for_a_link_to_a_system_file_is_refused(
    served: TestClient, folder: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "victim.jpg").unlink()
    (folder / "victim.jpg").symlink_to(secret)
    refused(served, "victim.jpg", folder)
    assert b"root:x" not in served.get("/images/victim.jpg").content


def test_a_link_out_of_the_indexed_folder_is_refused_even_to_the_same_bytes(
    served: TestClient, folder: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "copy.jpg"
    shutil.copy(folder / "twin.jpg", outside)
    (folder / "twin.jpg").unlink()
    (folder / "twin.jpg").symlink_to(outside)
    (detail, *_) = refused(served, "twin.jpg", folder)
    assert "outside the folder it was indexed from" in detail


def test_a_file_swapped_for_another_indexed_file_is_refused(
    served: TestClient, folder: Path
) -> None:
    (folder / "swapped.jpg").unlink()
    (folder / "swapped.jpg").symlink_to(folder / "kept.jpg")
    (detail, *_) = refused(served, "swapped.jpg", folder)
    assert "changed since it was indexed" in detail


def test_an_overwritten_file_is_refused(served: TestClient, folder: Path) -> None:
    (folder / "noise.jpg").write_bytes(os.urandom(4000))
    (detail, *_) = refused(served, "noise.jpg", folder)
    assert "changed since it was indexed" in detail


def test_a_deleted_file_is_a_404_without_its_path(served: TestClient, folder: Path) -> None:
    (folder / "gone.jpg").unlink()
    (detail, *_) = refused(served, "gone.jpg", folder)
    assert detail == "the file of image 'gone.jpg' is gone"


def test_a_file_over_this_servers_pixel_limit_is_a_422(served_index: Path) -> None:
    """Indexed under the indexer's limit, refused under the server's: 422, not a 500."""
    with ServiceProcess(served_index, "--max-image-pixels", "1000") as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            thumbnail = http.get("/thumbnails/kept.jpg")
            heatmap = http.get("/heatmaps/kept.jpg", params={"word": "cat"})
            assert http.get("/images/kept.jpg").status_code == 200  # served as it is
    assert thumbnail.status_code == heatmap.status_code == 422
    for response in (thumbnail, heatmap):
        assert "'kept.jpg' cannot be decoded" in response.json()["detail"]
        assert "exceeds the limit of 1000" in response.json()["detail"]
