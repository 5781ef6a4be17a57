"""Shared fixtures: tiny random models, the real default model, the shared data set, the
sample photos and a tiny real index of them (tiny-lite0 through the indexer's real build),
and a real two-node Ray cluster on this machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench.server import free_port
from indexer import JobOptions, Source, build
from model import LexVLA, load_encoder
from model.samples import write_sample_photos

if TYPE_CHECKING:
    from ray.cluster_utils import Cluster

REPO = Path(__file__).resolve().parents[1]
FLICKR8K = REPO.parent / "shared" / "data" / "flickr8k"


@pytest.fixture(scope="session")
def flickr8k() -> Path:
    """The Flickr8k train/dev folder that developer and CI machines have beside the repo."""
    if not (FLICKR8K / "captions.jsonl").is_file():
        pytest.skip(f"needs {FLICKR8K} (developer and CI machines only)")
    return FLICKR8K


@pytest.fixture(scope="session")
def tiny_lite0() -> LexVLA:
    return load_encoder("tiny-lite0")


@pytest.fixture(scope="session")
def tiny_dinov2() -> LexVLA:
    return load_encoder("tiny-dinov2")


@pytest.fixture(scope="session")
def default_model() -> LexVLA:
    return load_encoder()


# Captions from the tiny model's vocabulary, so caption vectors differ from each other.
CAPTIONS = {
    "astronaut": ["a man in a white shirt near a red wall", "the man sits on a bench"],
    "chelsea": ["a brown cat sleeps on the sofa", "a cat lies on a red rock"],
    "coffee": ["a white cup on a blue table", "black water in a white cup"],
    "rocket": ["a big white rocket near the ocean", "two people walk near a wall"],
    "camera": ["a man with a black camera in a field", "the man rides a bike"],
    "grass": ["green grass in a field", "a dog runs on the grass"],
}


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


def build_index(
    photos: Path, out: Path, model: LexVLA, model_name: str = "tiny-lite0", search_shards: int = 1
) -> Path:
    """An index of the sample photos and captions, built by the indexer's real job."""
    options = JobOptions(
        model=model_name, device="cpu", workers=0, progress=False, search_shards=search_shards
    )
    build(Source.manifest(photos / "manifest.jsonl"), out, options, model=model)
    return out


@pytest.fixture(scope="session")
def tiny_index(photos: Path, tmp_path_factory: pytest.TempPathFactory, tiny_lite0: LexVLA) -> Path:
    return build_index(photos, tmp_path_factory.mktemp("index") / "photos", tiny_lite0)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    """A real Ray cluster of two nodes on this machine, this process connected to it: a
    head with 2 CPUs and a worker node with 1 (logical CPUs; the machine has 2 cores),
    small object stores, no dashboard. Tests that use it are marked ``ray``."""
    import ray
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:
        # Every process of the cluster inherits this: on a loaded 2-core machine Ray
        # Serve's HTTP proxy can take longer than its default 5 s to report ready.
        patch.setenv("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
        cluster = Cluster(
            initialize_head=True,
            connect=True,
            head_node_args={
                "num_cpus": 2,
                "object_store_memory": 200 * 2**20,
                "include_dashboard": False,
                # each node's agent on a port of its own, not Ray's fixed default that
                # another Ray on this shared machine (or a session shutting down) may hold
                "dashboard_agent_listen_port": free_port(),
            },
        )
        cluster.add_node(
            num_cpus=1, object_store_memory=100 * 2**20, dashboard_agent_listen_port=free_port()
        )
        cluster.wait_for_nodes()
        try:
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


def ray_worker_pid(cluster: Cluster, title: str) -> int | None:
    """The process of ``cluster`` (a child of one of its raylets) whose title, as Ray sets
    it (``ray::ClassName``), starts with ``title``."""
    for node in cluster.list_all_nodes():
        for raylet in node.all_processes["raylet"]:
            pid = raylet.process.pid
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            for child in map(int, children):
                try:
                    command = Path(f"/proc/{child}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if command.decode(errors="replace").startswith(title):
                    return child
    return None
