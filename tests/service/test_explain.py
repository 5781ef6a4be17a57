"""The explanation math: shared words, contributions, and their exact sum."""

from __future__ import annotations

import random

from service.explain import dot, word_matches


def test_matches_are_the_shared_words_largest_contribution_first() -> None:
    query = {"dog": 300, "beach": 200, "ball": 10}
    document = {"beach": 250, "dog": 100, "sand": 400, "ball": 1}
    matches = word_matches(query, document)
    assert [(m.word, m.query_weight, m.doc_weight, m.contribution) for m in matches] == [
        ("beach", 200, 250, 50_000),
        ("dog", 300, 100, 30_000),
        ("ball", 10, 1, 10),
    ]
    assert sum(m.contribution for m in matches) == dot(query, document) == 80_010


def test_ties_are_ordered_by_word_and_disjoint_vectors_match_nothing() -> None:
    matches = word_matches({"b": 2, "a": 1}, {"a": 2, "b": 1})
    assert [m.word for m in matches] == ["a", "b"]
    assert word_matches({"dog": 5}, {"cat": 5}) == []
    assert dot({"dog": 5}, {"cat": 5}) == 0


def test_contributions_always_add_up_to_the_dot_product() -> None:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(50)]
    for _ in range(200):
        query = {w: rng.randint(1, 600) for w in rng.sample(words, 8)}
        document = {w: rng.randint(1, 600) for w in rng.sample(words, 20)}
        assert sum(m.contribution for m in word_matches(query, document)) == dot(query, document)
