"""``python -m bench.clauses``: query length against Lucene's clause limit.

Every query word is one clause of the Lucene query, and Lucene refuses a query with
more clauses than ``IndexSearcher.getMaxClauseCount()`` (1,024 by default). This
script counts the words of real encoded queries at the product's query top-k (dev
captions as text queries, dev photos as image queries, which also use the query
top-k), and searches a real index with raw Anserini queries of growing length under
the default limit to find where Lucene starts refusing. Writes ``clauses.json`` and
``clauses.png`` into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .common import CACHE, FLICKR8K, RESULTS, Run, save_figure, table


def raw_search(index: Path, words: tuple[str, ...], lengths: list[int]) -> list[dict[str, Any]]:
    """Search ``index`` with queries of each length under Lucene's default clause limit
    (a fresh process, nothing raised it): refused or not."""
    from indexer import ImpactSearcher, LuceneError
    from indexer.lucene import clause_limit

    rows: list[dict[str, Any]] = []
    with ImpactSearcher(index) as searcher:
        limit = clause_limit()
        for n in lengths:
            try:
                hits = len(searcher.search(dict.fromkeys(words[:n], 1), 10))
                rows.append({"terms": n, "limit": limit, "refused": False, "hits": hits})
            except LuceneError as exc:
                error = str(exc).splitlines()[0][:160]
                rows.append({"terms": n, "limit": limit, "refused": True, "error": error})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clauses", description=__doc__)
    parser.add_argument(
        "--index",
        type=Path,
        default=CACHE / "service-index",
        help="an index built by python -m indexer build (bench.serve's)",
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024, 1025, 2048])
    parser.add_argument("--image-queries", type=int, default=32, help="dev photos to encode")
    parser.add_argument("--data", type=Path, default=FLICKR8K)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from indexer import ImpactSearcher, open_published
    from model import load_encoder
    from model.image_encoder import load_image
    from model.training.data import load_split

    from .corpus import real_queries

    run = Run("clauses", ["python -m bench.clauses", *(argv if argv is not None else sys.argv[1:])])
    model = load_encoder()
    text = np.diff(real_queries().indptr)
    photos = [load_image(p.image) for p in load_split(args.data, "dev")[: args.image_queries]]
    weights = model.encode_images(photos).word_weights
    image = (model.index_vectors(weights, "query") > 0).sum(dim=1).numpy()
    index = open_published(args.index).images
    rows = raw_search(index, model.vocab.words, args.lengths)
    longest = max(args.lengths)
    with ImpactSearcher(index, max_query_words=longest) as searcher:  # raised explicitly
        found = searcher.search(dict.fromkeys(model.vocab.words[:longest], 1), 10)
    sparse = model.config.sparse
    run.result |= {
        "query_top_k": sparse.query_top_k,
        "doc_top_k": sparse.doc_top_k,
        "text_query_terms": {
            "queries": len(text),
            "max": int(text.max()),
            "mean": float(text.mean()),
        },
        "image_query_terms": {
            "queries": len(image),
            "max": int(image.max()),
            "mean": float(image.mean()),
        },
        "raw_anserini": rows,
        "product_search_at_longest": {"terms": longest, "hits": len(found)},
        "max_query_top_k_under_default_limit": max(
            (r["terms"] for r in rows if not r["refused"]), default=None
        ),
    }
    run.save(args.out / "clauses.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.hist([text, image], bins=list(range(0, sparse.query_top_k + 8, 4)), label=["text", "image"])
    ax.axvline(rows[0]["limit"], color="red", linestyle="--", label="Lucene limit (1,024)")
    ax.set(
        xscale="symlog",
        xlabel="words per query",
        ylabel="queries",
        title=f"Query words at query top-k {sparse.query_top_k}",
    )
    ax.legend()
    save_figure(fig, args.out / "clauses.png")
    print(table(rows, ("terms", "limit", "refused", "hits", "error")))
    print(
        f"text queries: up to {text.max()} words, image queries: up to {image.max()} words "
        f"(query top-k {sparse.query_top_k}); the product's search at {longest} words: "
        f"{len(found)} hits"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
