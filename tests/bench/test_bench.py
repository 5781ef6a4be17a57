"""The benchmark's own arithmetic: synthetic collections, recall, exact engines, slopes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bench.corpus import CorpusStats, SyntheticSampler, collection, load_csr, save_csr
from bench.curve import loglog_slope
from bench.engines import LuceneEngine, LuceneTwoPhaseEngine, ScipyEngine, queries_of, top_hits
from bench.search import collection_facts, engine_limit, main, recall_at_k
from indexer.lucene import TwoPhase


def _real_like(vocab: int = 400, docs: int = 300) -> sp.csr_matrix:
    """A small "real" collection: 20, 30 or 40 Zipf-distributed words a document."""
    rng = np.random.default_rng(1)
    p = 1 / np.arange(1, vocab + 1)
    p[-50:] = 0.0  # words no document has
    p /= p.sum()
    rows = []
    for _ in range(docs):
        c = int(rng.choice([20, 30, 40]))
        words = np.sort(rng.choice(vocab, size=c, replace=False, p=p))
        rows.append(sp.csr_matrix((rng.integers(1, 40, size=c), words, [0, c]), shape=(1, vocab)))
    return sp.vstack(rows, format="csr").astype(np.int32)


def test_synthetic_documents_follow_the_statistics() -> None:
    stats = CorpusStats.of(_real_like())
    docs = SyntheticSampler(stats, seed=0).sample(6000)
    assert docs.shape == (6000, stats.vocab) and docs.has_canonical_format
    counts = np.diff(docs.indptr)
    assert set(np.unique(counts)) == {20, 30, 40}  # every document has a real count
    for c in (20, 30, 40):
        assert abs((counts == c).mean() - (stats.active == c).mean()) < 0.03
    df = np.bincount(docs.indices, minlength=stats.vocab) / docs.shape[0]
    assert stats.df.max() == 1.0  # a word in every document is the hardest case
    assert np.abs(df - stats.df).max() < 0.05
    assert np.abs(df - stats.df).mean() < 0.005
    assert df[stats.df == 0].sum() == 0
    assert set(np.unique(docs.data)) <= set(np.unique(stats.impacts))
    assert abs(docs.data.mean() - stats.impacts.mean()) < 0.5


def test_stats_of_a_matrix_and_collection_puts_real_documents_first(tmp_path: Path) -> None:
    real = sp.csr_matrix(np.array([[3, 0, 1, 0], [0, 2, 0, 0], [5, 0, 0, 7]], dtype=np.int32))
    stats = CorpusStats.of(real)
    assert stats.df.tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert stats.active.tolist() == [2, 1, 2]
    assert sorted(stats.impacts.tolist()) == [1, 2, 3, 5, 7]
    grown = collection(real, 50)
    assert grown.shape == (50, 4)
    assert (grown[:3] != real).nnz == 0
    assert collection(real, 2).shape == (2, 4)
    loaded = load_csr(save_csr(grown, tmp_path / "c"))
    assert (loaded != grown).nnz == 0


def test_recall_at_k_on_known_cases() -> None:
    exact = [[10, 9, 8, 7]]
    assert recall_at_k([[10, 9, 8, 7]], exact, 4) == 1.0
    assert recall_at_k([[10, 9, 3, 2]], exact, 4) == 0.5
    assert recall_at_k([[1, 1, 1, 1]], exact, 4) == 0.0
    # a tie with the k-th exact score counts, whatever document it is
    assert recall_at_k([[10, 9, 7, 7]], exact, 4) == 1.0
    # averaged over queries; only the first k found count
    assert recall_at_k([[10, 9], [5, 1]], [[10, 9], [5, 4]], 2) == pytest.approx(0.75)
    assert recall_at_k([[10, 9, 8]], [[10, 9, 8]], 2) == 1.0


def test_top_hits_orders_by_score_then_row() -> None:
    scores = np.array([1.0, 5.0, 3.0, 5.0, 0.0])
    assert top_hits(scores, None, 3) == [(1, 5.0), (3, 5.0), (2, 3.0)]
    assert top_hits(scores[:2], np.array([7, 9]), 5) == [(9, 5.0), (7, 1.0)]


def _random_collection(n: int = 300, vocab: int = 60, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 30, size=(n, vocab)) * (rng.random((n, vocab)) < 0.2)
    return sp.csr_matrix(dense.astype(np.int32))


def test_scipy_engine_is_exact(tmp_path: Path) -> None:
    docs = _random_collection()
    queries = _random_collection(20, seed=1)
    engine = ScipyEngine(tmp_path / "scipy")
    engine.build(docs, [f"w{i}" for i in range(docs.shape[1])])
    engine.open([])
    truth = (docs @ queries.T).toarray()
    for q, query in enumerate(queries_of(queries)):
        hits = engine.search_group([query], 5, 1)[0]
        assert [s for _, s in hits] == sorted(truth[:, q], reverse=True)[:5]
        assert all(truth[doc, q] == score for doc, score in hits)


def test_lucene_engine_scores_are_exact_dot_products(tmp_path: Path) -> None:
    pytest.importorskip("pyserini")
    docs = _random_collection(200)
    queries = _random_collection(10, seed=2)
    words = [f"w{i}" for i in range(docs.shape[1])]
    engine = LuceneEngine(tmp_path / "lucene")
    engine.build(docs, words, threads=1)
    engine.open(words)
    truth = (docs @ queries.T).toarray()
    try:
        prepared = [engine.query(q) for q in queries_of(queries)]
        for threads in (1, 2):
            found = [
                h
                for s in range(0, 10, threads)
                for h in engine.search_group(prepared[s : s + threads], 5, threads)
            ]
            for q, hits in enumerate(found):
                assert [s for _, s in hits] == sorted(truth[:, q], reverse=True)[:5]
                assert all(truth[doc, q] == score for doc, score in hits)
    finally:
        engine.close()


def test_loglog_slope() -> None:
    sizes = [1e4, 1e5, 1e6]
    slope, intercept = loglog_slope(sizes, [3 * n**0.5 for n in sizes])
    assert slope == pytest.approx(0.5) and 10**intercept == pytest.approx(3)
    assert np.isnan(loglog_slope([1e4], [1.0])[0])


def test_engine_limit_parses_and_refuses_unknown_engines() -> None:
    assert engine_limit("seismic=100000") == ("seismic", 100_000)
    for bad in ("seismic", "faiss=10", "lucene=many"):
        with pytest.raises(argparse.ArgumentTypeError):
            engine_limit(bad)


@pytest.mark.parametrize(
    "argv", [["--engines", "lucene"], ["--sizes", "100", "--max-docs", "scipy=10"]]
)
def test_search_refuses_to_run_without_the_exact_reference(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_two_phase_engine_reads_the_lucene_index_and_scores_exactly(tmp_path: Path) -> None:
    pytest.importorskip("pyserini")
    docs = _random_collection(200)
    queries = _random_collection(10, seed=2)
    words = [f"w{i}" for i in range(docs.shape[1])]
    LuceneEngine(tmp_path / "lucene").build(docs, words, threads=1)
    engine = LuceneTwoPhaseEngine(tmp_path / "lucene-two-phase")
    assert engine.build(docs, words) == 0.0  # the lucene engine's index, not a new one
    engine.plan = TwoPhase(lead=2, candidates=20)
    engine.open(words)
    truth = (docs @ queries.T).toarray()
    try:
        prepared = [engine.query(q) for q in queries_of(queries)]
        for q, hits in enumerate(engine.search_group(prepared, 5, 1)):
            assert len(hits) == 5 and all(truth[doc, q] == score for doc, score in hits)
    finally:
        engine.close()


def test_collection_facts_name_the_benchmarked_model(tmp_path: Path) -> None:
    config = {"name": "mine", "sparse": {"doc_top_k": 128, "query_top_k": 64}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    docs = _random_collection(50)
    facts = collection_facts(docs, _random_collection(5, seed=1), tmp_path)
    assert facts["model"] == "mine" and facts["sparse"]["doc_top_k"] == 128
    assert facts["real_docs"] == 50
