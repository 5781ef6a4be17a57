import shutil
from pathlib import Path

import pytest

from indexer import (
    ImpactSearcher,
    JobError,
    MetadataStore,
    add,
    build,
    open_published,
    rebuild,
    remove,
)
from indexer.layout import versions
from indexer.shards import ShardStore
from indexer.sources import Source

from .conftest import fast_options, noise, write_captioned
from .helpers import brute_force, table


def live_vectors(root: Path, kind: str) -> dict[str, dict[str, int]]:
    """Vectors of the documents the shards say are live (after replacements and removals)."""
    store = ShardStore(root / "shards")
    live = store.replay()
    vectors = {}
    for batch in store.batches():
        for index in batch.committed():
            for doc_id, terms in batch.vectors(index, kind):
                image_id = doc_id.rsplit("#", 1)[0]
                if image_id in live.images and live.images[image_id].origin == batch.origin(index):
                    vectors[doc_id] = terms
    return vectors


def assert_exact(root: Path) -> None:
    published = open_published(root)
    for kind in ("images", "captions"):
        docs = live_vectors(root, kind)
        with ImpactSearcher(getattr(published, kind)) as searcher:
            assert searcher.num_docs == len(docs)
            for query in list(docs.values())[:8]:
                assert searcher.search(query, 50) == brute_force(query, docs, 50)


def metadata_rows(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    path = open_published(root).metadata
    images = table(
        path, "SELECT id, path, sha256, captions, metadata, origin FROM images ORDER BY id"
    )
    captions = table(path, "SELECT id, image_id, position, text FROM captions ORDER BY id")
    return images, captions


@pytest.fixture
def grown_index(tmp_path: Path, tiny_lite0) -> Path:  # type: ignore[no-untyped-def]
    """Built from 5 captioned images, then an add of 3 new, 1 duplicate and 1 replacement."""
    root = tmp_path / "index"
    first = write_captioned(tmp_path / "first", 5)
    build(Source.manifest(first), root, fast_options(), model=tiny_lite0)
    second = write_captioned(tmp_path / "second", 3, first_seed=100)
    shutil.copyfile(
        tmp_path / "first" / "images" / "img0002.png", tmp_path / "second" / "images" / "dup.png"
    )
    noise(999).save(tmp_path / "second" / "images" / "changed.png")
    with second.open("a") as f:
        f.write('{"id": "copy-of-doc2", "image": "images/dup.png"}\n')
        f.write('{"id": "doc4", "image": "images/changed.png", "captions": ["a new caption"]}\n')
    summary = add(Source.manifest(second), root, fast_options(), model=tiny_lite0)
    assert (summary.indexed, summary.replaced, summary.captions) == (4, 1, 7)
    assert summary.skipped == {"duplicate content": 1}
    return root


def test_add_appends_without_reencoding_and_skips_duplicates(grown_index: Path) -> None:
    published = open_published(grown_index)
    assert published.version == "v000002" and published.manifest.build["mode"] == "incremental"
    assert (published.manifest.images, published.manifest.captions) == (8, 16 - 2 + 1)
    assert published.manifest.batches == ("00000-build", "00001-add")
    with MetadataStore(published.metadata) as store:
        assert store.image_ids() == [f"doc{i}" for i in (0, 1, 100, 101, 102, 2, 3, 4)]
        (doc4,) = store.images(["doc4"])
        assert doc4.captions == ("a new caption",) and doc4.path.endswith("changed.png")
        assert [c.text for c in store.captions_of("doc4")] == ["a new caption"]
    assert_exact(grown_index)


def test_remove_then_rebuild_from_shards_gives_the_same_index(grown_index: Path) -> None:
    summary = remove(grown_index, ["doc0", "doc100", "unknown"], fast_options())
    assert (summary.removed, summary.not_found) == (["doc0", "doc100"], ["unknown"])
    published = open_published(grown_index)
    assert (published.manifest.images, published.manifest.captions) == (6, 11)
    with MetadataStore(published.metadata) as store:
        assert store.images(["doc0"]) == [] and store.captions_of("doc100") == []
    with ImpactSearcher(published.captions) as searcher:
        assert all(
            not hit.startswith(("doc0#", "doc100#"))
            for hit, _ in searcher.search({"dog": 1, "snow": 1, "man": 1}, 100)
        )
    assert_exact(grown_index)
    incremental = metadata_rows(grown_index)

    rebuilt = rebuild(grown_index, fast_options())
    assert rebuilt.version == "v000004"
    assert open_published(grown_index).manifest.build["mode"] == "full"
    assert metadata_rows(grown_index) == incremental
    assert_exact(grown_index)
    assert versions(grown_index) == ["v000003", "v000004"]  # older versions pruned
    assert not published.is_current()


def test_remove_of_unknown_ids_only_is_an_error(grown_index: Path) -> None:
    with pytest.raises(JobError, match="none of the ids"):
        remove(grown_index, ["nope"], fast_options())
    assert open_published(grown_index).version == "v000002"


def test_add_needs_an_index_and_the_same_model(tmp_path: Path, grown_index: Path) -> None:
    manifest = write_captioned(tmp_path / "more", 1, first_seed=500)
    with pytest.raises(JobError, match="no index at"):
        add(Source.manifest(manifest), tmp_path / "nowhere", fast_options())
    with pytest.raises(JobError, match="cannot be mixed"):
        add(Source.manifest(manifest), grown_index, fast_options(model="tiny-dinov2"))
