"""``python -m bench.shards``: search over 1, 2 and 4 search shards on Ray Serve against
one Lucene index, on this machine.

The collection and queries are :mod:`bench.search`'s: the default model's impacts of real
Flickr8k images, synthetic documents shaped like them beyond (:mod:`bench.corpus`), and
real dev captions encoded at the query top-k. For each shard count the documents are
split by the product's hash of their id (:func:`indexer.shard_of`) into a published
version of that many search shards, laid out as the indexer lays one out (per shard: an
Anserini impact index of images, an empty one of captions, a metadata store with the
stored vectors), written straight from the vectors: the encoding and shard store of a
real build are skipped. Then the product's code answers the queries:

- ``one index``: :class:`service.index_handle.IndexHandle` in this process (what the
  single-process service's worker does: Lucene, then the hits' rows);
- ``ray, N shards``: :class:`service.shards.ShardedIndex` fanning out to N
  :class:`service.shard_searcher.ShardSearcher` deployments on a local Ray Serve (one
  replica each, its own process and JVM), merging their top k.

Per engine and client count: p50 / p99 latency, QPS (clients querying at once, each
query once after an untimed warm-up pass), and recall@k of the hits against exact
search (scipy, ties counted as hits). Writes ``shards.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .common import CACHE, RESULTS, Run, latency_summary, table
from .corpus import collection, load_csr, load_model, real_documents, real_queries, save_csr
from .engines import Hits, queries_of, top_hits, write_collection
from .search import recall_at_k, true_scores

log = logging.getLogger("bench.shards")

COLUMNS = ("engine", "docs", "clients", "p50_ms", "p99_ms", "qps", "recall_at_k", "build_s")
Search = Callable[[dict[str, int]], Hits]


def write_version(root: Path, docs: sp.csr_matrix, words: Sequence[str], shards: int) -> float:
    """A published version of ``docs`` in ``shards`` search shards at ``root`` (the ids are
    the row numbers); returns the seconds Anserini took to index them."""
    from indexer import ModelInfo, shard_of
    from indexer.layout import CAPTIONS, CURRENT, IMAGES, MANIFEST, METADATA, VERSIONS
    from indexer.lucene import build_index
    from indexer.manifest import IndexManifest
    from indexer.publish import utc_now
    from indexer.records import ImageRecord
    from indexer.search_shards import shard_folder
    from indexer.store import MetadataWriter

    version = root / VERSIONS / "v000001"
    owner = np.array([shard_of(str(row), shards) for row in range(docs.shape[0])])
    lucene_s = 0.0
    for number in range(shards):
        folder = version if shards == 1 else version / shard_folder(number)
        rows = np.flatnonzero(owner == number)
        part = docs[rows]
        input_folder, empty = folder / ".input", folder / ".empty"
        write_collection(part, words, input_folder, 2, ids=rows.tolist())
        empty.mkdir()
        began = time.perf_counter()
        build_index(input_folder, folder / IMAGES, threads=2)
        lucene_s += time.perf_counter() - began
        build_index(empty, folder / CAPTIONS, threads=1)
        shutil.rmtree(input_folder)
        empty.rmdir()
        writer = MetadataWriter(folder / METADATA)
        for row, doc in zip(rows, range(part.shape[0])):
            a, b = part.indptr[doc], part.indptr[doc + 1]
            terms = dict(zip([words[i] for i in part.indices[a:b]], part.data[a:b].tolist()))
            record = ImageRecord(id=str(row), path=f"synthetic/{row}", indexed=True)
            writer.put_image(record, "bench", terms)
        writer.close()
    IndexManifest(
        version=version.name,
        created=utc_now(),
        model=ModelInfo.of(load_model(), "default"),
        images=docs.shape[0],
        captions=0,
        batches=(),
        build={"mode": "full", "lucene_s": round(lucene_s, 2)},
        shards=shards,
    ).save(version / MANIFEST)
    os.symlink(Path(VERSIONS) / version.name, root / CURRENT)
    return lucene_s


def exact_top(docs: sp.csr_matrix, queries: sp.csr_matrix, k: int) -> list[list[float]]:
    """Each query's exact top ``k`` scores (scipy over the postings), best first."""
    postings = sp.csr_matrix(docs.T)
    exact = []
    for q in range(queries.shape[0]):
        scores = (queries[q] @ postings).tocsr()
        exact.append([s for _, s in top_hits(scores.data.astype(np.float64), scores.indices, k)])
    return exact


