import torch

from model.training.retrieval import dense_report, first_correct_rank, lexical_report, recall_at


def test_first_correct_rank_counts_ties_against_the_query() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.0, 0.0, 0.0], [0.2, 0.7, 0.7]])
    correct = torch.tensor([[False, True, False], [True, False, False], [False, False, True]])
    assert first_correct_rank(sim, correct).tolist() == [1, 2, 1]
    assert recall_at(torch.tensor([0, 1, 5, 20])) == {1: 25.0, 5: 50.0, 10: 75.0}


def test_lexical_report_on_perfectly_matching_vectors() -> None:
    # 3 images, 2 captions each; each image and its captions share one private word
    images = torch.eye(3, dtype=torch.long) * 100
    captions = torch.eye(3, dtype=torch.long).repeat_interleave(2, dim=0) * 100
    report = lexical_report(images, images, captions, captions)
    assert report.i2t == {1: 100.0, 5: 100.0, 10: 100.0}
    assert report.t2i[1] == 100.0
    assert report.image_words == 1 and report.caption_words == 1 and report.query_words == 1


def test_text_queries_may_differ_from_caption_documents() -> None:
    images = torch.eye(3, dtype=torch.long)
    captions = torch.eye(3, dtype=torch.long).repeat_interleave(2, dim=0)
    queries = captions.roll(2, dims=0)  # each caption query names the previous image's word
    report = lexical_report(images, images, captions, queries)
    assert report.i2t[1] == 100.0 and report.t2i[1] == 0.0


def test_vectors_that_share_nothing_score_no_hit() -> None:
    images = torch.zeros(4, 10, dtype=torch.long)
    images[:, 0] = 10  # every image says the same word
    captions = torch.zeros(4, 10, dtype=torch.long)
    captions[:, 1] = 10
    report = lexical_report(images, images, captions, captions)
    assert report.i2t[1] == 0.0 and report.t2i[1] == 0.0


def test_dense_report_uses_cosine() -> None:
    vectors = torch.randn(5, 8)
    report = dense_report(vectors * 3, vectors)  # same directions, other norms
    assert report.i2t[1] == 100.0 and report.t2i[1] == 100.0
