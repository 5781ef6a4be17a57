"""An index published in search shards: whole documents by a hash of the image id, each
shard a complete little index, and their merged top hits those of one index."""

import random
from pathlib import Path

import pytest

from indexer import (
    ImpactSearcher,
    MetadataStore,
    PublishedIndex,
    add,
    build,
    open_published,
    rebuild,
    remove,
    shard_of,
)
from indexer.search_shards import shard_folder
from indexer.sources import Source

from .conftest import fast_options, write_captioned
from .helpers import brute_force, shard_vectors


def merged(published: PublishedIndex, kind: str, query: dict[str, int], k: int) -> list:  # type: ignore[type-arg]
    """Every shard's top ``k``, merged by score and then id."""
    hits = []
    for number in range(published.shards):
        with ImpactSearcher(getattr(published.search_shard(number), kind)) as searcher:
            hits += searcher.search(query, k)
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))[:k]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_captioned(tmp_path_factory.mktemp("sharded") / "data", 24)


def test_each_image_and_its_captions_live_in_the_shard_its_id_hashes_to(
    tmp_path: Path, collection: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "index"
    summary = build(
        Source.manifest(collection), root, fast_options(search_shards=3), model=tiny_lite0
    )
    assert "24 images, 48 captions in 3 search shards" in summary.report()
    published = open_published(root)
    assert published.shards == 3 and not published.images.exists()
    assert sorted(p.name for p in published.path.iterdir()) == [
        "manifest.json",
        *(shard_folder(n) for n in range(3)),
    ]
    owners: dict[str, int] = {}
    for number in range(3):
        part = published.search_shard(number)
        with MetadataStore(part.metadata) as store:
            ids = store.image_ids()
            assert all(shard_of(i, 3) == number for i in ids)
            owners |= dict.fromkeys(ids, number)
            captions = [c for i in ids for c in store.captions_of(i)]
        with ImpactSearcher(part.images) as images, ImpactSearcher(part.captions) as texts:
            assert (images.num_docs, texts.num_docs) == (len(ids), len(captions))
    assert sorted(owners) == sorted(f"doc{i}" for i in range(24))
    assert len(set(owners.values())) == 3  # 24 ids do not all hash to one shard
    with pytest.raises(IndexError):
        published.search_shard(3)


@pytest.mark.parametrize("kind", ["images", "captions"])
def test_merged_shard_hits_equal_one_index_including_ties(
    tmp_path: Path, collection: Path, tiny_lite0, kind: str
) -> None:  # type: ignore[no-untyped-def]
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    build(Source.manifest(collection), one, fast_options(), model=tiny_lite0)
    build(Source.manifest(collection), sharded, fast_options(search_shards=4), model=tiny_lite0)
    docs = shard_vectors(one, kind)
    words = sorted({w for terms in docs.values() for w in terms})
    rng = random.Random(7)
    queries = list(docs.values())[:6] + [{w: 1} for w in words[:10]]  # single words: ties
    queries += [{w: rng.randint(1, 40) for w in rng.sample(words, 5)} for _ in range(10)]
    with ImpactSearcher(getattr(open_published(one), kind)) as searcher:
        for query in queries:
            for k in (1, 3, len(docs)):
                expected = searcher.search(query, k)
                assert expected == brute_force(query, docs, k)
                assert merged(open_published(sharded), kind, query, k) == expected


def test_add_and_remove_update_each_shard_in_place_and_rebuild_reshards(
    tmp_path: Path, collection: Path, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "index"
    build(Source.manifest(collection), root, fast_options(search_shards=2), model=tiny_lite0)
    more = write_captioned(tmp_path / "more", 6, first_seed=100)
    summary = add(Source.manifest(more), root, fast_options(), model=tiny_lite0)
    assert summary.search_shards == 2
    assert open_published(root).manifest.build["mode"] == "incremental"
    remove(root, ["doc3", "doc100"], fast_options())
    published = open_published(root)
    assert published.shards == 2 and published.manifest.build["mode"] == "incremental"
    docs = {i: t for i, t in shard_vectors(root, "images").items() if i not in ("doc3", "doc100")}
    query = next(iter(docs.values()))
    assert merged(published, "images", query, 40) == brute_force(query, docs, 40)

    rebuild(root, fast_options(search_shards=1))
    flat = open_published(root)
    assert flat.shards == 1 and flat.search_shard(0) == flat and flat.images.is_dir()
    with ImpactSearcher(flat.images) as searcher:
        assert searcher.search(query, 40) == brute_force(query, docs, 40)
    rebuild(root, fast_options())  # the default keeps the published layout
    assert open_published(root).shards == 1
