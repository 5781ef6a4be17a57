"""Writing image-caption pairs as WebDataset shards (``python -m model.training shards``).

The layout is img2dataset's: per pair ``KEY.jpg`` (the file's own bytes, not re-encoded;
``.png``/``.webp`` files keep their extension),
``KEY.txt`` (the first caption) and ``KEY.json`` (``key``, ``caption``, ``captions``: all
of them), in tars ``00000.tar``, ``00001.tar``, ... of ``per_shard`` pairs, plus
``shards.json`` with each tar's sample count (what streaming training reads for its
epoch length).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import webdataset as wds
from tqdm import tqdm

from .stream_sources import IMAGE_EXTENSIONS, SHARD_INDEX, DataSourceError, Record

log = logging.getLogger(__name__)


def shard_key(record: Record) -> str:
    """A WebDataset key: the file name without its extension, dots replaced (a key ends
    at its first dot)."""
    return Path(record.key).stem.replace(".", "_")


def _problem(record: Record, path: Path, ext: str) -> str:
    """Why a record cannot be written ("" when it can)."""
    if not record.captions:
        return "no caption"
    if not path.is_file():
        return "no such file"
    if ext not in IMAGE_EXTENSIONS:
        return f"not one of {', '.join(IMAGE_EXTENSIONS)}"
    return ""


def write_shards(records: list[Record], out: Path, per_shard: int = 500) -> list[dict]:
    """Write ``records`` as shards into ``out`` (which must hold no shards yet).

    Records without captions or whose image file is missing are left out and logged.
    Returns the index entries ``{"name", "samples"}``.
    """
    if per_shard < 1:
        raise ValueError("per_shard must be at least 1")
    if out.is_dir() and any(out.glob("*.tar")):
        raise DataSourceError(f"{out} already holds shards; remove them or pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    left_out = 0
    pattern = str(out / "%05d.tar")
    with wds.ShardWriter(pattern, maxcount=per_shard, verbose=0) as writer:
        for record in tqdm(records, desc="writing shards", unit="pair"):
            path = Path(record.path)
            ext = path.suffix.lower().lstrip(".")
            problem = _problem(record, path, ext)
            if problem:
                left_out += 1
                log.warning("left out %s: %s", record.key, problem)
                continue
            key = shard_key(record)
            writer.write(
                {
                    "__key__": key,
                    ext: path.read_bytes(),
                    "txt": record.captions[0],
                    "json": {
                        "key": key,
                        "caption": record.captions[0],
                        "captions": record.captions,
                    },
                }
            )
            name = Path(writer.fname).name
            counts[name] = counts.get(name, 0) + 1
    index = [{"name": name, "samples": n} for name, n in sorted(counts.items())]
    (out / SHARD_INDEX).write_text(json.dumps({"shards": index}, indent=1) + "\n")
    log.info(
        "%d pairs in %d shards in %s (%d left out)", sum(counts.values()), len(index), out, left_out
    )
    return index
