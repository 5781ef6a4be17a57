"""Streamed pairs: shards written and read, sources, shuffling, readers, resume, bad samples."""

import json
from itertools import islice
from pathlib import Path

import pytest
import webdataset as wds

from model.training.cli import main
from model.training.stream_loader import Decoding, PairStream, generator, make_loader, shuffled
from model.training.stream_sources import (
    MANIFEST_SHARD,
    DataSourceError,
    Record,
    count_tar_samples,
    open_source,
    shard_samples,
)

from .stream_helpers import make_shards

DECODING = Decoding(32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), flip=True, seed=0)


def keys_of(stream: PairStream, n: int) -> list[str]:
    return [item.key for item in islice(iter(stream), n)]


def test_written_shards_hold_every_pair_in_the_img2dataset_layout(
    photo_records: list[Record], tmp_path: Path
) -> None:
    out = make_shards(photo_records, tmp_path / "shards", per_shard=5)
    shards = open_source(out)
    assert [s.samples for s in shards] == [5, 5, 3]
    assert [s.samples for s in shards] == [count_tar_samples(s.path) for s in shards]  # type: ignore[arg-type]
    sample = next(iter(wds.WebDataset(str(shards[0].path), shardshuffle=False)))
    assert set(sample) >= {"__key__", "jpg", "txt", "json"}
    meta = json.loads(sample["json"])
    assert meta["caption"] == sample["txt"].decode() and meta["captions"] == [meta["caption"]]
    with pytest.raises(DataSourceError, match="already holds shards"):
        make_shards(photo_records, out, per_shard=5)


def test_one_pass_of_one_reader_yields_every_pair_once(even_shards: Path) -> None:
    stream = PairStream(open_source(even_shards), DECODING, buffer=5)
    first, second = keys_of(stream, 12), keys_of(stream, 24)[12:]
    assert sorted(first) == sorted(second) and len(set(first)) == 12
    assert first != second  # each pass in a new order
    item = next(iter(stream))
    assert item.pixels.shape == (3, 32, 32) and item.caption


def test_readers_share_the_shards_without_overlap(even_shards: Path) -> None:
    shards = open_source(even_shards)
    keys = [keys_of(PairStream(shards, DECODING, rank, 2, buffer=3), 6) for rank in (0, 1)]
    assert not set(keys[0]) & set(keys[1])
    assert len(set(keys[0]) | set(keys[1])) == 12
    with pytest.raises(DataSourceError, match="4 shards for 6 readers"):
        PairStream(shards, DECODING, world=3, workers=2)


def test_a_stream_started_at_a_position_continues_where_the_full_one_is(
    even_shards: Path,
) -> None:
    shards = open_source(even_shards)
    full = list(islice(iter(PairStream(shards, DECODING, buffer=4)), 20))
    resumed = list(islice(iter(PairStream(shards, DECODING, buffer=4, start={0: 7})), 13))
    assert [i.key for i in resumed] == [i.key for i in full[7:]]
    assert [i.caption for i in resumed] == [i.caption for i in full[7:]]
    assert all((a.pixels == b.pixels).all() for a, b in zip(resumed, full[7:]))  # same flips
    assert [i.position for i in resumed] == list(range(8, 21))


def test_seeds_change_the_order() -> None:
    orders = [list(shuffled(range(50), 10, generator(seed))) for seed in (0, 0, 1)]
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[2]) == list(range(50))


def test_bad_samples_are_skipped_and_counted(photo_records: list[Record], tmp_path: Path) -> None:
    jpeg = [Path(r.path).read_bytes() for r in photo_records[:6]]
    (tmp_path / "shards").mkdir()
    with wds.TarWriter(str(tmp_path / "shards" / "00000.tar")) as writer:
        writer.write({"__key__": "good0", "jpg": jpeg[0], "txt": "a man"})
        writer.write({"__key__": "garbage", "jpg": b"not a jpeg at all", "txt": "a broken photo"})
        writer.write({"__key__": "good1", "jpg": jpeg[1], "json": {"caption": "a cat"}})
        writer.write({"__key__": "mute", "jpg": jpeg[2]})
        writer.write({"__key__": "blank", "jpg": jpeg[3], "json": {"captions": [" ", ""]}})
        writer.write({"__key__": "good2", "jpg": jpeg[4], "json": {"captions": ["a", "b"]}})
    stream = PairStream(open_source(tmp_path / "shards"), DECODING, buffer=1)
    batch = next(iter(make_loader(stream, batch_size=4, workers=0)))  # pass 2 begins at good0
    assert batch.keys == ["good0", "good1", "good2", "good0"]
    assert batch.skipped == {"undecodable image": 1, "no caption": 2}


def test_a_damaged_shard_is_read_as_far_as_it_goes(
    photo_records: list[Record], tmp_path: Path
) -> None:
    out = make_shards(photo_records[:8], tmp_path / "shards", per_shard=4)
    damaged = out / "00001.tar"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    shards = open_source(out)
    errors: list[str] = []
    readable = [sample["__key__"] for sample in shard_samples(shards[1], errors.append)]
    assert 0 < len(readable) < 4 and len(errors) == 1
    items = list(islice(iter(PairStream(shards, DECODING, buffer=1)), 3 * (4 + len(readable))))
    assert {i.key for i in items} == {r.key for r in photo_records[:4]} | set(readable)
    assert sum(i.skipped.get("unreadable shard part", 0) for i in items) >= 2  # once a pass


def test_manifests_and_flickr8k_folders_are_sources(
    photo_records: list[Record], tmp_path: Path
) -> None:
    lines = [{"id": r.key, "path": r.path, "captions": list(r.captions)} for r in photo_records]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines))
    shards = open_source(manifest)
    assert len(shards) == 1 and shards[0].samples == 13 <= MANIFEST_SHARD
    folder = tmp_path / "flickr"
    (folder / "images").mkdir(parents=True)
    rows = []
    for record, split in zip(photo_records, ["train"] * 10 + ["dev"] * 3):
        target = folder / "images" / Path(record.path).name
        target.write_bytes(Path(record.path).read_bytes())
        rows.append({"image": target.name, "split": split, "captions": list(record.captions)})
    (folder / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert sum(s.samples for s in open_source(folder, "dev")) == 3
    keys = keys_of(PairStream(open_source(folder, "train"), DECODING), 10)
    assert sorted(keys) == sorted(Path(r.path).name for r in photo_records[:10])
    assert (
        main(["shards", "--data", str(folder), "--split", "dev", "--out", str(tmp_path / "s")]) == 0
    )
    assert [s.samples for s in open_source(tmp_path / "s")] == [3]


def test_missing_or_unusable_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="does not exist"):
        open_source(tmp_path / "nowhere")
    with pytest.raises(DataSourceError, match="neither"):
        open_source(tmp_path)
    (tmp_path / "m.jsonl").write_text('{"captions": ["no path"]}\n')
    with pytest.raises(DataSourceError, match="not a manifest line"):
        open_source(tmp_path / "m.jsonl")
