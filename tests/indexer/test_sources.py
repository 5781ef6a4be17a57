import json
import os
from pathlib import Path

import pytest

from indexer.records import SkipReason
from indexer.sources import Source, SourceError


def test_folder_walk_is_sorted_recursive_and_skips_hidden(tmp_path: Path) -> None:
    for name in ("b.jpg", "a/z.png", "a/.secret.jpg", ".cache/x.jpg", "c.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = Source.folder(tmp_path).items()
    assert [i.id for i in items] == ["a/z.png", "b.jpg", "c.txt"]
    assert items[0].path == str(tmp_path / "a" / "z.png")


def test_file_names_that_are_not_utf8_are_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "ok.jpg").write_bytes(b"x")
    fd = os.open(os.fsencode(tmp_path) + b"/bad\xff.jpg", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    bad, ok = Source.folder(tmp_path).items()
    assert (bad.id, bad.skip) == ("bad\\xff.jpg", SkipReason.UNREADABLE.value)
    assert json.dumps(bad.to_json()).encode("utf-8") and ok.skip is None


def test_manifest_lines_become_items(tmp_path: Path) -> None:
    lines = [
        {
            "id": "one",
            "path": "imgs/1.jpg",
            "captions": ["a dog", " ", "a cat "],
            "metadata": {"k": 1},
        },
        {"image": "2.jpg", "split": "dev", "captions": "one caption"},
        {"path": "/abs/3.jpg"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    (tmp_path / "root").mkdir()
    one, two, three = Source.manifest(manifest, tmp_path / "root").items()
    assert (one.id, one.path, one.captions, one.metadata) == (
        "one",
        str(tmp_path / "root" / "imgs" / "1.jpg"),
        ("a dog", "a cat"),
        {"k": 1},
    )
    assert (two.id, two.captions, two.metadata) == ("2.jpg", ("one caption",), {"split": "dev"})
    assert three.path == "/abs/3.jpg" and three.skip is None


def test_bad_manifest_lines_are_skipped_items_not_errors(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"path": "a.jpg"}\nnot json\n[1, 2]\n{"id": "x"}\n{"path": "b.jpg", "captions": [3]}\n'
    )
    items = Source.manifest(manifest).items()
    assert [i.skip for i in items] == [None] + [SkipReason.BAD_MANIFEST_LINE.value] * 4
    assert items[1].id == "m.jsonl:2" and items[3].detail and "path" in items[3].detail
    assert items[0].path == str(tmp_path / "a.jpg")  # default root: the manifest's folder


def test_missing_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        Source.folder(tmp_path / "nope")
    (tmp_path / "f.jsonl").write_text("")
    with pytest.raises(SourceError, match="is not a folder"):
        Source.folder(tmp_path / "f.jsonl")
    with pytest.raises(SourceError, match="does not exist"):
        Source.manifest(tmp_path / "nope.jsonl")
    with pytest.raises(SourceError, match="--root"):
        Source.manifest(tmp_path / "f.jsonl", tmp_path / "nope")
