"""The search engines compared, behind one small interface.

Each engine builds an artifact on disk from a ``(documents, vocab)`` int32 impact matrix
(:meth:`Engine.build`), is opened from it in a fresh process (:meth:`Engine.open`), and
answers groups of queries: a group of ``threads`` queries runs in parallel in the
engine's own way (:meth:`Engine.search_group`). Results are ``(doc_row, score)`` lists.

- ``lucene``: this product's index, Anserini impact search through :mod:`indexer.lucene`
  (Lucene's top-k search: dynamic pruning);
- ``lucene-exhaustive``: the same index with every matching document scored (no pruning);
- ``lucene-two-phase``: the same index searched in two phases (``indexer.TwoPhase``:
  the highest-impact query words find candidates, the whole query scores them);
- ``scipy``: exact sparse brute force, query row times the transposed matrix;
- ``dense``: exact dense brute force, numpy float32 matmul at the dense baseline's width;
- ``seismic``: Seismic (``pyseismic-lsr``), approximate learned-sparse retrieval.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .common import folder_bytes

Hits = list[tuple[int, float]]
Query = tuple[np.ndarray, np.ndarray]  # (word ids, impacts)
DENSE_DIM = 512  # model.dense.DenseBaseline's default output width


def queries_of(matrix: sp.csr_matrix) -> list[Query]:
    """The rows of a query impact matrix as ``(word ids, impacts)`` pairs."""
    return [
        (matrix.indices[a:b].copy(), matrix.data[a:b].copy())
        for a, b in zip(matrix.indptr[:-1], matrix.indptr[1:])
    ]


def top_hits(scores: np.ndarray, rows: np.ndarray | None, k: int) -> Hits:
    """The ``k`` best ``(row, score)`` pairs, best first, ties by row."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(len(scores))
    ids = part if rows is None else rows[part]
    order = np.lexsort((ids, -scores[part]))[:k]
    return [(int(ids[i]), float(scores[part][i])) for i in order]


def write_collection(
    docs: sp.csr_matrix,
    words: Sequence[str],
    folder: Path,
    files: int,
    ids: Sequence[int] | None = None,
) -> None:
    """The rows of ``docs`` as Anserini JsonVectorCollection lines in ``files`` files; a
    row's id is its number, or its entry in ``ids``."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = [(folder / f"part{i}.jsonl").open("w") for i in range(files)]
    for row in range(docs.shape[0]):
        a, b = docs.indptr[row], docs.indptr[row + 1]
        vector = dict(zip([words[i] for i in docs.indices[a:b]], docs.data[a:b].tolist()))
        doc_id = str(row if ids is None else ids[row])
        outputs[row % files].write(
            json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n"
        )
    for output in outputs:
        output.close()


class Engine:
    """Build once, open in a fresh process, search groups of queries."""

    name: ClassVar[str]
    exact: ClassVar[bool] = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float | None:
        """Write the artifact; returns the build seconds (``None`` when there is no build)."""
        raise NotImplementedError

    def open(self, words: Sequence[str]) -> None:
        """Load the artifact for searching."""
        raise NotImplementedError

    def search_group(self, group: Sequence[Any], k: int, threads: int) -> list[Hits]:
        """Answer ``group`` (``threads`` queries at most) in parallel."""
        raise NotImplementedError

    def query(self, query: Query) -> Any:
        """This engine's form of a sparse query (the dense engine replaces it)."""
        return query

    def disk_bytes(self) -> int:
        return folder_bytes(self.folder)

    def close(self) -> None:
        """Release what :meth:`open` holds."""


class ThreadedEngine(Engine):
    """Parallel groups from Python threads (for engines whose search releases the GIL)."""

    _pool: ThreadPoolExecutor | None = None

    def search_one(self, query: Any, k: int) -> Hits:
        raise NotImplementedError

    def search_group(self, group: Sequence[Any], k: int, threads: int) -> list[Hits]:
        if threads == 1:
            return [self.search_one(q, k) for q in group]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(threads)
        return list(self._pool.map(lambda q: self.search_one(q, k), group))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


class ScipyEngine(ThreadedEngine):
    """Exact: ``query (1 x vocab) @ docs.T (vocab x n)`` in CSR, which reads only the rows
    (posting lists) of the query's words; then a partial sort for the top k."""

    name = "scipy"

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float:
        began = time.perf_counter()
        transposed = sp.csr_matrix(docs.T)  # (vocab, n): one row per word = its postings
        seconds = time.perf_counter() - began
        self.folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(self.folder / "postings.npz", transposed, compressed=False)
        return seconds

    def open(self, words: Sequence[str]) -> None:
        self.postings = sp.load_npz(self.folder / "postings.npz").tocsr()
        self.vocab = self.postings.shape[0]

    def search_one(self, query: Query, k: int) -> Hits:
        q = sp.csr_matrix((query[1], query[0], [0, len(query[0])]), shape=(1, self.vocab))
        scores = (q @ self.postings).tocsr()
        return top_hits(scores.data.astype(np.float64), scores.indices, k)


class DenseEngine(ThreadedEngine):
    """Exact dense search: L2-normalised float32 vectors of the dense baseline's width
    (random: speed does not depend on the values), one matmul per query."""

    name = "dense"
    exact = True

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        with open(self.folder / "vectors.f32", "wb") as f:
            for start in range(0, docs.shape[0], 100_000):
                n = min(100_000, docs.shape[0] - start)
                block = rng.standard_normal((n, DENSE_DIM), dtype=np.float32)
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                f.write(block.tobytes())
        return None  # nothing to build: the vectors are the index

    def open(self, words: Sequence[str]) -> None:
        raw = np.fromfile(self.folder / "vectors.f32", dtype=np.float32)
        self.vectors = raw.reshape(-1, DENSE_DIM)
        self._rng = np.random.default_rng(1)

    def query(self, query: Query) -> Any:
        vector = self._rng.standard_normal(DENSE_DIM, dtype=np.float32)
        return vector / np.linalg.norm(vector)

    def search_one(self, query: np.ndarray, k: int) -> Hits:
        return top_hits(self.vectors @ query, None, k)


