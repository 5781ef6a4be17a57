"""Service fixtures: a tiny real index (tiny-lite0 through the indexer's real build), an app
on it, a real uvicorn server in a subprocess, and test images (good and bad)."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from indexer.jobs import JobOptions, build
from indexer.sources import Source
from model import LexVLA
from model.samples import write_sample_photos
from service import Settings, create_app

REPO = Path(__file__).resolve().parents[2]

# Captions from the tiny model's vocabulary, so caption vectors differ from each other.
CAPTIONS = {
    "astronaut": ["a man in a white shirt near a red wall", "the man sits on a bench"],
    "chelsea": ["a brown cat sleeps on the sofa", "a cat lies on a red rock"],
    "coffee": ["a white cup on a blue table", "black water in a white cup"],
    "rocket": ["a big white rocket near the ocean", "two people walk near a wall"],
    "camera": ["a man with a black camera in a field", "the man rides a bike"],
    "grass": ["green grass in a field", "a dog runs on the grass"],
}


def index_settings(index: Path, **overrides: object) -> Settings:
    return Settings(index=index, reload_interval_s=0.2, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scikit-image sample photos as JPEG files, with a manifest giving some captions."""
    folder = tmp_path_factory.mktemp("photos")
    lines = []
    for path in write_sample_photos(folder / "images"):
        captions = CAPTIONS.get(path.stem, [])
        lines.append(
            json.dumps({"id": path.name, "path": f"images/{path.name}", "captions": captions})
        )
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def build_index(photos: Path, out: Path, model: LexVLA, model_name: str = "tiny-lite0") -> Path:
    """An index of the sample photos and captions, built by the indexer's real job."""
    options = JobOptions(model=model_name, device="cpu", workers=0, progress=False)
    build(Source.manifest(photos / "manifest.jsonl"), out, options, model=model)
    return out


@pytest.fixture(scope="session")
def tiny_index(photos: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0: LexVLA) -> Path:
    return build_index(photos, tmp_path_factory.mktemp("index") / "photos", tiny_lite0)


@pytest.fixture(scope="session")
def client(tiny_index: Path) -> Iterator[TestClient]:
    """The app on the tiny index, started (lifespan) once for the session."""
    with TestClient(create_app(index_settings(tiny_index))) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``python -m service`` in a subprocess on a free port, stopped at the end."""

    def __init__(self, index: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = index.parent / f"server-{self.port}.log"
        command = [sys.executable, "-m", "service", "--index", str(index), "--port", str(self.port)]
        env = {**os.environ, "LEXSEARCH_LOG_LEVEL": "warning"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready after {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def live_server(tiny_index: Path) -> Iterator[LiveServer]:
    server = LiveServer(tiny_index, "--max-batch", "8")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


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
