"""Lucene's answers equal brute-force dot products over the stored shards."""

import json
import random
from pathlib import Path

import pytest

from indexer import ImpactSearcher, build, open_published
from indexer.lucene import IndexUpdater, TwoPhase, build_index, clause_limit, raise_clause_limit
from indexer.sources import Source

from .conftest import CAPTIONS, fast_options, write_captioned
from .helpers import brute_force, shard_vectors


def random_queries(words: list[str], count: int, seed: int) -> list[dict[str, int]]:
    rng = random.Random(seed)
    return [
        {w: rng.randint(1, 300) for w in rng.sample(words, rng.randint(1, min(12, len(words))))}
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def captioned_index(tmp_path_factory: pytest.TempPathFactory, tiny_lite0) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("exact")
    manifest = write_captioned(folder / "data", 20)
    build(Source.manifest(manifest), folder / "index", fast_options(shard_size=6), model=tiny_lite0)
    return folder / "index"


@pytest.mark.parametrize("kind", ["images", "captions"])
def test_top_hits_and_scores_equal_brute_force(
    captioned_index: Path, tiny_lite0, kind: str
) -> None:  # type: ignore[no-untyped-def]
    docs = shard_vectors(captioned_index, kind)
    model_queries = tiny_lite0.term_dicts(
        tiny_lite0.encode_texts(list(CAPTIONS)).word_weights, "query"
    )
    queries = (
        model_queries
        + list(docs.values())[:10]
        + random_queries(list(tiny_lite0.vocab.words), 30, 1)
    )
    published = open_published(captioned_index)
    with ImpactSearcher(getattr(published, kind)) as searcher:
        assert searcher.num_docs == len(docs)
        for k in (1, 5, len(docs) + 5):
            for query in queries:
                assert searcher.search(query, k) == brute_force(query, docs, k), query
        assert searcher.batch_search(queries, 5, threads=2) == [
            brute_force(q, docs, 5) for q in queries
        ]


@pytest.fixture(scope="module")
def wide_index(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, dict[str, int]], list[str]]:
    """300 documents over 1,500 distinct words (more than Lucene's 1,024 clause limit)."""
    folder = tmp_path_factory.mktemp("wide")
    words = [f"w{i}" for i in range(1500)] + ["don't", "café"]
    rng = random.Random(0)
    docs = {f"d{i:03d}": {w: rng.randint(1, 50) for w in rng.sample(words, 40)} for i in range(300)}
    (folder / "input").mkdir()
    with (folder / "input" / "docs.jsonl").open("w") as f:
        for doc_id, vector in docs.items():
            f.write(json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n")
    assert build_index(folder / "input", folder / "index") == 300
    return folder / "index", docs, words


def test_queries_longer_than_the_clause_limit_work(wide_index) -> None:  # type: ignore[no-untyped-def]
    index, docs, words = wide_index
    long_query = {w: (i % 7) + 1 for i, w in enumerate(words)}
    with ImpactSearcher(index, max_query_words=len(words)) as searcher:
        assert clause_limit() >= len(words)  # raised for the whole process, as documented
        assert searcher.search(long_query, 20) == brute_force(long_query, docs, 20)
        for query in random_queries(words, 20, 2):
            assert searcher.search(query, 10) == brute_force(query, docs, 10)


def test_the_clause_limit_is_never_lowered(wide_index) -> None:  # type: ignore[no-untyped-def]
    ImpactSearcher(wide_index[0]).close()
    before = clause_limit()
    raise_clause_limit(10)
    assert clause_limit() == before


def test_query_validation(wide_index) -> None:  # type: ignore[no-untyped-def]
    index, docs, _ = wide_index
    with ImpactSearcher(index) as searcher:
        assert searcher.search({"w1": 0}, 5) == [] and searcher.search({}, 5) == []
        assert searcher.search({"w1": 3, "w2": 0, "absent": 9}, 5) == brute_force(
            {"w1": 3}, docs, 5
        )
        with pytest.raises(ValueError, match="negative"):
            searcher.search({"w1": -1}, 5)
        with pytest.raises(ValueError, match="whitespace"):
            searcher.search({"two words": 1}, 5)
    with pytest.raises(FileNotFoundError):
        ImpactSearcher(index.parent / "nowhere")


def test_in_place_updates_stay_exact(wide_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index, docs, words = wide_index
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in index.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    docs = dict(docs)
    with IndexUpdater(copy) as updater:
        for doc_id in ("d000", "d001", "missing"):
            updater.delete(doc_id)
            docs.pop(doc_id, None)
        docs["d002"] = {"w1": 77, "café": 5}
        docs["new"] = {"w1": 3, "don't": 9}
        for doc_id in ("d002", "new"):
            updater.upsert(doc_id, docs[doc_id])
    with ImpactSearcher(copy) as searcher:
        assert searcher.num_docs == len(docs) == 299
        for query in [{"w1": 2, "café": 1, "don't": 4}, *random_queries(words, 20, 3)]:
            assert searcher.search(query, 15) == brute_force(query, docs, 15)
    with pytest.raises(ValueError, match="no positive impacts"), IndexUpdater(copy) as updater:
        updater.upsert("empty", {"w1": 0})


def test_ties_across_the_kth_place_go_by_id_with_and_without_pruning(tmp_path: Path) -> None:
    """2,500 documents (past Lucene's 1,000-hit threshold, where pruning starts), most
    of them tied: the k best are still the smallest ids among equal scores."""
    rng = random.Random(3)
    docs = {}
    for i in rng.sample(range(2500), 2500):  # written in shuffled order
        docs[f"d{i:04d}"] = {"sky": 5, "sea": rng.choice([1, 1, 1, 2])} if i % 7 else {"sky": 9}
    (tmp_path / "input").mkdir()
    with (tmp_path / "input" / "docs.jsonl").open("w") as f:
        for doc_id, vector in docs.items():
            f.write(json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n")
    build_index(tmp_path / "input", tmp_path / "index")
    query = {"sky": 3, "sea": 2}
    with ImpactSearcher(tmp_path / "index") as searcher:
        for k in (1, 10, 400, 600):
            expected = brute_force(query, docs, k)
            assert searcher.search(query, k) == expected
            assert searcher.search(query, k, prune=False) == expected
        assert searcher.matches(query) == len(docs) and searcher.matches({}) == 0


def test_a_two_phase_search_scores_its_hits_exactly_and_finds_the_exact_top(
    wide_index,
) -> None:  # type: ignore[no-untyped-def]
    index, docs, words = wide_index
    queries = random_queries(words, 40, 5) + list(docs.values())[:10]
    with ImpactSearcher(index) as searcher:
        found, best = 0, 0
        for query in queries:
            for k in (1, 10):
                exact = brute_force(query, docs, k)
                hits = searcher.search(query, k, plan=TwoPhase(lead=4, candidates=50))
                assert len(hits) == len(exact)
                for doc_id, score in hits:  # every score is the whole query's dot product
                    assert score == sum(docs[doc_id].get(w, 0) * v for w, v in query.items())
                assert hits == sorted(hits, key=lambda hit: (-hit[1], hit[0]))
                found += len({d for d, _ in hits} & {d for d, _ in exact})
                best += len(exact)
            # a plan whose lead is the whole query is exact search
            assert searcher.search(query, 10, plan=TwoPhase(lead=len(query))) == exact
        assert 0.6 < found / best < 1  # approximate, and mostly right
    with pytest.raises(ValueError, match="lead >= 1"):
        TwoPhase(lead=0)


def test_a_two_phase_search_keeps_ties_across_the_kth_place_by_id(tmp_path: Path) -> None:
    docs = {f"d{i:03d}": {"sky": 5, "sea": 1 + i % 2} for i in range(400)}
    (tmp_path / "input").mkdir()
    with (tmp_path / "input" / "docs.jsonl").open("w") as f:
        for doc_id, vector in reversed(docs.items()):  # written in reverse id order
            f.write(json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n")
    build_index(tmp_path / "input", tmp_path / "index")
    query = {"sky": 3, "sea": 2}
    with ImpactSearcher(tmp_path / "index") as searcher:
        for k in (1, 10, 300):
            hits = searcher.search(query, k, plan=TwoPhase(lead=1, candidates=400))
            assert hits == brute_force(query, docs, k)
