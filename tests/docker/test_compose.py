"""docker-compose.yml: valid Compose, and every path, port, setting and command it names
exists in the repository and agrees with the service's settings and the indexer's CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.cli import build_parser as indexer_parser
from service.settings import ENV_PREFIX, Settings

from .files import (
    COMPOSE_FILE,
    DOCKERFILES,
    REPO,
    command_line,
    compose,
    compose_run,
    environment,
    image_of,
    interpolated,
    mounts,
    readme_commands,
    service,
)

# check-jsonschema ships the Compose Specification's JSON schema (vendor.compose-spec).
SCHEMA_CHECK = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
INDEXERS = ("indexer", "indexer-cpu")


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCHEMA_CHECK, str(path)], capture_output=True, text=True, timeout=60)


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = schema_check(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_misspelled_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart:", "restarts:"))
    result = schema_check(broken)
    assert result.returncode == 1
    assert "'restarts' was unexpected" in result.stdout


def test_every_dockerfile_is_built_from_the_repository_root() -> None:
    built = set()
    for name, spec in compose()["services"].items():
        assert (REPO / spec["build"]["context"]).resolve() == REPO, name
        built.add(REPO / spec["build"]["dockerfile"])
    assert built == set(DOCKERFILES)


def test_api_environment_is_valid_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    given = service("api")["environment"]
    fields = {name.removeprefix(ENV_PREFIX).lower() for name in given}
    assert all(name.startswith(ENV_PREFIX) for name in given)
    assert fields <= set(Settings.model_fields), fields - set(Settings.model_fields)
    for name, value in environment("api").items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.host == "0.0.0.0"  # reachable through the published port
    assert [mounts("api")[str(path)] for path in settings.index.values()] == [("index", True)]
    assert settings.admin_api_key is None  # unset unless the host passes a key


def test_image_and_compose_file_agree_on_the_api_settings() -> None:
    image = image_of("api").env()
    for name, value in service("api")["environment"].items():
        if name in image and value is not None:
            assert image[name] == str(value), name


def test_api_port_is_published_exposed_and_probed() -> None:
    port = environment("api")[f"{ENV_PREFIX}PORT"]
    published = [interpolated(entry).rsplit(":", 1)[1] for entry in service("api")["ports"]]
    assert published == [port]
    assert image_of("api").last("EXPOSE").args == port
    probe = image_of("api").last("HEALTHCHECK").exec_form()
    assert service("api")["healthcheck"]["test"] == ["CMD", *probe]


def test_api_is_published_on_this_machine_only_unless_told_otherwise() -> None:
    """A fresh ``docker compose up`` must not open the search API to the network."""
    (entry,) = service("api")["ports"]
    assert re.fullmatch(r"\$\{API_PORT:-[^}]*\}:8000", entry), entry
    assert interpolated(entry) == "127.0.0.1:8000:8000", "host address, host port, container port"
    readme = (REPO / "README.md").read_text()
    assert "API_PORT=0.0.0.0:8000" in readme, "the README says how to open it"


def test_indexers_write_the_volume_the_api_reads_and_see_the_same_images() -> None:
    api_index = environment("api")[f"{ENV_PREFIX}INDEX"]
    assert "index" in compose()["volumes"]
    for name in INDEXERS:
        python, dash_m, module, *argv = command_line(name)
        assert [python, dash_m, module] == ["python", "-m", "indexer"]
        args = indexer_parser().parse_args(argv)
        assert args.command == "build"
        assert str(args.out) == api_index
        assert mounts(name)[api_index] == ("index", False)
        # Image paths are recorded as the indexer saw them; the API serves files from there.
        assert mounts(name)[str(args.images)] == mounts("api")[str(args.images)]
        assert mounts(name)[str(args.images)][1], "images are mounted read-only"


def test_gpu_indexer_reserves_a_gpu_and_the_cpu_profile_needs_none() -> None:
    devices = service("indexer")["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert "deploy" not in service("indexer-cpu")
    gpu, cpu = command_line("indexer"), command_line("indexer-cpu")
    assert gpu[gpu.index("--device") + 1] == "cuda"
    assert cpu[cpu.index("--device") + 1] == "cpu"
    assert [w for w in gpu if w != "cuda"] == [w for w in cpu if w != "cpu"]
    assert (service("indexer")["profiles"], service("indexer-cpu")["profiles"]) == (
        ["gpu"],
        ["cpu"],
    )


def test_api_runs_without_a_profile_after_whichever_indexer_is_active() -> None:
    api = service("api")
    assert "profiles" not in api
    assert api["restart"] == "unless-stopped"
    assert set(api["depends_on"]) == set(INDEXERS)
    for dependency in api["depends_on"].values():
        assert dependency == {"condition": "service_completed_successfully", "required": False}


def test_api_command_line_is_the_service_cli() -> None:
    assert command_line("api") == ["python", "-m", "service"]


def test_readme_commands_name_real_profiles_services_and_indexer_jobs() -> None:
    commands = readme_commands()
    profiles = {p for spec in compose()["services"].values() for p in spec.get("profiles", [])}
    named = {w for words in commands for i, w in enumerate(words) if words[i - 1] == "--profile"}
    assert named == profiles
    runs = [compose_run(words) for words in commands if "run" in words]
    assert {name for name, _ in runs} == set(INDEXERS)
    for _, argv in runs:
        assert argv[:3] == ["python", "-m", "indexer"]
        assert indexer_parser().parse_args(argv[3:]).command == "add"
