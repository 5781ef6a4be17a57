"""``python -m indexer``: build, grow and shrink a searchable index of images and captions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import jobs
from .layout import (
    SHARDS,
    IndexBusyError,
    IndexNotFoundError,
    current_version,
    is_index_root,
    open_published,
)
from .options import COMMON, ENCODE, LAYOUT, JobError, add_option_arguments, options_from
from .shards import ShardStore
from .sources import Source, SourceError
from .summary import JobSummary

DESCRIPTION = """\
Index image collections (and their captions) into Lucene impact indexes of LexVLA word
vectors. Work is committed in shards: a killed job resumes when the same command runs
again, and every change is published atomically as a new version of the index."""

EPILOG = """\
examples:
  python -m indexer build --images photos/ --out indexes/photos
  python -m indexer build --manifest data.jsonl --out indexes/data --device cuda
  python -m indexer build --images /shared/photos --out /shared/index --ray auto
  python -m indexer rebuild --index indexes/photos --search-shards 4
  python -m indexer add --images more-photos/ --index indexes/photos
  python -m indexer remove --ids a.jpg b.jpg --index indexes/photos
  python -m indexer info --index indexes/photos

manifest lines: {"id": "...", "path": "...", "captions": ["..."], "metadata": {...}}
("image" is accepted for "path"; other keys are kept as metadata)"""


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--images", type=Path, metavar="DIR", help="folder of images (walked recursively)"
    )
    group.add_argument(
        "--manifest", type=Path, metavar="FILE", help="JSONL file: one image (and captions) a line"
    )
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="base folder of relative paths in --manifest (default: the manifest's folder)",
    )


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser, COMMON)
    parser.add_argument(
        "--summary-json", type=Path, metavar="FILE", help="also write the summary as JSON"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser(
        "build",
        help="index a folder or manifest into a new index (or finish a killed build)",
        description="Index a folder or manifest into a new index. Run the same command "
        "again after a crash or kill to finish the job without re-encoding committed shards.",
    )
    _source_arguments(build)
    build.add_argument("--out", type=Path, required=True, metavar="INDEX", help="index folder")
    add_option_arguments(build, ENCODE)
    add_option_arguments(build, LAYOUT)
    _common_arguments(build)

    add = sub.add_parser(
        "add",
        help="add images to an index (duplicates by content are skipped)",
        description="Add images to an existing index without re-encoding what it holds. "
        "Files whose content is already indexed are skipped; an id that is already indexed "
        "with different content is replaced.",
    )
    _source_arguments(add)
    add.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder")
    add_option_arguments(add, ENCODE)
    _common_arguments(add)

    remove = sub.add_parser(
        "remove",
        help="delete images (and their captions) by id",
        description="Delete images and their captions by id and publish the result.",
    )
    remove.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder")
    ids = remove.add_mutually_exclusive_group(required=True)
    ids.add_argument("--ids", nargs="+", metavar="ID", help="image ids to delete")
    ids.add_argument("--ids-file", type=Path, metavar="FILE", help="file with one image id a line")
    _common_arguments(remove)

    rebuild = sub.add_parser(
        "rebuild",
        help="rebuild the Lucene indexes from the stored shards (no encoding)",
        description="Rebuild the Lucene indexes and metadata from the stored shards and "
        "publish them as a new version; nothing is re-encoded.",
    )
    rebuild.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder")
    add_option_arguments(rebuild, LAYOUT)
    _common_arguments(rebuild)

    info = sub.add_parser(
        "info",
        help="print the published version's manifest and any unfinished job",
        description="Print the manifest of the published version and any unfinished job.",
    )
    info.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder")
    return parser


def _source(args: argparse.Namespace) -> Source:
    if args.images is not None:
        if args.root is not None:
            raise SourceError("--root only applies to --manifest")
        return Source.folder(args.images)
    return Source.manifest(args.manifest, args.root)


def _ids(args: argparse.Namespace) -> list[str]:
    if args.ids is not None:
        return list(args.ids)
    if not args.ids_file.is_file():
        raise JobError(f"--ids-file {args.ids_file} does not exist")
    return [line.strip() for line in args.ids_file.read_text().splitlines() if line.strip()]


def _info(index: Path) -> str:
    if not is_index_root(index):
        raise JobError(f"no index at {index}")
    lines = []
    if current_version(index):
        lines.append(json.dumps(open_published(index).manifest.to_json(), indent=2))
    else:
        lines.append(f"nothing published at {index} yet")
    unfinished = ShardStore(index / SHARDS).unfinished()
    if unfinished is not None:
        lines.append(f"unfinished job: {unfinished.kind} ({unfinished.name}); rerun it to finish")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> JobSummary | str:
    if args.command == "info":
        return _info(args.index)
    options = options_from(args)
    if args.command == "build":
        return jobs.build(_source(args), args.out, options)
    if args.command == "add":
        return jobs.add(_source(args), args.index, options)
    if args.command == "remove":
        return jobs.remove(args.index, _ids(args), options)
    return jobs.rebuild(args.index, options)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = not getattr(args, "progress", True)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = _run(args)
    except (JobError, SourceError, IndexBusyError, IndexNotFoundError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    if isinstance(result, str):
        print(result)
        return 0
    print(result.report())
    if getattr(args, "summary_json", None) is not None:
        args.summary_json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
