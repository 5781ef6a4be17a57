"""How a job runs: :class:`JobOptions`, checked on construction, and the CLI flags built
from its fields (each default and help text lives here once)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from typing import Any

from .decode import DEFAULT_MAX_PIXELS

ENCODE = "encode"  # flags of the jobs that encode (build, add)
LAYOUT = "layout"  # flags of the jobs that lay the index out anew (build, rebuild)
COMMON = "common"  # flags of every job that publishes


class JobError(RuntimeError):
    """A job that cannot run as asked; the message says what to do instead."""


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """Encoder threads that leave a core to each decoding worker (oversubscribed OpenMP
    threads spin and can run several times slower than fewer threads)."""
    return max(1, (os.cpu_count() or 1) - workers)


def _option(default: Any, group: str, help: str, minimum: int | None = None, **extra: Any) -> Any:
    metadata = {"group": group, "help": help, "minimum": minimum, **extra}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class JobOptions:
    """How a job runs (none of these change which documents end up in the index)."""

    model: str | None = _option(
        None,
        ENCODE,
        "checkpoint folder or config name (build default: the shipped model; "
        "add default: the model the index was built with)",
    )
    device: str = _option("auto", ENCODE, "auto (a GPU if there is one), cpu, cuda or cuda:N")
    batch_size: int = _option(
        8,
        ENCODE,
        "pictures per encoder batch (with mirror averaging an image and its mirror count "
        "as two; 8 is fastest on a CPU, a GPU wants more)",
        minimum=1,
    )
    caption_batch_size: int = _option(64, ENCODE, "captions per encoder batch", minimum=1)
    workers: int = _option(
        default_workers,
        ENCODE,
        "decoding worker processes (0: decode in the main process)",
        minimum=0,
    )
    threads: int | None = _option(
        None,
        ENCODE,
        "CPU encoder threads (default: the cores not taken by --workers, at least 1)",
        minimum=1,
        kind=int,
    )
    shard_size: int = _option(
        256,
        ENCODE,
        "images per committed shard: the most work a kill can lose (new jobs only)",
        minimum=1,
    )
    captions: bool = _option(
        True,
        ENCODE,
        "do not encode and index captions (they are still kept as metadata)",
        flag="--no-captions",
    )
    max_pixels: int | None = _option(
        DEFAULT_MAX_PIXELS,
        ENCODE,
        "skip larger images as decompression bombs (Pillow's limit by default)",
        minimum=1,
    )
    ray: str | None = _option(
        None,
        ENCODE,
        "encode on a Ray cluster instead of this process: its address (HOST:PORT, "
        "ray://HOST:10001) or auto (the cluster this machine has joined); the model travels "
        "to the actors, the images are read where they are: every node needs their paths",
        metavar="ADDRESS",
    )
    ray_actors: int | None = _option(
        None,
        ENCODE,
        "encoder actors with --ray (default: one per GPU of the cluster, else 1)",
        minimum=1,
        kind=int,
    )
    ray_actor_cpus: int = _option(
        1,
        ENCODE,
        "CPUs, and encoder threads, of each encoder actor with --ray when it runs on CPU",
        minimum=1,
    )
    search_shards: int | None = _option(
        None,
        LAYOUT,
        "split the published index into this many search shards (documents by a hash of "
        "their image id), each searched by its own process: python -m service --ray "
        "(build default: 1; rebuild default: as published)",
        minimum=1,
        kind=int,
    )
    lucene_threads: int = _option(2, COMMON, "threads Anserini indexes with", minimum=1)
    keep_versions: int = _option(
        2,
        COMMON,
        "published versions kept on disk: the current one and older ones for readers",
        minimum=1,
    )
    progress: bool = _option(True, COMMON, "no progress bars, warnings only", flag="--quiet")

    def __post_init__(self) -> None:
        for option in fields(self):
            value, minimum = getattr(self, option.name), option.metadata["minimum"]
            if minimum is not None and value is not None and value < minimum:
                raise JobError(f"{flag_of(option.name)} must be at least {minimum}")
        if self.ray is None and self.ray_actors is not None:
            raise JobError("--ray-actors needs --ray ADDRESS")

    @property
    def encoder_threads(self) -> int:
        """``threads``, or what :func:`default_threads` leaves beside the decoding workers."""
        return self.threads if self.threads is not None else default_threads(self.workers)


def flag_of(name: str) -> str:
    """The command-line flag of a :class:`JobOptions` field."""
    option = next(f for f in fields(JobOptions) if f.name == name)
    return str(option.metadata.get("flag", f"--{name.replace('_', '-')}"))


def add_option_arguments(parser: argparse.ArgumentParser, group: str) -> None:
    """The flags of one group of :class:`JobOptions` fields, with their defaults and help."""
    for option in fields(JobOptions):
        if option.metadata["group"] != group:
            continue
        factory = option.default_factory
        default = factory() if callable(factory) else option.default
        help_text = option.metadata["help"]
        if isinstance(default, bool):  # a flag that turns a default-on option off
            parser.add_argument(
                flag_of(option.name), dest=option.name, action="store_false", help=help_text
            )
            continue
        kind = option.metadata.get("kind") or (int if isinstance(default, int) else str)
        if default is not None:
            help_text += " (default: %(default)s)"
        parser.add_argument(
            flag_of(option.name),
            type=kind,
            default=default,
            help=help_text,
            metavar=option.metadata.get("metavar"),
        )


def options_from(args: argparse.Namespace) -> JobOptions:
    """:class:`JobOptions` from parsed flags (fields the command has no flag for keep
    their defaults); raises :class:`JobError` naming a bad flag."""
    given = {f.name: getattr(args, f.name) for f in fields(JobOptions) if hasattr(args, f.name)}
    return JobOptions(**given)
