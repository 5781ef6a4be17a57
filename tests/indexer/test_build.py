import hashlib
from collections import Counter
from pathlib import Path

from indexer import ImpactSearcher, MetadataStore, build, lucene, open_published
from indexer.shards import ShardStore
from indexer.sources import Source

from .conftest import fast_options, write_captioned
from .helpers import shard_vectors


def test_bad_inputs_are_skipped_with_their_reasons(
    tmp_path: Path, bad_collection, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    folder, expected = bad_collection
    root = tmp_path / "index"
    summary = build(Source.folder(folder), root, fast_options(), model=tiny_lite0)

    indexed = sorted(name for name, reason in expected.items() if reason is None)
    assert summary.indexed == len(indexed) == summary.total_images
    assert summary.skipped == Counter(r for r in expected.values() if r is not None)
    report = summary.report()
    for reason in summary.skipped:
        assert reason in report
    (batch,) = ShardStore(root / "shards").batches()
    outcomes = {r.id: r.reason for k in batch.committed() for r in batch.records(k)}
    assert outcomes == expected
    assert sorted(shard_vectors(root, "images")) == indexed

    published = open_published(root)
    manifest = published.manifest
    assert (manifest.images, manifest.captions, manifest.version) == (len(indexed), 0, "v000001")
    assert manifest.model.name == "tiny-lite0"
    assert manifest.model.vocab_digest == tiny_lite0.vocab.digest()
    assert manifest.model.quant_scale == tiny_lite0.config.sparse.quant_scale
    assert manifest.model.doc_top_k == tiny_lite0.config.sparse.doc_top_k
    with MetadataStore(published.metadata) as store:
        rows = {row.id: row for row in store.images(indexed)}
        assert sorted(rows) == indexed
        rotated = rows["rotated.jpg"]
        assert (rotated.width, rotated.height) == (30, 60)
        data = (folder / "rotated.jpg").read_bytes()
        assert rotated.sha256 == hashlib.sha256(data).hexdigest() and rotated.bytes == len(data)
        assert rotated.terms == shard_vectors(root, "images")["rotated.jpg"]
    with ImpactSearcher(published.images) as searcher:
        assert searcher.num_docs == len(indexed)


def test_captions_get_their_own_index_and_metadata(tmp_path: Path, tiny_lite0) -> None:  # type: ignore[no-untyped-def]
    manifest = write_captioned(tmp_path / "data", 6)
    root = tmp_path / "index"
    summary = build(Source.manifest(manifest), root, fast_options(), model=tiny_lite0)
    assert (summary.indexed, summary.captions, summary.total_captions) == (6, 12, 12)
    published = open_published(root)
    with MetadataStore(published.metadata) as store:
        (row,) = store.images(["doc3"])
        assert row.metadata == {"n": 3} and len(row.captions) == 2
        captions = store.captions_of("doc3")
        assert [c.id for c in captions] == ["doc3#0", "doc3#1"]
        assert [c.text for c in captions] == list(row.captions)
        assert captions[1].terms == shard_vectors(root, "captions")["doc3#1"]
        assert store.counts() == (6, 12)
    with ImpactSearcher(published.captions) as searcher:
        assert searcher.num_docs == 12
        hits = searcher.search(captions[0].terms, 3)
        assert hits[0][1] == sum(w * w for w in captions[0].terms.values())


def test_no_captions_flag_keeps_them_as_metadata_only(tmp_path: Path, tiny_lite0) -> None:  # type: ignore[no-untyped-def]
    manifest = write_captioned(tmp_path / "data", 3)
    root = tmp_path / "index"
    summary = build(Source.manifest(manifest), root, fast_options(captions=False), model=tiny_lite0)
    assert (summary.captions, summary.encoded_captions) == (0, 0)
    with MetadataStore(open_published(root).metadata) as store:
        assert store.counts() == (3, 0) and len(store.images(["doc0"])[0].captions) == 2


def test_rerunning_a_finished_build_changes_nothing(tmp_path: Path, tiny_lite0) -> None:  # type: ignore[no-untyped-def]
    manifest = write_captioned(tmp_path / "data", 3)
    root = tmp_path / "index"
    build(Source.manifest(manifest), root, fast_options(), model=tiny_lite0)
    again = build(Source.manifest(manifest), root, fast_options(), model=tiny_lite0)
    assert "nothing to do" in again.note and again.encoded_images == 0
    assert (again.indexed, again.version) == (3, "v000001")


def test_an_empty_folder_publishes_an_empty_index(tmp_path: Path, tiny_lite0) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    summary = build(
        Source.folder(tmp_path / "empty"), tmp_path / "index", fast_options(), model=tiny_lite0
    )
    assert (summary.indexed, summary.total_images) == (0, 0)
    with ImpactSearcher(open_published(tmp_path / "index").images) as searcher:
        assert searcher.search({"dog": 3}, 5) == []


def test_worker_processes_decode_exactly_like_the_main_process(
    tmp_path: Path, bad_collection, tiny_lite0
) -> None:  # type: ignore[no-untyped-def]
    folder, _ = bad_collection
    inline, workers = tmp_path / "inline", tmp_path / "workers"
    build(Source.folder(folder), inline, fast_options(workers=0), model=tiny_lite0)
    assert lucene.jvm_started()  # so the workers start from a fork server, not a fork
    build(Source.folder(folder), workers, fast_options(workers=2), model=tiny_lite0)
    for kind in ("images", "captions"):
        assert shard_vectors(inline, kind) == shard_vectors(workers, kind)
    first, second = (ShardStore(root / "shards").batches()[0] for root in (inline, workers))
    assert [first.records(k) for k in first.committed()] == [
        second.records(k) for k in second.committed()
    ]
