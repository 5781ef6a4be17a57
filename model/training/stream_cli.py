"""The streaming commands of ``python -m model.training``: ``shards`` and ``stream-train``."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from .stream_settings import StreamSettings

DATA_HELP = (
    "a folder of WebDataset *.tar shards (img2dataset layout), a folder with captions.jsonl "
    "(Flickr8k layout; see --split) or an indexer manifest (*.jsonl)"
)


def shards_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help=DATA_HELP)
    parser.add_argument("--split", default="train", help="split of a Flickr8k-layout folder")
    parser.add_argument("--out", required=True, type=Path, help="folder for the shards")
    parser.add_argument("--per-shard", type=int, default=500, help="pairs per shard (tar)")


def shards(args: argparse.Namespace) -> None:
    from .shards import write_shards
    from .stream_sources import DataSourceError, open_source

    records = [r for shard in open_source(args.data, args.split) for r in shard.records]
    if not records:
        raise DataSourceError(f"{args.data} already holds shards")
    index = write_shards(records, args.out, args.per_shard)
    print(f"{sum(s['samples'] for s in index)} pairs in {len(index)} shards: {args.out}")


def stream_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help=DATA_HELP)
    parser.add_argument("--split", default="train", help="split of a Flickr8k-layout folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder (resumes if present)")
    parser.add_argument(
        "--init", default="lexvla-lite0-smollm2", help="config name or checkpoint to start from"
    )
    for spec in fields(StreamSettings):
        flag, default, text = (
            f"--{spec.name.replace('_', '-')}",
            spec.default,
            spec.metadata["help"],
        )
        text = f"{text} (default: {default})"
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=default, help=text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", default=default, help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text)


def stream_train(args: argparse.Namespace) -> None:
    from .stream_trainer import stream_train as run

    values = {spec.name: getattr(args, spec.name) for spec in fields(StreamSettings)}
    settings = StreamSettings(**values | {"lora_targets": tuple(values["lora_targets"])})
    print(f"checkpoint: {run(args.init, args.data, args.split, args.out, settings)}")
