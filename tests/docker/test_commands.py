"""The containers' command lines, run outside Docker (no engine here): the CPU indexer's
build on a few photos, the API on that index with the image's and compose file's
environment, its HEALTHCHECK probe, and the README's command that adds images later.

Container paths become temporary folders and ``python`` this interpreter; the build gets
``--model tiny-lite0`` so the run takes seconds (the add uses the index's model). The GPU
indexer's command differs from the CPU one only in ``--device`` (test_compose.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx
import skimage.data
from PIL import Image

from service.settings import ENV_PREFIX

from .files import REPO, command_line, compose_run, environment, image_of, readme_commands

FAST_MODEL = ["--model", "tiny-lite0"]


def save_photo(name: str, folder: Path) -> None:
    """A real scikit-image photo as a small JPEG."""
    Image.fromarray(getattr(skimage.data, name)()).resize((96, 96)).save(folder / f"{name}.jpg")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], server: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the API exited while waiting for {what}"
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_container_command_lines_index_serve_and_add(tmp_path: Path) -> None:
    images, index = tmp_path / "images", tmp_path / "index"
    images.mkdir()
    index.mkdir()  # a fresh named volume: an empty folder
    for name in ("astronaut", "coffee", "chelsea"):
        save_photo(name, images)
    probe = image_of("api").last("HEALTHCHECK").exec_form()
    host = {
        "python": sys.executable,
        "/images": str(images),
        "/index": str(index),
        "/opt/lexvla": str(tmp_path / "lexvla"),
        probe[1]: str(image_of("api").repo_path(PurePosixPath(probe[1]))),
    }
    outside = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}

    def on_host(words: list[str]) -> list[str]:
        return [host.get(word, word) for word in words]

    def env_of(name: str) -> dict[str, str]:
        return {**outside, **{k: host.get(v, v) for k, v in environment(name).items()}}

    def run(words: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        argv = on_host(words)
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    built = run(command_line("indexer-cpu") + FAST_MODEL, env_of("indexer-cpu"))
    assert built.returncode == 0, built.stderr

    # Loopback and a free port on this shared machine; the probe follows LEXSEARCH_PORT.
    api_env = env_of("api") | {
        f"{ENV_PREFIX}HOST": "127.0.0.1",
        f"{ENV_PREFIX}PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{api_env[f'{ENV_PREFIX}PORT']}"
    assert run(probe, api_env).returncode == 1  # nothing answers yet
    server = subprocess.Popen(on_host(command_line("api")), cwd=REPO, env=api_env)
    try:
        wait_for(lambda: run(probe, api_env).returncode == 0, server, "the health probe")
        assert httpx.get(f"{url}/stats").json()["images"] == 3

        save_photo("rocket", images)
        name, add = next(compose_run(w) for w in readme_commands() if "add" in w)
        added = run(add, env_of(name))
        assert added.returncode == 0, added.stderr
        wait_for(lambda: httpx.get(f"{url}/stats").json()["images"] == 4, server, "the new image")
        served = httpx.get(f"{url}/images/rocket.jpg")
        assert served.status_code == 200
        assert served.content == (images / "rocket.jpg").read_bytes()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