def measure(search: Search, queries: list[dict[str, int]], clients: int) -> dict[str, Any]:
    """Latency of every query, ``clients`` of them in flight at once, after a warm-up pass."""
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(search, queries))

        def timed(query: dict[str, int]) -> tuple[float, Hits]:
            began = time.perf_counter()
            hits = search(query)
            return time.perf_counter() - began, hits

        began = time.perf_counter()
        done = list(pool.map(timed, queries))
        wall = time.perf_counter() - began
    return {"latencies_s": [s for s, _ in done], "wall_s": wall, "hits": [h for _, h in done]}


def as_hits(ranked: Sequence[Any]) -> Hits:
    return [(int(doc.doc_id), float(doc.score)) for doc in ranked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.shards",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--queries", type=int, default=200, help="dev captions as queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--real-docs", type=int, default=1000, help="real documents at most")
    parser.add_argument("--work", type=Path, default=CACHE / "shards", help="scratch folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run = Run("shards", ["python -m bench.shards", *(argv if argv is not None else sys.argv[1:])])
    from threadpoolctl import threadpool_limits

    from indexer import open_published
    from indexer.lucene import set_heap
    from service.index_handle import ServedIndex, open_index
    from service.metrics import Metrics
    from service.query import Target

    threadpool_limits(1)
    set_heap(3)  # this process's JVM: the one-index baseline
    real = real_documents(limit=args.real_docs, encode=True)
    query_matrix = real_queries(n=args.queries)
    words = load_model().vocab.words
    queries = [{words[i]: int(v) for i, v in zip(*q)} for q in queries_of(query_matrix)]
    folder = args.work / f"n{args.docs}"
    if not (folder / "docs" / "shape.json").is_file():
        save_csr(collection(real, args.docs, seed=args.docs), folder / "docs")
    docs = load_csr(folder / "docs")
    builds: dict[int, float] = {}
    for shards in sorted(set(args.shards) | {1}):
        root = folder / f"shards{shards}"
        done = root / "build.json"
        if not done.is_file():
            shutil.rmtree(root, ignore_errors=True)
            log.info("building %d documents in %d search shards", args.docs, shards)
            done.parent.mkdir(parents=True)
            done.write_text(json.dumps({"lucene_s": write_version(root, docs, words, shards)}))
        builds[shards] = json.loads(done.read_text())["lucene_s"]
    exact = exact_top(docs, query_matrix, args.k)
    metrics = Metrics()
    rows: list[dict[str, Any]] = []

    def record(engine: str, shards: int, index: ServedIndex) -> None:
        def search(query: dict[str, int]) -> Hits:
            return as_hits(index.search(Target.images, query, args.k, metrics))

        for clients in args.clients:
            measured = measure(search, queries, clients)
            found = true_scores(docs, query_matrix, measured["hits"])
            row = {
                "engine": engine,
                "docs": args.docs,
                "shards": shards,
                "clients": clients,
                **latency_summary(measured["latencies_s"], measured["wall_s"]),
                "recall_at_k": round(recall_at_k(found, exact, args.k), 4),
                "build_s": round(builds[shards], 1),
                "load_average": list(os.getloadavg()),
            }
            log.info("%s", row)
            rows.append(row)

    handle = open_index(folder / "shards1")
    record("one index", 1, handle)
    handle.retire()

    import ray
    from ray import serve

    from bench.server import free_port
    from service.shard_searcher import ShardSearcher
    from service.shards import ShardedIndex, shard_name

    ray.init(  # a cluster of its own, never one already running here
        address="local", num_cpus=2, object_store_memory=300 * 2**20, include_dashboard=False
    )
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    try:
        for shards in args.shards:
            root = folder / f"shards{shards}"
            handles = [
                serve.run(
                    serve.deployment(name=shard_name(n), ray_actor_options={"num_cpus": 0.5})(
                        ShardSearcher
                    ).bind(str(root), n),
                    name=f"bench-{shard_name(n)}",
                    route_prefix=None,
                )
                for n in range(shards)
            ]
            record(
                f"ray, {shards} shards", shards, ShardedIndex(open_published(root), handles, 120)
            )
            for n in range(shards):
                serve.delete(f"bench-{shard_name(n)}")
    finally:
        serve.shutdown()
        ray.shutdown()
    run.result |= {"k": args.k, "queries": len(queries), "rows": rows}
    path = run.save(args.out / "shards.json")
    print(table(rows, COLUMNS))
    loads = run.result["load_average_start"], run.result["load_average_end"]
    print(f"load average {loads[0]} -> {loads[1]} on {os.cpu_count()} CPUs; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
