"""The service on Ray Serve over two search shards (``python -m service --ray``, on the
real two-node ``ray_cluster``) answers exactly as the one-index service over the same
documents, and a shard that is down is a 503 naming it, not a partial answer."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from bench.server import ServiceProcess
from indexer import MetadataStore, open_published, shard_of

from ..conftest import CAPTIONS, build_index, ray_worker_pid

pytestmark = pytest.mark.ray

TEXTS = [*(text for captions in CAPTIONS.values() for text in captions), "a", "+ocean -water boat"]


@pytest.fixture(scope="module")
def sharded_index(photos: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0) -> Path:  # type: ignore[no-untyped-def]
    return build_index(
        photos, tmp_path_factory.mktemp("sharded") / "photos", tiny_lite0, search_shards=2
    )


@pytest.fixture(scope="module")
def on_ray(ray_cluster, sharded_index: Path) -> Iterator[ServiceProcess]:  # type: ignore[no-untyped-def]
    # The tiny model's random text bias is computed by a forward pass whose float sums
    # depend on the thread count: the API gets this process's, so it is the same model.
    threads = str(torch.get_num_threads())
    server = ServiceProcess(
        sharded_index,
        *("--ray", ray_cluster.address, "--shard-cpus", "0.5", "--torch-threads", threads),
        *("--shard-timeout-s", "3"),
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def without_timing(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "took_ms"}


def test_two_shards_answer_every_query_as_one_index(
    on_ray: ServiceProcess, client: TestClient, sharded_index: Path, photos: Path
) -> None:
    with MetadataStore(open_published(sharded_index).search_shard(1).metadata) as store:
        assert 0 < len(store.image_ids()) < 13  # both shards hold documents
    checked = 0
    with httpx.Client(base_url=on_ray.url, timeout=30) as ray:
        for text in TEXTS:
            for target in ("images", "captions"):
                for k in (1, 4, 30):
                    params = {"q": text, "target": target, "k": k}
                    expected = client.get("/search", params=params)
                    got = ray.get("/search", params=params)
                    assert got.status_code == expected.status_code == 200
                    assert without_timing(got.json()) == without_timing(expected.json())
                    checked += len(expected.json()["hits"])
        body = {"q": "a man near a wall", "boost": ["cat"], "drop": ["man"], "k": 8}
        got, expected = ray.post("/search", json=body), client.post("/search", json=body)
        assert without_timing(got.json()) == without_timing(expected.json())
        photo = (photos / "images" / "chelsea.jpg").read_bytes()
        for target in ("images", "captions"):
            files, data = {"image": ("q.jpg", photo, "image/jpeg")}, {"target": target}
            got = ray.post("/search", files=files, data=data)
            expected = client.post("/search", files=files, data=data)
            assert got.status_code == 200 and got.json()["hits"]
            assert without_timing(got.json()) == without_timing(expected.json())
        for image_id in ("chelsea.jpg", "rocket.jpg"):  # rows come from the owning shard
            assert (
                ray.get(f"/images/{image_id}").content == client.get(f"/images/{image_id}").content
            )
            heatmap = f"/heatmaps/{image_id}?word=cat"
            assert ray.get(heatmap).json() == client.get(heatmap).json()
        assert ray.get("/images/no-such.jpg").status_code == 404
        stats = ray.get("/stats").json()
        assert (stats["images"], stats["captions"]) == (13, client.get("/stats").json()["captions"])
        assert stats["manifest"]["shards"] == 2
    assert checked > 100  # hits compared with scores and explanations


def test_a_shard_that_is_down_is_a_503_naming_it(
    on_ray: ServiceProcess, ray_cluster, sharded_index: Path
) -> None:  # type: ignore[no-untyped-def]
    published = open_published(sharded_index)
    folder = published.search_shard(1).files
    away = folder.with_name(f"{folder.name}.away")
    with MetadataStore(published.search_shard(0).metadata) as store:
        in_shard_0 = store.image_ids()[0]
    with MetadataStore(published.search_shard(1).metadata) as store:
        in_shard_1 = store.image_ids()[0]
    assert (shard_of(in_shard_0, 2), shard_of(in_shard_1, 2)) == (0, 1)
    replica = ray_worker_pid(ray_cluster, "ray::ServeReplica:lexsearch:shard-001")
    assert replica is not None
    folder.rename(away)  # so that the replica Ray Serve starts in its place cannot open it
    try:
        os.kill(replica, signal.SIGKILL)
        with httpx.Client(base_url=on_ray.url, timeout=30) as ray:
            answer = ray.get("/search", params={"q": "a cat on a sofa"})
            assert answer.status_code == 503
            assert "search shard 1 (shard-001) of 2" in answer.json()["detail"]
            assert "no partial answer" in answer.json()["detail"]
            assert ray.get(f"/images/{in_shard_1}").status_code == 503
            assert ray.get(f"/images/{in_shard_0}").status_code == 200  # shard 0 still serves
    finally:
        away.rename(folder)
