"""Retrieval metrics over the sparse vectors the index actually stores.

Lexical recall is computed from index vectors (``LexVLA.index_vectors``: what Lucene
holds and what a search sends), so evaluation measures exactly what search returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def recall_at(ranks: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """Percent of queries whose first correct item ranks below each K (0-based ranks)."""
    return {k: 100.0 * float((ranks < k).float().mean()) for k in ks}


def first_correct_rank(similarity: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Rank of the best-scored correct item per query row.

    ``similarity`` (queries, items); ``correct`` bool of the same shape. Ties count
    against the query: a wrong item scored equal to the best correct one ranks first,
    so a query that matches nothing scores no hit.
    """
    best_correct = similarity.masked_fill(~correct, float("-inf")).amax(dim=1, keepdim=True)
    return ((similarity >= best_correct) & ~correct).sum(dim=1)


@dataclass
class RetrievalReport:
    """Image->text and text->image Recall@1/5/10 and mean active words of image and
    caption documents and of text queries."""

    i2t: dict[int, float]
    t2i: dict[int, float]
    image_words: float
    caption_words: float
    query_words: float

    def row(self) -> str:
        def fmt(r: dict[int, float]) -> str:
            return " / ".join(f"{r[k]:.1f}" for k in (1, 5, 10))

        return (
            f"i2t {fmt(self.i2t)} | t2i {fmt(self.t2i)} | words img {self.image_words:.0f} "
            f"txt {self.caption_words:.0f} query {self.query_words:.1f}"
        )


def evaluate_similarities(i2t_sim: torch.Tensor, t2i_sim: torch.Tensor) -> tuple[dict, dict]:
    """Recall for ``i2t_sim`` (images, captions) and ``t2i_sim`` (captions, images).

    Caption ``c`` belongs to image ``c // captions_per_image``.
    """
    n_images, n_captions = i2t_sim.shape
    per = n_captions // n_images
    owner = torch.arange(n_captions) // per
    i2t_correct = owner[None, :] == torch.arange(n_images)[:, None]
    return (
        recall_at(first_correct_rank(i2t_sim.float(), i2t_correct)),
        recall_at(first_correct_rank(t2i_sim.float(), i2t_correct.T)),
    )


def lexical_report(
    image_docs: torch.Tensor,
    image_queries: torch.Tensor,
    caption_docs: torch.Tensor,
    caption_queries: torch.Tensor,
) -> RetrievalReport:
    """Retrieval through index vectors (integer impacts): image queries against caption
    documents (i2t), caption queries against image documents (t2i)."""
    i2t, t2i = evaluate_similarities(
        image_queries.double() @ caption_docs.double().T,
        caption_queries.double() @ image_docs.double().T,
    )
    return RetrievalReport(
        i2t,
        t2i,
        float((image_docs > 0).sum(1).float().mean()),
        float((caption_docs > 0).sum(1).float().mean()),
        float((caption_queries > 0).sum(1).float().mean()),
    )


def dense_report(image_vectors: torch.Tensor, caption_vectors: torch.Tensor) -> RetrievalReport:
    """Retrieval by cosine similarity of dense vectors."""
    img = torch.nn.functional.normalize(image_vectors.float(), dim=1)
    cap = torch.nn.functional.normalize(caption_vectors.float(), dim=1)
    i2t, t2i = evaluate_similarities(img @ cap.T, cap @ img.T)
    dim = float(img.shape[1])
    return RetrievalReport(i2t, t2i, dim, dim, dim)
