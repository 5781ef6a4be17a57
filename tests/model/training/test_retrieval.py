import torch

from model.training.retrieval import dense_report, first_correct_rank, lexical_report, recall_at


def test_first_correct_rank_counts_ties_against_the_query() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.0, 0.0, 0.0], [0.2, 0.7, 0.7]])
    correct = torch.tensor([[False, True, False], [True, False, False], [False, False, True]])
    assert first_correct_rank(sim, correct).tolist() == [1, 2, 1]
    assert recall_at(torch.tensor([0, 1, 5, 20])) == {1: 25.0, 5: 50.0, 10: 75.0}


def test_lexical_report_on_perfectly_matching_vectors() -> None:
    # 3 images, 2 captions each; each image and its captions share one private word
    images = torch.eye(3)
    captions = torch.eye(3).repeat_interleave(2, dim=0)
    report = lexical_report(images, captions, doc_k=2, query_k=2, scale=100.0)
    assert report.i2t == {1: 100.0, 5: 100.0, 10: 100.0}
    assert report.t2i[1] == 100.0
    assert report.image_words == 1 and report.caption_words == 1


def test_vectors_that_share_nothing_score_no_hit() -> None:
    images = torch.zeros(4, 10)
    images[:, 0] = 1.0  # every image says the same word
    captions = torch.zeros(4, 10)
    captions[:, 1] = 1.0
    report = lexical_report(images, captions, doc_k=5, query_k=5, scale=10.0)
    assert report.i2t[1] == 0.0 and report.t2i[1] == 0.0


def test_dense_report_uses_cosine() -> None:
    vectors = torch.randn(5, 8)
    report = dense_report(vectors * 3, vectors)  # same directions, other norms
    assert report.i2t[1] == 100.0 and report.t2i[1] == 100.0
