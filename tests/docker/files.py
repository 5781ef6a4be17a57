"""Readers for the deployment files: the compose file, Dockerfiles and .dockerignore."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def interpolated(value: str) -> str:
    """A compose value with every ``${VAR:-default}`` replaced by its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def mounts(name: str) -> dict[str, tuple[str, bool]]:
    """A service's short-syntax volumes: container path -> (source, read-only)."""
    result = {}
    for entry in service(name)["volumes"]:
        source, target, *mode = interpolated(entry).split(":")
        result[target] = (source, mode == ["ro"])
    return result


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def words(self) -> list[str]:
        """The arguments without ``--flag=value`` options (COPY, ENV, USER, ...)."""
        return [word for word in shlex.split(self.args) if not word.startswith("--")]

    def exec_form(self) -> list[str]:
        """A JSON-array command (CMD, ENTRYPOINT, HEALTHCHECK ... CMD [...])."""
        command: list[str] = json.loads(self.args.split(" CMD ", 1)[-1])
        return command


class Dockerfile:
    """The instructions of a Dockerfile (line continuations joined, comments dropped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = re.sub(r"\\\n(\s*#.*\n)*", " ", path.read_text())
        self.instructions = [
            Instruction(*line.strip().split(maxsplit=1))
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        return self.all(keyword)[-1]

    def env(self) -> dict[str, str]:
        pairs = (word.split("=", 1) for i in self.all("ENV") for word in i.words())
        return dict(pairs)

    def copies(self) -> dict[PurePosixPath, Path]:
        """Each COPY as the container path it creates -> the repository path it copies."""
        result = {}
        for instruction in self.all("COPY"):
            *sources, dest = instruction.words()
            target = PurePosixPath(self.last("WORKDIR").args) / dest
            for source in sources:  # a folder's contents go into dest; a file into dest/
                into = dest.endswith("/") and not (REPO / source).is_dir()
                result[target / PurePosixPath(source).name if into else target] = REPO / source
        return result

    def repo_path(self, container_path: PurePosixPath) -> Path | None:
        """The repository file or folder that lands at ``container_path``, if any."""
        for inside, source in self.copies().items():
            if container_path == inside or inside in container_path.parents:
                return source / container_path.relative_to(inside)
        return None


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match syntax plus ``**``) as a regex."""
    parts = re.split(r"(\*\*/?|\*|\?)", glob.strip("/"))
    regex = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(regex.get(part, re.escape(part)) for part in parts))


def dockerignore() -> list[tuple[str, bool]]:
    """The .dockerignore rules in order: (pattern, excludes)."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.removeprefix("!").strip("/"), not line.startswith("!")))
    return rules


def excluded(relative: str) -> bool:
    """Whether Docker leaves ``relative`` out of the build context (the last match wins;
    a rule that matches a parent folder matches everything in it)."""
    candidates = [relative, *(str(p) for p in PurePosixPath(relative).parents if str(p) != ".")]
    result = False
    for glob, excludes in dockerignore():
        if any(_pattern(glob).fullmatch(candidate) for candidate in candidates):
            result = excludes
    return result


def build_context() -> dict[str, int]:
    """Every file Docker would send as the build context: relative path -> size."""
    kept = [glob for glob, excludes in dockerignore() if not excludes]
    files = {}
    for folder, subfolders, names in os.walk(REPO):
        here = Path(folder).relative_to(REPO)
        # An excluded folder is skipped unless a ``!`` rule reaches inside it.
        subfolders[:] = [
            name
            for name in subfolders
            if not excluded((here / name).as_posix())
            or any(glob.startswith(f"{(here / name).as_posix()}/") for glob in kept)
        ]
        for name in names:
            relative = (here / name).as_posix()
            if not excluded(relative):
                files[relative] = (REPO / relative).stat().st_size
    return files


def image_of(name: str) -> Dockerfile:
    """The Dockerfile a compose service's image is built from."""
    return Dockerfile(REPO / service(name)["build"]["dockerfile"])


def entrypoint(name: str) -> list[str]:
    """A service's entrypoint: the compose file's, else its image's."""
    image = image_of(name)
    default = [word for i in image.all("ENTRYPOINT") for word in i.exec_form()]
    found: list[str] = service(name).get("entrypoint", default)
    return found


def command_line(name: str) -> list[str]:
    """What a service's container runs: entrypoint and command (the compose file's, else the
    image's; an entrypoint set in the compose file drops the image's CMD)."""
    spec = service(name)
    default = [] if "entrypoint" in spec else image_of(name).last("CMD").exec_form()
    return [*entrypoint(name), *spec.get("command", default)]


def environment(name: str) -> dict[str, str]:
    """A service's container environment: the image's ENV under the compose file's values
    (a variable without a value there is passed from the host only when set, so not here)."""
    given = service(name).get("environment", {})
    return {**image_of(name).env(), **{k: str(v) for k, v in given.items() if v is not None}}


def readme_commands() -> list[list[str]]:
    """The words of each `docker compose` command in the README's Docker section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Deploy with Docker Compose\n")[1].split("\n## ")[0]
    lines = (shlex.split(line, comments=True) for line in section.splitlines())
    return [words for words in lines if words[:2] == ["docker", "compose"]]


def compose_run(words: list[str]) -> tuple[str, list[str]]:
    """`docker compose run [--rm] SERVICE ARGS...`: the service and what its container runs."""
    name, *args = [word for word in words[words.index("run") + 1 :] if word != "--rm"]
    return name, [*entrypoint(name), *args]
