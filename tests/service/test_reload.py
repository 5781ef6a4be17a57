"""A newly published index version is picked up without a restart, and no request fails."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer import JobOptions, add, open_published, remove
from indexer.sources import Source
from model import LexVLA
from service import create_app
from service.index_handle import open_index
from tests.conftest import build_index

from .conftest import index_settings

OPTIONS = JobOptions(model="tiny-lite0", device="cpu", workers=0, progress=False)


@pytest.fixture
def index(photos: Path, tmp_path: Path, tiny_lite0: LexVLA) -> Path:
    return build_index(photos, tmp_path / "index", tiny_lite0)


@pytest.fixture
def served(index: Path) -> Iterator[TestClient]:
    with TestClient(create_app(index_settings(index, admin_api_key="key"))) as client:
        yield client


def new_photos(folder: Path) -> Path:
    folder.mkdir()
    for i, colour in enumerate(["navy", "orange"]):
        Image.new("RGB", (96, 64), colour).save(folder / f"extra-{i}.png")
    return folder


def wait_for_version(client: TestClient, version: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").json()["index_version"] != version:
        assert time.monotonic() < deadline, f"version {version} not picked up"
        time.sleep(0.05)


def test_new_versions_are_served_while_requests_keep_succeeding(
    served: TestClient, index: Path, tmp_path: Path, tiny_lite0: LexVLA, photos: Path
) -> None:
    first = open_published(index).version
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()
    picture = (photos / "images" / "coffee.jpg").read_bytes()

    def keep_searching(kind: int) -> None:
        while not stop.is_set():
            if kind == 0:
                response = served.get("/search", params={"q": "a dog", "target": "captions"})
            else:
                response = served.post("/search", files={"image": ("c.jpg", picture)})
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")
                continue
            versions.add(response.json()["index_version"])
            for hit in response.json()["hits"]:
                image = served.get(hit["metadata"]["thumbnail_url"])
                removed_since = hit["image_id"] == "extra-0.png" and image.status_code == 404
                if image.status_code != 200 and not removed_since:
                    failures.append(f"thumbnail {image.status_code} {image.text}")

    workers = [threading.Thread(target=keep_searching, args=(i % 2,)) for i in range(4)]
    for worker in workers:
        worker.start()
    try:
        added = add(Source.folder(new_photos(tmp_path / "more")), index, OPTIONS, tiny_lite0)
        assert added.version is not None and added.version != first
        wait_for_version(served, added.version)
        assert served.get("/images/extra-0.png").status_code == 200
        assert served.get("/stats").json()["images"] == 15

        removed = remove(index, ["extra-0.png"], OPTIONS)
        assert removed.version is not None
        wait_for_version(served, removed.version)
        time.sleep(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[:3]
    assert {first, added.version, removed.version} <= versions
    assert served.get("/images/extra-0.png").status_code == 404
    assert served.get("/stats").json()["reloads"] == 2


def publish_copy(index: Path, damage: str) -> str:
    """Publish a copy of the current version with something wrong in it."""
    current = open_published(index)
    name = "v999999"
    target = index / "versions" / name
    shutil.copytree(current.path, target)
    if damage == "model":
        manifest = (target / "manifest.json").read_text()
        fingerprint = current.manifest.model.fingerprint
        (target / "manifest.json").write_text(manifest.replace(fingerprint, "0" * 16))
    else:
        shutil.rmtree(target / "images")
    link = index / "current.tmp"
    os.symlink(Path("versions") / name, link)
    os.replace(link, index / "current")
    return name


@pytest.mark.parametrize("damage", ["model", "lucene"])
def test_a_bad_new_version_is_refused_and_the_old_one_kept(
    served: TestClient, index: Path, damage: str
) -> None:
    first = open_published(index).version
    publish_copy(index, damage)
    reload = served.post("/admin/reload", headers={"X-API-Key": "key"})
    assert reload.status_code == (409 if damage == "model" else 503)
    assert ("fingerprint" if damage == "model" else "damaged") in reload.json()["detail"]
    assert str(index) not in reload.json()["detail"], "no server paths in answers"
    time.sleep(0.5)  # the worker's own periodic checks keep refusing it
    response = served.get("/search", params={"q": "a dog"})
    assert response.status_code == 200 and response.json()["index_version"] == first
    assert served.get("/readyz").json()["index_version"] == first


def test_a_retired_version_stays_open_until_its_last_reader_is_done(index: Path) -> None:
    handle = open_index(index)
    handle.acquire()
    handle.retire()
    assert handle.store.counts() == (13, 12)
    word = next(iter(handle.store.images(["chelsea.jpg"])[0].terms))  # a word the index holds
    assert handle.searchers["images"].search({word: 100}, 3)  # type: ignore[index]
    handle.release()
    with pytest.raises(Exception, match="closed"):
        handle.store.counts()
