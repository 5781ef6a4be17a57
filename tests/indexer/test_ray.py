"""Builds through Ray on a real two-node cluster (``ray_cluster``) write exactly the shards
of the local runner, and survive a lost actor and a killed job."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from indexer import ImpactSearcher, JobError, add, build, open_published
from indexer.sources import Source

from ..conftest import CAPTIONS, REPO, ray_worker_pid
from .conftest import fast_options, noise, write_captioned
from .helpers import cli, shard_files, shard_vectors, table

pytestmark = pytest.mark.ray

ENCODER_ACTOR = "ray::MapWorker(MapBatches(ShardEncoder))"
METADATA = (
    "SELECT id, path, bytes, width, height, sha256, captions, metadata, origin, terms "
    "FROM images ORDER BY id",
    "SELECT id, image_id, position, text, terms FROM captions ORDER BY id",
)


def assert_same_index(root: Path, reference: Path, queries: list[dict[str, int]]) -> None:
    """Same shards byte for byte, same metadata, same hits and scores."""
    assert shard_files(root) == shard_files(reference)
    for sql in METADATA:
        assert table(open_published(root).metadata, sql) == table(
            open_published(reference).metadata, sql
        )
    for kind in ("images", "captions"):
        with (
            ImpactSearcher(getattr(open_published(root), kind)) as got,
            ImpactSearcher(getattr(open_published(reference), kind)) as expected,
        ):
            for query in queries:
                assert got.search(query, 10) == expected.search(query, 10)


def test_a_ray_build_equals_the_local_build(
    ray_cluster, photos: Path, tmp_path: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    source = Source.manifest(photos / "manifest.jsonl")
    local = build(source, tmp_path / "local", fast_options(), model=tiny_lite0)
    options = fast_options(ray=ray_cluster.address, ray_actors=2)
    distributed = build(source, tmp_path / "ray", options, model=tiny_lite0)
    assert (distributed.indexed, distributed.captions) == (local.indexed, local.captions)
    assert distributed.encoded_images == local.encoded_images == local.indexed > 10
    assert distributed.encoded_captions == local.encoded_captions > 0
    assert {"decode", "encode_images", "encode_captions", "pipeline"} <= set(distributed.timings)
    assert "images/s" in distributed.report()
    texts = [text for captions in CAPTIONS.values() for text in captions]
    queries = tiny_lite0.term_dicts(
        tiny_lite0.encode_texts([*texts, "a cat on a red sofa", "a rocket"]).word_weights, "query"
    )
    queries += list(shard_vectors(tmp_path / "local", "images").values())[:4]
    assert_same_index(tmp_path / "ray", tmp_path / "local", queries)


def test_bad_files_and_twins_in_other_shards_are_skipped_as_locally(
    ray_cluster, bad_collection, tmp_path: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    folder, _ = bad_collection
    local = build(Source.folder(folder), tmp_path / "local", fast_options(), model=tiny_lite0)
    options = fast_options(ray=ray_cluster.address)
    distributed = build(Source.folder(folder), tmp_path / "ray", options, model=tiny_lite0)
    # zz-copy-of-astronaut.jpg is its twin three shards later: encoded there, dropped here
    assert distributed.skipped == local.skipped and "duplicate content" in distributed.skipped
    assert distributed.encoded_images == local.encoded_images + 1
    assert_same_index(tmp_path / "ray", tmp_path / "local", [])


def test_a_ray_add_skips_what_the_index_holds_without_encoding_it(
    ray_cluster, photos: Path, tmp_path: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    lines = (photos / "manifest.jsonl").read_text().splitlines()
    noise(5).save(tmp_path / "new.png")
    lines.append(json.dumps({"id": "new.png", "path": str(tmp_path / "new.png")}))
    more = tmp_path / "more.jsonl"
    more.write_text("\n".join(lines) + "\n")
    summaries = {}
    for name, options in (
        ("local", fast_options()),
        ("ray", fast_options(ray=ray_cluster.address)),
    ):
        build(
            Source.manifest(photos / "manifest.jsonl"),
            tmp_path / name,
            fast_options(),
            model=tiny_lite0,
        )
        summaries[name] = add(
            Source.manifest(more, photos), tmp_path / name, options, model=tiny_lite0
        )
    local, distributed = summaries["local"], summaries["ray"]
    assert distributed.encoded_images == local.encoded_images == 1  # only the new image
    assert distributed.skipped == local.skipped == {"duplicate content": len(lines) - 1}
    assert (distributed.indexed, distributed.total_images) == (1, len(lines))
    assert_same_index(tmp_path / "ray", tmp_path / "local", [])


def test_a_cluster_without_gpus_refuses_device_cuda(
    ray_cluster, photos: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    options = fast_options(ray=ray_cluster.address, device="cuda")
    with pytest.raises(JobError, match="the Ray cluster has no GPU"):
        build(Source.manifest(photos / "manifest.jsonl"), tmp_path / "index", options)
    assert not (tmp_path / "index").exists()  # refused before anything was written


def wait_for(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def committed(batch: Path) -> list[str]:
    return sorted(p.name for p in batch.iterdir() if p.name.isdigit()) if batch.is_dir() else []


def test_a_lost_actor_is_replaced_and_a_killed_job_resumes(
    ray_cluster, tmp_path: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    manifest = write_captioned(tmp_path / "data", 40)
    reference = tmp_path / "reference"
    build(
        Source.manifest(manifest),
        reference,
        fast_options(shard_size=2, batch_size=1),
        model=tiny_lite0,
    )
    root, summary = tmp_path / "ray", tmp_path / "summary.json"
    job = ["build", "--manifest", str(manifest), "--out", str(root), "--model", "tiny-lite0"]
    job += ["--device", "cpu", "--shard-size", "2", "--batch-size", "1", "--quiet"]
    job += ["--ray", ray_cluster.address]
    batch = root / "shards" / "00000-build"

    victim = subprocess.Popen(cli(*job), cwd=REPO, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(committed(batch)) >= 1 and ray_worker_pid(ray_cluster, ENCODER_ACTOR))
    actor = ray_worker_pid(ray_cluster, ENCODER_ACTOR)
    assert actor is not None
    os.kill(actor, signal.SIGKILL)  # the encoder actor's process, mid-job
    at_actor_kill = len(committed(batch))
    wait_for(lambda: len(committed(batch)) >= at_actor_kill + 2)  # a new actor carries on
    assert ray_worker_pid(ray_cluster, ENCODER_ACTOR) not in (None, actor)
    os.kill(victim.pid, signal.SIGKILL)  # then the job itself
    victim.wait()
    done = committed(batch)
    assert at_actor_kill + 2 <= len(done) < 20 and not (root / "current").exists()

    rerun = subprocess.run(
        cli(*job, "--summary-json", str(summary)), cwd=REPO, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(summary.read_text())
    assert result["resumed_shards"] == len(done)
    assert result["encoded_images"] == 40 - 2 * len(done)  # committed shards not re-encoded
    assert (result["indexed"], result["captions"]) == (40, 80)
    queries = list(shard_vectors(reference, "captions").values())[:5]
    assert_same_index(root, reference, queries)  # nothing lost, nothing twice
