import math

import pytest
import torch

from model.training.losses import distillation, flops, info_nce, overuse


def test_info_nce_matches_hand_computation() -> None:
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # each row and column: -log(e^(1/0.5) / (e^(1/0.5) + e^0))
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert info_nce(sim, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_is_symmetric_in_its_two_directions() -> None:
    sim = torch.randn(5, 5)
    assert info_nce(sim, 0.1).item() == pytest.approx(info_nce(sim.T, 0.1).item(), rel=1e-6)


def test_flops_hand_value() -> None:
    s = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # word means 2, 0, 1
    assert flops(s).item() == pytest.approx(2**2 + 0 + 1**2)


def test_overuse_hand_value() -> None:
    s = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # N=2, V=3, means 2, 0, 1
    # V * sum_j (mean_j / sum_k mean_k) * mean_j^2 = 3 * (2/3 * 4 + 1/3 * 1)
    assert overuse(s).item() == pytest.approx(3 * (2 / 3 * 4 + 1 / 3 * 1))
    # The same via the paper's second form: N V sum_j (sum_i s_ij / N)^3 / sum_ij s_ij
    assert overuse(s).item() == pytest.approx(2 * 3 * (2**3 + 1**3) / 6)


def test_overuse_penalises_a_shared_word_more_than_specific_words() -> None:
    shared = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    specific = torch.eye(3)  # same total activation, one distinct word per sample
    assert overuse(shared) > overuse(specific)
    assert flops(shared) > flops(specific)
    assert overuse(torch.zeros(2, 4)).item() == 0


def test_distillation_is_zero_for_equal_similarities_and_positive_otherwise() -> None:
    teacher = torch.randn(4, 4)
    assert distillation(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation(torch.randn(4, 4), teacher).item() > 0
    # hand value for one direction pair: N=2, teacher certain of the diagonal
    t = torch.tensor([[50.0, -50.0], [-50.0, 50.0]])
    s = torch.zeros(2, 2)  # student uniform: KL = log 2 per row and per column
    assert distillation(s, t).item() == pytest.approx(math.log(2), rel=1e-4)
