"""Image-URL queries (``url`` on /search): fetched from a real local HTTP server when the
allowlist names it, and every way a URL could reach what it must not refused with a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import create_app

from .conftest import ImageServer, index_settings

LIMITS = {"image_url_max_bytes": 200_000, "image_url_timeout_s": 1.0}


@pytest.fixture(scope="module")
def allowing(tiny_index: Path) -> Iterator[TestClient]:
    """The service with image URLs allowed from 127.0.0.1 (named by its address)."""
    settings = index_settings(tiny_index, image_url_hosts=["127.0.0.1"], **LIMITS)
    with TestClient(create_app(settings)) as client:
        yield client


def ranking(answer: dict[str, object]) -> list[tuple[str, int]]:
    return [(h["id"], h["score"]) for h in answer["hits"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/photo.jpg", "/redirect?to=/photo.jpg"])
def test_an_allowed_url_is_searched_as_its_image_would_be(
    allowing: TestClient, image_server: ImageServer, path: str
) -> None:
    """The fetched photo (directly, or after a redirect on the same host) gets the hits
    an upload of the same file gets."""
    by_url = allowing.get("/search", params={"url": image_server.url + path, "k": 5})
    assert by_url.status_code == 200, by_url.text
    upload = allowing.post("/search", files={"image": ("c.jpg", image_server.photo)}, data={"k": 5})
    assert by_url.json()["query"]["kind"] == "image"
    assert ranking(by_url.json()) == ranking(upload.json()) and by_url.json()["hits"]
    posted = allowing.post("/search", json={"url": image_server.url + path, "k": 5})
    assert ranking(posted.json()) == ranking(upload.json())


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        pytest.param(
            "http://localhost:{port}/photo.jpg",
            403,
            "host 'localhost' are not allowed",
            id="host-not-allowlisted",
        ),
        pytest.param(
            "{url}/redirect?to=http://localhost:{port}/photo.jpg",
            403,
            "redirects to another host",
            id="redirect-to-another-host",
        ),
        pytest.param(
            "{url}/redirect?to=file:///etc/passwd",
            403,
            "redirects to another host",
            id="redirect-to-a-file",
        ),
        pytest.param("{url}/big.png", 413, "exceeds the limit of 200000 bytes", id="too-big"),
        pytest.param(
            "{url}/declared-big.png", 413, "exceeds the limit of 200000 bytes", id="claims-too-big"
        ),
        pytest.param("{url}/slow.jpg", 422, "did not deliver within 1 s", id="too-slow"),
        pytest.param(
            "{url}/page.html", 415, "answered 'text/html', not an image", id="not-an-image-type"
        ),
        pytest.param("{url}/fake.png", 415, "not an image", id="not-an-image-body"),
        pytest.param("{url}/missing.jpg", 422, "answered 404", id="not-found"),
        pytest.param("file:///etc/passwd", 422, "http or https, not 'file'", id="file-scheme"),
        pytest.param(
            "ftp://127.0.0.1:{port}/photo.jpg", 422, "http or https, not 'ftp'", id="ftp-scheme"
        ),
    ],
)
def test_refusals(
    allowing: TestClient, image_server: ImageServer, url: str, status: int, message: str
) -> None:
    given = url.format(url=image_server.url, port=image_server.port)
    response = allowing.get("/search", params={"url": given})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_loopback_address_is_refused_unless_the_allowlist_names_it(
    tiny_index: Path, image_server: ImageServer
) -> None:
    """``localhost`` is on the allowlist, but it resolves to 127.0.0.1, which is not."""
    settings = index_settings(tiny_index, image_url_hosts=["localhost"], **LIMITS)
    with TestClient(create_app(settings)) as client:
        response = client.get("/search", params={"url": f"http://localhost:{image_server.port}/"})
    assert response.status_code == 403
    assert "resolves to a private, loopback or reserved address" in response.json()["detail"]


def test_image_urls_are_off_by_default(client: TestClient, image_server: ImageServer) -> None:
    response = client.get("/search", params={"url": f"{image_server.url}/photo.jpg"})
    assert response.status_code == 403
    assert "image URL queries are off" in response.json()["detail"]
