"""``python -m bench.indexing``: indexing throughput and index size on a captioned data set.

Runs the real jobs on a folder in the Flickr8k layout (``captions.jsonl`` + ``images/``):

1. images only (``--images`` of them): end-to-end images/s of the job (decode, encode,
   shards, Lucene, metadata, publish; the model is loaded once beforehand and its load
   time printed separately);
2. images with captions (the first ``--caption-images``, five captions each):
   captions/s of the caption encoder;
3. ``rebuild`` of both indexes from their shards: Lucene build docs/s with a warm JVM;

and prints index bytes per image and per caption (Lucene, metadata, durable shards).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import indexer
from indexer import Source, open_published
from indexer.layout import SHARDS
from indexer.options import default_workers

from .common import folder_bytes


def write_manifest(data: Path, out: Path, count: int, captions: bool) -> Path:
    """The first ``count`` lines of ``data/captions.jsonl`` as an indexer manifest."""
    lines = (data / "captions.jsonl").read_text().splitlines()[:count]
    with out.open("w") as f:
        for line in lines:
            row = json.loads(line)
            entry = {"id": row["image"], "path": row["image"], "split": row["split"]}
            if captions:
                entry["captions"] = row["captions"]
            f.write(json.dumps(entry) + "\n")
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from model import load_encoder

    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    model = load_encoder(args.model)
    figures: dict[str, Any] = {"model": model.config.name, "model_load_s": time.monotonic() - began}
    options = indexer.JobOptions(
        model=args.model or "default",
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    images = args.out / "images-only"
    manifest = write_manifest(args.data, args.out / "images.jsonl", args.images, captions=False)
    source = Source.manifest(manifest, args.data / "images")
    began = time.monotonic()
    first = indexer.build(source, images, replace(options, captions=False), model)
    wall = time.monotonic() - began
    figures |= {
        "images": first.indexed,
        "images_skipped": sum(first.skipped.values()),
        "images_job_s": wall,
        "images_per_s_end_to_end": first.indexed / wall,
        "images_per_s_pipeline": first.encoded_images / first.timings["pipeline"],
    }
    captioned = args.out / "with-captions"
    manifest = write_manifest(args.data, args.out / "captions.jsonl", args.caption_images, True)
    source = Source.manifest(manifest, args.data / "images")
    second = indexer.build(source, captioned, options, model)
    figures |= {
        "captions": second.captions,
        "captions_encode_s": second.timings["encode_captions"],
        "captions_per_s": second.encoded_captions / second.timings["encode_captions"],
    }
    for name, root in (("images", images), ("captions", captioned)):
        indexer.rebuild(root, options)
        rebuilt = open_published(root).manifest
        docs = rebuilt.images if name == "images" else rebuilt.captions
        figures[f"lucene_{name}_docs_per_s"] = docs / rebuilt.build[f"lucene_{name}"]
    published = open_published(images)
    with_captions = open_published(captioned)
    per_image_meta = published.metadata.stat().st_size / first.indexed
    figures |= {
        "lucene_bytes_per_image": folder_bytes(published.images) / first.indexed,
        "lucene_bytes_per_caption": folder_bytes(with_captions.captions) / second.captions,
        "metadata_bytes_per_image": per_image_meta,
        "metadata_bytes_per_caption": (
            with_captions.metadata.stat().st_size - per_image_meta * second.indexed
        )
        / second.captions,
        "shard_bytes_per_image": folder_bytes(images / SHARDS) / first.indexed,
        "shard_bytes_per_caption": (
            folder_bytes(captioned / SHARDS)
            - folder_bytes(images / SHARDS) * second.indexed / first.indexed
        )
        / second.captions,
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing", description=__doc__)
    parser.add_argument(
        "--data", type=Path, required=True, help="folder with captions.jsonl and images/"
    )
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the indexes")
    parser.add_argument("--images", type=int, default=7000, help="images in the images-only run")
    parser.add_argument(
        "--caption-images", type=int, default=1000, help="images whose captions are indexed"
    )
    parser.add_argument(
        "--model", default=None, help="checkpoint folder or config name (default: shipped)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=default_workers(), help="decoding processes")
    parser.add_argument("--threads", type=int, default=None, help="CPU encoder threads")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=indexer.JobOptions.batch_size,
        help="pictures per encoder batch",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run(args)
    for key, value in figures.items():
        print(f"{key:<28} {value:,.2f}" if isinstance(value, float) else f"{key:<28} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
