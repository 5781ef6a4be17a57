import pytest
import torch

from model.sparse import (
    activate,
    dequantize,
    quantize,
    sparsify,
    to_term_dict,
    top_k,
    top_words,
)


def test_activate_is_log1p_relu() -> None:
    x = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    assert torch.allclose(activate(x), torch.tensor([0.0, 0.0, 0.6931472, 1.3862944]))


def test_top_k_keeps_the_largest_per_row() -> None:
    w = torch.tensor([[0.1, 0.5, 0.3, 0.0], [0.9, 0.2, 0.4, 0.8]])
    kept = top_k(w, 2)
    assert torch.equal(kept, torch.tensor([[0.0, 0.5, 0.3, 0.0], [0.9, 0.0, 0.0, 0.8]]))
    assert torch.equal(top_k(w, 10), w)


def test_quantize_round_trip_and_rejects_negative() -> None:
    w = torch.rand(4, 50)
    impacts = quantize(w, 256.0)
    assert impacts.dtype == torch.int64
    assert (dequantize(impacts, 256.0) - w).abs().max() <= 0.5 / 256 + 1e-7
    assert torch.equal(quantize(torch.tensor([0.001]), 256.0), torch.tensor([0]))  # rounds to off
    with pytest.raises(ValueError, match="non-negative"):
        quantize(torch.tensor([-0.1]), 10.0)


def test_term_dict_and_top_words_order_by_weight() -> None:
    words = ("cat", "dog", "sun", "sea")
    assert list(to_term_dict(torch.tensor([3, 0, 7, 3]), words).items()) == [
        ("sun", 7),
        ("cat", 3),
        ("sea", 3),
    ]
    assert top_words(torch.tensor([0.2, 0.0, 0.9, 0.0]), words, 3) == [
        ("sun", pytest.approx(0.9)),
        ("cat", pytest.approx(0.2)),
    ]


def test_sparsify_keeps_the_top_words_as_a_unit_vector() -> None:
    weights = torch.tensor([[0.1, 0.8, 0.0, 0.6], [0.5, 0.5, 0.5, 0.5]])
    kept = sparsify(weights, 2)
    assert torch.allclose(kept[0], torch.tensor([0.0, 0.8, 0.0, 0.6]))  # already unit
    assert torch.allclose(kept.norm(dim=1), torch.ones(2))
    assert int((kept[1] > 0).sum()) == 2
    expected = torch.tensor([0.0, 0.8, 0.0, 0.6])
    assert torch.equal(sparsify(weights, 2, renormalize=False)[0], expected)


def test_sparsify_keeps_the_marked_words_whatever_their_rank() -> None:
    weights = torch.tensor([[0.9, 0.3, 0.05, 0.0]])
    keep = torch.tensor([[False, False, True, True]])
    kept = sparsify(weights, 1, renormalize=False, keep=keep)
    assert torch.equal(kept[0], torch.tensor([0.9, 0.0, 0.05, 0.0]))  # a zero stays out


def test_sparsify_keeps_the_marked_words_first_when_a_row_has_more_than_the_limit() -> None:
    weights = torch.tensor([[0.9, 0.8, 0.05, 0.04, 0.0], [0.9, 0.8, 0.05, 0.0, 0.0]])
    keep = torch.tensor([[False, False, True, True, False], [False, False, True, False, False]])
    kept = sparsify(weights, 2, renormalize=False, keep=keep, limit=3)
    assert torch.equal(kept[0], torch.tensor([0.9, 0.0, 0.05, 0.04, 0.0]))  # 0.8 gives way
    assert torch.equal(kept[1], torch.tensor([0.9, 0.8, 0.05, 0.0, 0.0]))  # under the limit


def test_sparsify_drops_words_under_the_minimum_weight_and_keeps_the_spread() -> None:
    weights = torch.tensor([[0.9, 0.3, 0.05, 0.3]])
    kept = sparsify(weights, 4, min_weight=0.1, renormalize=False)
    assert torch.equal(kept[0], torch.tensor([0.9, 0.3, 0.0, 0.3]))  # a per-vector length
    assert torch.equal(
        sparsify(weights, 1, min_weight=0.1, renormalize=False)[0, 0], torch.tensor(0.9)
    )
