"""The real default model and the shared Flickr8k data through the whole job."""

from pathlib import Path

import pytest

from bench.indexing import write_manifest
from indexer import ImpactSearcher, build, open_published
from indexer.sources import Source

from .conftest import PHOTOS, fast_options, photo
from .helpers import brute_force, shard_vectors


@pytest.mark.slow
def test_default_model_index_is_exact(tmp_path: Path, default_model) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        photo(name, 224).save(folder / f"{name}.jpg")
    options = fast_options(model="default", batch_size=8)
    summary = build(Source.folder(folder), tmp_path / "index", options, model=default_model)
    assert summary.indexed == len(PHOTOS)
    published = open_published(tmp_path / "index")
    assert published.manifest.model.name == default_model.config.name
    docs = shard_vectors(tmp_path / "index", "images")
    queries = default_model.term_dicts(
        default_model.encode_texts(["a man in a space suit", "a cup of coffee"]).word_weights,
        "query",
    )
    with ImpactSearcher(published.images) as searcher:
        for query in [*queries, *docs.values()]:
            assert searcher.search(query, 5) == brute_force(query, docs, 5)


@pytest.mark.data
def test_flickr8k_subset_with_captions(tmp_path: Path, flickr8k: Path, tiny_lite0) -> None:  # type: ignore[no-untyped-def]
    manifest = write_manifest(flickr8k, tmp_path / "subset.jsonl", 24, captions=True)
    root = tmp_path / "index"
    summary = build(
        Source.manifest(manifest, flickr8k / "images"), root, fast_options(), model=tiny_lite0
    )
    assert (summary.indexed, summary.captions, summary.skipped) == (24, 120, {})
    docs = shard_vectors(root, "captions")
    with ImpactSearcher(open_published(root).captions) as searcher:
        for query in list(docs.values())[:20]:
            assert searcher.search(query, 10) == brute_force(query, docs, 10)
