import os
import threading
from pathlib import Path

import pytest

from indexer import (
    IndexNotFoundError,
    MetadataStore,
    build,
    lucene,
    open_published,
    rebuild,
    remove,
)
from indexer.layout import current_version, versions
from indexer.sources import Source

from .conftest import fast_options, write_captioned


@pytest.fixture
def index(tmp_path: Path, tiny_lite0) -> Path:  # type: ignore[no-untyped-def]
    manifest = write_captioned(tmp_path / "data", 10)
    build(Source.manifest(manifest), tmp_path / "index", fast_options(), model=tiny_lite0)
    return tmp_path / "index"


def test_current_is_a_relative_symlink_to_a_complete_version(index: Path) -> None:
    assert os.readlink(index / "current") == "versions/v000001"
    published = open_published(index)
    assert {p.name for p in published.path.iterdir()} == {
        "images",
        "captions",
        "meta.sqlite",
        "manifest.json",
    }
    with pytest.raises(IndexNotFoundError):
        open_published(index.parent / "elsewhere")


def test_a_failed_publish_leaves_the_current_version_alone(
    index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise lucene.LuceneError("disk full")

    monkeypatch.setattr(lucene, "build_index", broken)
    with pytest.raises(lucene.LuceneError, match="disk full"):
        rebuild(index, fast_options())
    assert current_version(index) == "v000001" and versions(index) == ["v000001"]
    assert not list((index / "versions").glob(".staging-*"))
    monkeypatch.undo()
    assert rebuild(index, fast_options()).version == "v000002"


def test_leftovers_of_a_killed_job_are_cleaned_up(index: Path) -> None:
    (index / "versions" / ".staging-v000002" / "images").mkdir(parents=True)
    (index / "shards" / "00000-build" / ".tmp-00009").mkdir()
    (index / "shards" / ".tmp-00001-add").mkdir()
    rebuild(index, fast_options())
    assert not list(index.glob("**/.staging-*")) and not list(index.glob("**/.tmp-*"))
    assert current_version(index) == "v000002"


def test_readers_see_whole_versions_while_jobs_publish(index: Path) -> None:
    first = open_published(index)
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            published = open_published(index)
            with MetadataStore(published.metadata) as store:
                counts = store.counts()
            if counts != (published.manifest.images, published.manifest.captions):
                errors.append(f"{published.version}: {counts}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(4):
            remove(index, [f"doc{i}"], fast_options(keep_versions=2))
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert not first.is_current() and not first.path.exists()  # pruned: two newer versions
    assert versions(index) == ["v000004", "v000005"]
    assert open_published(index).manifest.images == 6
