"""The Ray deployment files: the compose file's ``ray`` profile (a head, a GPU worker, the
indexer job and the API joining as drivers) and docker/ray-cluster.yaml for ``ray up``,
checked against Ray's own cluster schema and the CLIs they run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import ray
import yaml

from indexer.cli import build_parser as indexer_parser
from service.__main__ import settings_from

from .files import REPO, command_line, compose, environment, interpolated, mounts, service

CLUSTER_FILE = REPO / "docker" / "ray-cluster.yaml"
RAY_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
NODES = ("ray-head", "ray-worker", "indexer-ray", "api-ray")
HEAD = "ray-head:6379"


def driver_argv(name: str) -> list[str]:
    """What a driver container runs after joining the cluster: ``sh -c SCRIPT NAME ARGS``."""
    sh, dash_c, script, _, *args = command_line(name)
    assert (sh, dash_c) == ("sh", "-c")
    join, run = script.split(" && ")
    assert shlex.split(join) == ["ray", "start", f"--address={HEAD}", "--num-cpus=0"]
    assert shlex.split(run)[-1] == "$@" or run.endswith('"$$@"')
    return [*shlex.split(run.removesuffix(' "$$@"'))[1:], *args]


def test_the_ray_profile_is_a_head_a_gpu_worker_and_two_drivers() -> None:
    assert {n for n, s in compose()["services"].items() if s.get("profiles") == ["ray"]} == set(
        NODES
    )
    head = command_line("ray-head")
    assert head[:4] == ["ray", "start", "--head", "--block"] and "--port=6379" in head
    assert command_line("ray-worker") == ["ray", "start", f"--address={HEAD}", "--block"]
    assert service("ray-worker")["build"]["dockerfile"] == "docker/worker.Dockerfile"
    devices = service("ray-worker")["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert service("ray-worker")["depends_on"]["ray-head"]["condition"] == "service_healthy"
    for name in ("ray-head", "ray-worker"):
        assert re.fullmatch(r"\d+gb", service(name)["shm_size"]), "the object store's /dev/shm"


def test_every_node_sees_the_images_and_the_index_at_the_same_paths() -> None:
    for name in NODES:
        assert mounts(name)["/images"] == (
            "${IMAGES:-./images}".replace("${IMAGES:-./images}", "./images"),
            True,
        )
        assert mounts(name)["/index"][0] == "index"
    assert not any(mounts(name)["/index"][1] for name in ("ray-head", "ray-worker", "indexer-ray"))


def test_the_indexer_job_builds_search_shards_through_ray() -> None:
    python, dash_m, module, *argv = driver_argv("indexer-ray")
    assert [python, dash_m, module] == ["python", "-m", "indexer"]
    args = indexer_parser().parse_args(argv)
    assert (args.command, args.ray, str(args.out)) == ("build", "auto", "/index")
    assert args.search_shards >= 2
    assert service("api-ray")["depends_on"]["indexer-ray"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_api_serves_the_shards_on_ray_at_the_heads_published_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    python, dash_m, module, *argv = driver_argv("api-ray")
    assert [python, dash_m, module] == ["python", "-m", "service"]
    for name, value in environment("api-ray").items():
        monkeypatch.setenv(name, value)
    settings = settings_from(argv)
    assert (settings.ray, str(settings.first_index), settings.host) == ("auto", "/index", "0.0.0.0")
    (entry,) = service("ray-head")["ports"]  # Ray Serve's proxy runs on the head only
    assert interpolated(entry) == f"127.0.0.1:8000:{settings.port}"


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(RAY_SCHEMA), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_cluster_config_validates_against_rays_schema(tmp_path: Path) -> None:
    assert schema_check(CLUSTER_FILE).returncode == 0, schema_check(CLUSTER_FILE).stdout
    broken = tmp_path / "cluster.yaml"
    broken.write_text(CLUSTER_FILE.read_text().replace("worker_image:", "worker_images:"))
    result = schema_check(broken)
    assert result.returncode == 1 and "'worker_images' was unexpected" in result.stdout


def test_the_cluster_config_runs_the_projects_images_and_commands() -> None:
    config = yaml.safe_load(CLUSTER_FILE.read_text())
    images = {spec.get("image") for spec in compose()["services"].values()}
    assert {config["docker"]["head_image"], config["docker"]["worker_image"]} <= images
    assert config["docker"]["worker_image"] == service("ray-worker")["image"]
    assert "--gpus=all" in config["docker"]["worker_run_options"]
    options = config["docker"]["run_options"]
    assert {"--volume=/shared/images:/images:ro", "--volume=/shared/index:/index"} <= set(options)
    assert config["max_workers"] == len(config["provider"]["worker_ips"])
    commands = [
        shlex.split(line.split("'")[1])
        for line in CLUSTER_FILE.read_text().splitlines()
        if line.startswith("#   ray exec")
    ]
    assert [c[:3] for c in commands] == [["python", "-m", "indexer"], ["python", "-m", "service"]]
    assert indexer_parser().parse_args(commands[0][3:]).ray == "auto"
    assert settings_from(commands[1][3:]).ray == "auto"
    json.dumps(config)  # plain data, as the launcher reads it