class LuceneEngine(Engine):
    """This product: an Anserini impact index (``-impact -pretokenized``) searched with
    ``{word: impact}`` queries through :class:`indexer.ImpactSearcher`; a group of two
    runs as one ``batch_search`` on two Java threads (pyjnius is not thread-safe)."""

    name = "lucene"

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float:
        from indexer.lucene import build_index

        collection = self.folder / "collection"
        began = time.perf_counter()
        write_collection(docs, words, collection, threads)
        self.json_s = time.perf_counter() - began
        began = time.perf_counter()
        build_index(collection, self.folder / "index", threads)
        seconds = time.perf_counter() - began
        shutil.rmtree(collection)
        return seconds

    def disk_bytes(self) -> int:
        return folder_bytes(self.folder / "index")

    def open(self, words: Sequence[str]) -> None:
        from indexer.lucene import ImpactSearcher

        self.words = words
        self.searcher = ImpactSearcher(self.folder / "index")

    def query(self, query: Query) -> Any:
        return {self.words[i]: int(v) for i, v in zip(*query)}

    def search_group(self, group: Sequence[Any], k: int, threads: int) -> list[Hits]:
        if threads == 1:
            found = [self.searcher.search(q, k) for q in group]
        else:
            found = self.searcher.batch_search(list(group), k, threads)
        return [[(int(doc), score) for doc, score in hits] for hits in found]

    def close(self) -> None:
        self.searcher.close()


class LuceneIndexReader(LuceneEngine):
    """An engine that searches the ``lucene`` engine's index (built by it, or here when it
    is missing) one query at a time with its own :meth:`options` of
    ``ImpactSearcher.search``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder.parent / LuceneEngine.name)

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float:
        if (self.folder / "index").is_dir():
            return 0.0
        return super().build(docs, words, threads)

    def options(self) -> dict[str, Any]:
        raise NotImplementedError

    def search_group(self, group: Sequence[Any], k: int, threads: int) -> list[Hits]:
        found = [self.searcher.search(q, k, **self.options()) for q in group]
        return [[(int(doc), score) for doc, score in hits] for hits in found]


class LuceneExhaustiveEngine(LuceneIndexReader):
    """Every matching document scored: what dynamic pruning saves."""

    name = "lucene-exhaustive"

    def options(self) -> dict[str, Any]:
        return {"prune": False}


class LuceneTwoPhaseEngine(LuceneIndexReader):
    """Two-phase search with :attr:`plan` (``bench.search --two-phase``)."""

    name = "lucene-two-phase"

    def __init__(self, folder: Path) -> None:
        from indexer.lucene import TwoPhase

        super().__init__(folder)
        self.plan = TwoPhase()

    def options(self) -> dict[str, Any]:
        return {"plan": self.plan}


class SeismicEngine(Engine):
    """Seismic (``pyseismic-lsr``): clustered, summarised posting lists, approximate;
    its defaults (``n_postings`` 3500, ``summary_energy`` 0.4), every query word
    (``query_cut`` = query length) and ``heap_factor`` 0.9."""

    name = "seismic"
    exact = False
    heap_factor = 0.9

    def build(self, docs: sp.csr_matrix, words: Sequence[str], threads: int = 2) -> float:
        import seismic

        self.folder.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        dataset = seismic.SeismicDataset()
        for start in range(0, docs.shape[0], 100_000):
            part = docs[start : start + 100_000]
            dataset.add_documents_by_id(
                [str(start + i) for i in range(part.shape[0])],
                part.indices.astype(np.int64),
                part.data.astype(np.float32),
                part.indptr.astype(np.int64),
            )
        index = seismic.SeismicIndex.build_from_dataset(dataset, num_threads=threads)
        seconds = time.perf_counter() - began
        index.save(str(self.folder / "seismic"))
        return seconds

    def open(self, words: Sequence[str]) -> None:
        import seismic

        self.index = seismic.SeismicIndex.load(str(self.folder / "seismic.index.seismic"))
        self._string = seismic.get_seismic_string()

    def query(self, query: Query) -> Any:
        words = np.array([str(i) for i in query[0]], dtype=self._string)
        return words, query[1].astype(np.float32)

    def search_group(self, group: Sequence[Any], k: int, threads: int) -> list[Hits]:
        cut = max(len(q[0]) for q in group)
        if threads == 1:
            found = [
                self.index.search("q", q[0], q[1], k, query_cut=cut, heap_factor=self.heap_factor)
                for q in group
            ]
        else:
            found = self.index.batch_search(
                np.array([str(i) for i in range(len(group))], dtype=self._string),
                [q[0] for q in group],
                [q[1] for q in group],
                k,
                query_cut=cut,
                heap_factor=self.heap_factor,
                num_threads=threads,
            )
        return [[(int(doc), float(score)) for _, score, doc in hits] for hits in found]


ENGINES: dict[str, type[Engine]] = {
    e.name: e
    for e in (
        LuceneEngine,
        LuceneExhaustiveEngine,
        LuceneTwoPhaseEngine,
        ScipyEngine,
        DenseEngine,
        SeismicEngine,
    )
}
