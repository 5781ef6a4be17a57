"""Bad requests get a 4xx with a message that says what is wrong, never a 5xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.server import ServiceProcess
from service import create_app

from .conftest import bomb_png, image_bytes, index_settings


def detail(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"q": ""}, 422, "q: String should have at least 1 character"),
        ({"q": "   \t "}, 422, "the query is empty"),
        ({"q": "x" * 60_000}, 422, "at most 1000 characters"),
        ({}, 422, "give either q (the query text) or url"),
        ({"q": "dog", "url": "http://example.org/a.jpg"}, 422, "give either q"),
        ({"q": "dog", "index": "nope"}, 404, "no index named 'nope'; this service serves: photos"),
        ({"q": "dog", "target": "videos"}, 422, "target: Input should be 'images' or 'captions'"),
        ({"q": "dog", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"q": "dog", "k": -5}, 422, "greater than or equal to 1"),
        ({"q": "dog", "k": 10**9}, 422, "k: Input should be less than or equal to 1000"),
        ({"q": "dog", "k": "ten"}, 422, "k: Input should be a valid integer"),
        ({"q": "dog", "explain": "maybe"}, 422, "explain: Input should be a valid boolean"),
        ({"q": "dog", "limit": 5}, 422, "limit: Extra inputs are not permitted"),
        ({"q": "dog", "boost": "zebra"}, 422, "not in the model's vocabulary: zebra"),
    ],
)
def test_bad_get_queries(
    client: TestClient, params: dict[str, object], status: int, message: str
) -> None:
    response = client.get("/search", params=params)  # type: ignore[arg-type]
    assert response.status_code == status
    assert message in detail(response)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"q": "dog", "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"q": "x" * 100_000}, "q: String should have at most 1000 characters"),
        ({"k": 3}, "give either q (the query text) or url"),
        ({"q": 42}, "q: Input should be a valid string"),
        ({"q": "dog", "k": 2.5}, "k: Input should be a valid integer"),
        ({"q": "dog", "boost": "sand"}, "boost: Input should be a valid array"),
        ({"q": "dog", "boost": ["w"] * 65}, "boost: List should have at most 64 items"),
    ],
)
def test_bad_json_bodies(client: TestClient, body: dict[str, object], message: str) -> None:
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert message in detail(response)


def test_malformed_json_and_wrong_content_types(client: TestClient) -> None:
    broken = client.post(
        "/search", content=b'{"q": "dog"', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in detail(broken)
    plain = client.post("/search", content=b"dog", headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "multipart/form-data" in detail(plain)
    bare = client.post("/search")
    assert bare.status_code == 415


def upload(client: TestClient, data: bytes, name: str = "query.png", **fields: object) -> object:
    return client.post(
        "/search",
        files={"image": (name, data, "application/octet-stream")},
        data=fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "empty"),
        (b"this is plain text, not a picture", 415, "not an image"),
        (image_bytes(fmt="JPEG")[:300], 400, "truncated or corrupt"),
        (bomb_png(), 413, "decompression bomb"),
    ],
    ids=["empty", "not-an-image", "truncated-jpeg", "decompression-bomb"],
)
def test_bad_uploads(client: TestClient, data: bytes, status: int, message: str) -> None:
    response = upload(client, data)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert message in detail(response)
    assert "/tmp" not in detail(response), "no server paths in messages"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [7_500, 30_000], ids=["over-the-limit", "over-twice-the-limit"])
def test_a_bomb_is_refused_naming_the_configured_limit(client: TestClient, side: int) -> None:
    """Pillow refuses images over twice its limit itself, with its own (doubled) figure."""
    response = upload(client, bomb_png(side))
    assert response.status_code == 413  # type: ignore[attr-defined]
    message = detail(response)
    assert "pixels exceeds the limit of 50000000" in message, "the configured limit"
    assert "100000000" not in message


def test_odd_but_valid_images_are_searched(client: TestClient) -> None:
    for data in (image_bytes(mode="RGBA"), image_bytes(mode="L"), image_bytes((3, 2000), "GIF")):
        assert upload(client, data).status_code == 200  # type: ignore[attr-defined]


Part = tuple[str, str | None, bytes]  # field name, file name (None: a text field), content


def multipart(parts: list[Part]) -> bytes:
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        chunks.append(f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        chunks.append(data + b"\r\n")
    return b"".join(chunks) + b"--XyZ--\r\n"


@pytest.mark.parametrize(
    ("parts", "status", "message"),
    [
        ([("k", None, b"3")], 422, "file field 'image'"),
        ([("image", None, b"not a file")], 422, "file field 'image'"),
        ([("picture", "p.png", b"x")], 422, "unknown form fields: picture"),
        ([("image", "i.png", b"x"), ("color", None, b"red")], 422, "unknown form fields: color"),
        ([("image", "i.png", b"x"), ("k", None, b"0")], 422, "k: Input should be greater"),
        ([("image", "i.png", b"x"), ("target", None, b"videos")], 422, "target: Input should"),
        ([("image", "i.png", b"x"), ("boost", None, b"zebra")], 422, "vocabulary: zebra"),
        ([("image", "i.png", b"x"), ("image", "j.png", b"y")], 400, "Too many files"),
    ],
)
def test_bad_multipart_forms(
    client: TestClient, parts: list[Part], status: int, message: str
) -> None:
    response = client.post(
        "/search",
        content=multipart(parts),
        headers={"content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == status, response.text
    assert message in detail(response)


@pytest.fixture(scope="module")
def small_limit_client(tiny_index: Path) -> Iterator[TestClient]:
    settings = index_settings(tiny_index, max_upload_bytes=50_000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_uploads_over_the_limit_get_413(small_limit_client: TestClient) -> None:
    big = image_bytes((1000, 1000), "BMP")  # about 3 MB
    response = upload(small_limit_client, big, "big.bmp")
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert "exceeds the limit of 50000 bytes" in detail(response)


def test_a_streamed_body_over_the_limit_is_cut_off(small_limit_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 4096

    response = small_limit_client.post(
        "/search",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 413
    assert "exceeds the limit" in detail(response)


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert client.get("/nothing-here").status_code == 404
    assert client.delete("/search").status_code == 405


def test_a_100_kb_query_to_the_real_server(live_server: ServiceProcess) -> None:
    """Through uvicorn's own HTTP parser (httpx refuses such URLs on the client side)."""
    url = f"{live_server.url}/search?q={'x' * 100_000}"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=30)
    assert error.value.code == 422
    assert "at most 1000 characters" in json.loads(error.value.read())["detail"]
