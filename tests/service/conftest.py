"""Service fixtures: an app on the tiny real index (``tests/conftest.py``), a real uvicorn
server in a subprocess, and test images (good and bad)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.server import ServiceProcess
from service import Settings, create_app

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
