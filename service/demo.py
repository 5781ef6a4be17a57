"""``python -m service.demo [--photos DIR]``: index the sample photos (and a folder of
yours), then serve the search page.

The scikit-image sample photos are written to ``cache/demo/samples``; with ``--photos``
every image under that folder joins them. The collection is indexed with the shipped
model into ``indexes/demo-<name>`` (built once; files added to your folder later are
added on the next run), then ``python -m service`` serves it and prints its address.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import indexer
from indexer import Source, walk_folder
from model.samples import write_sample_photos

from .__main__ import main as serve

log = logging.getLogger("service.demo")

REPO = Path(__file__).resolve().parents[1]


def collection(folders: dict[str, Path]) -> list[str]:
    """Manifest lines of every image under ``folders`` (label -> folder), ids prefixed."""
    return [
        json.dumps({"id": f"{label}/{item.id}", "path": item.path})
        for label, folder in folders.items()
        for item in walk_folder(folder)
    ]


def index_name(photos: Path | None) -> str:
    if photos is None:
        return "demo-samples"
    digest = hashlib.sha256(str(photos.resolve()).encode()).hexdigest()[:8]
    return f"demo-{photos.resolve().name}-{digest}"


def prepare(photos: Path | None, cache: Path, indexes: Path) -> Path:
    """The demo index, built or brought up to date; returns its folder."""
    folders = {"samples": cache / "samples"}
    write_sample_photos(folders["samples"])
    if photos is not None:
        if not photos.is_dir():
            raise SystemExit(f"--photos {photos} is not a folder")
        folders[photos.resolve().name] = photos.resolve()
    name = index_name(photos)
    manifest = cache / f"{name}.jsonl"
    lines = "\n".join(collection(folders)) + "\n"
    index = indexes / name
    options = indexer.JobOptions(model="default")
    if not (index / "current").exists():
        manifest.write_text(lines)
        log.info("indexing %d images into %s", lines.count("\n"), index)
        log.info("%s", indexer.build(Source.manifest(manifest), index, options).report())
    elif manifest.read_text() != lines:
        manifest.write_text(lines)
        log.info("%s", indexer.add(Source.manifest(manifest), index, options).report())
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.demo", description=__doc__)
    parser.add_argument("--photos", type=Path, help="a folder of your images to index too")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", default="8000", help="port to listen on")
    parser.add_argument(
        "--indexes", type=Path, default=REPO / "indexes", help="where the demo index goes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    index = prepare(args.photos, REPO / "cache" / "demo", args.indexes)
    log.info("starting the server (Ctrl+C stops it)")
    return serve(["--index", str(index), "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    raise SystemExit(main())
