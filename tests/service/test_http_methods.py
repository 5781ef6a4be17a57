"""HTTP methods: OPTIONS lists every method of a resource, HEAD works wherever GET does
(load balancers probe with it), and a wrong method is a 405 naming all the right ones."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.server import ServiceProcess

SEARCH = {"GET", "HEAD", "OPTIONS", "POST"}
READ_ONLY = {"GET", "HEAD", "OPTIONS"}


def allowed(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/search", SEARCH),
        ("/healthz", READ_ONLY),
        ("/images/rocket.jpg", READ_ONLY),
        ("/heatmaps/rocket.jpg", READ_ONLY),
        ("/admin/reload", {"OPTIONS", "POST"}),
        ("/", READ_ONLY),
    ],
)
def test_options_lists_every_method_of_the_resource(
    client: TestClient, path: str, methods: set[str]
) -> None:
    response = client.options(path)
    assert response.status_code == 204
    assert allowed(response) == methods
    assert response.content == b""


def test_a_wrong_method_is_405_naming_every_allowed_one(client: TestClient) -> None:
    response = client.delete("/search")
    assert response.status_code == 405
    assert allowed(response) == SEARCH
    assert "GET, HEAD, OPTIONS, POST" in response.json()["detail"]
    assert allowed(client.put("/healthz")) == READ_ONLY


def test_unknown_paths_stay_404_for_every_method(client: TestClient) -> None:
    for method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        assert client.request(method, "/nothing-here").status_code == 404, method


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/readyz", "/stats", "/images/rocket.jpg", "/thumbnails/rocket.jpg", "/"],
)
def test_head_answers_like_get_without_a_body(live_server: ServiceProcess, path: str) -> None:
    """Through uvicorn, which must not be sent a body for a HEAD request."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        get = http.get(path)
        head = http.head(path)
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path != "/stats":  # its queue count may differ between the two requests
        assert head.headers["content-length"] == get.headers["content-length"]
