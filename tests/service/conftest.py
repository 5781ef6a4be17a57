"""Service fixtures: an app on the tiny real index (``tests/conftest.py``), a second
index, real uvicorn servers in subprocesses (one index, and two), a local HTTP server
that image-URL queries fetch from, and test images (good and bad)."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench.server import ServiceProcess
from model import LexVLA
from service import Settings, create_app
from tests.conftest import build_index

REPO = Path(__file__).resolve().parents[2]


def index_settings(index: Path, **overrides: object) -> Settings:
    return Settings(index=index, reload_interval_s=0.2, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def client(tiny_index: Path) -> Iterator[TestClient]:
    """The app on the tiny index, started (lifespan) once for the session."""
    with TestClient(create_app(index_settings(tiny_index))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(tiny_index: Path) -> Iterator[ServiceProcess]:
    # These tests check answers under concurrency, not shedding (test_load_shedding.py):
    # a generous deadline keeps a loaded machine from shedding any of them.
    server = ServiceProcess(tiny_index, "--max-batch", "8", "--queue-deadline-s", "60")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# The second index: a navy picture, and the cat photo twice (PNG files of the same pixels
# but different bytes, so both are indexed, with the same vector) under the same caption.
MORE_CAPTIONS = {
    "navy.png": ["a blue wall"],
    "cat-a.png": ["a brown cat sleeps on the sofa"],
    "cat-b.png": ["a brown cat sleeps on the sofa"],
}


@pytest.fixture(scope="session")
def more_index(photos: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0: LexVLA) -> Path:
    folder = tmp_path_factory.mktemp("more-photos")
    (folder / "images").mkdir()
    cat = Image.open(photos / "images" / "chelsea.jpg")
    cat.save(folder / "images" / "cat-a.png", compress_level=1)
    cat.save(folder / "images" / "cat-b.png", compress_level=9)
    Image.new("RGB", (96, 64), "navy").save(folder / "images" / "navy.png")
    lines = [
        json.dumps({"id": name, "path": f"images/{name}", "captions": captions})
        for name, captions in MORE_CAPTIONS.items()
    ]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return build_index(folder, tmp_path_factory.mktemp("index") / "more", tiny_lite0)


@pytest.fixture(scope="session")
def two_index_server(tiny_index: Path, more_index: Path) -> Iterator[ServiceProcess]:
    """``photos`` (the default) and ``more``, image URLs allowed from 127.0.0.1."""
    server = ServiceProcess(
        tiny_index,
        "--index",
        f"more={more_index}",
        "--image-url-host",
        "127.0.0.1",
        "--queue-deadline-s",
        "60",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class ImageServer:
    """A local HTTP server on 127.0.0.1 for image-URL queries: ``/photo.jpg`` (a real
    photo), ``/redirect?to=URL``, ``/page.html``, ``/fake.png`` (not an image),
    ``/big.png`` (streams ``big`` bytes, no length), ``/declared-big.png`` (claims a
    gigabyte) and ``/slow.jpg`` (the photo, a kilobyte every quarter second)."""

    def __init__(self, photo: bytes, big: int = 300_000) -> None:
        self.photo, self.big = photo, big
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def start(self, kind: str, length: int | None = None, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.answer(path, query)  # (a reset: the service gave up, as it should)

            def answer(self, path: str, query: str) -> None:
                photo = owner.photo
                if path == "/photo.jpg":
                    self.start("image/jpeg", len(photo))
                    self.wfile.write(photo)
                elif path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query.removeprefix("to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/page.html":
                    self.start("text/html", 13)
                    self.wfile.write(b"<p>hello</p>\n")
                elif path == "/fake.png":
                    self.start("image/png", 19)
                    self.wfile.write(b"not an image at all")
                elif path == "/big.png":
                    self.start("image/png")
                    for _ in range(owner.big // 10_000 + 1):
                        self.wfile.write(b"\x00" * 10_000)
                elif path == "/declared-big.png":
                    self.start("image/png", 10**9)
                    self.wfile.write(photo[:100])
                elif path == "/slow.jpg":
                    self.start("image/jpeg", len(photo))
                    for start in range(0, len(photo), 1024):
                        self.wfile.write(photo[start : start + 1024])
                        self.wfile.flush()
                        time.sleep(0.25)
                else:
                    self.start("text/plain", 0, status=404)

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def image_server(photos: Path) -> Iterator[ImageServer]:
    server = ImageServer((photos / "images" / "coffee.jpg").read_bytes())
    yield server
    server.close()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 60_000) -> bytes:
    """A PNG of a few hundred bytes that claims ``side`` x ``side`` pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def image_bytes(size: tuple[int, int] = (80, 60), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 0).save(out, format=fmt)
    return out.getvalue()
