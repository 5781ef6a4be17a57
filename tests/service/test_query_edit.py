"""Query editing: ``+word`` / ``-word`` parsing and what it does to the query vector."""

from __future__ import annotations

import pytest
import torch

from service.query_edit import QueryEdits, UnknownWordError, apply_edits, parse_query

VOCAB = {"beach": 0, "dog": 1, "sand": 2, "cat": 3}


@pytest.mark.parametrize(
    ("text", "rest", "boost", "drop"),
    [
        ("a dog on the beach", "a dog on the beach", (), ()),
        ("a dog on the beach -dog +Sand", "a dog on the beach", ("sand",), ("dog",)),
        ("+beach", "", ("beach",), ()),
        ("t-shirt and x+y stay text", "t-shirt and x+y stay text", (), ()),
        ("- a lone dash + too", "- a lone dash + too", (), ()),
        ("+cat +cat -dog", "", ("cat",), ("dog",)),
    ],
)
def test_parse_query(text: str, rest: str, boost: tuple[str, ...], drop: tuple[str, ...]) -> None:
    assert parse_query(text) == (rest, QueryEdits(boost, drop))


def test_boost_sets_the_factor_times_the_top_weight_and_drop_zeroes() -> None:
    weights = torch.tensor([0.1, 0.4, 0.0, 0.2])
    edited = apply_edits(weights, QueryEdits(("sand",), ("dog",)), VOCAB, 2.0)
    assert edited.tolist() == pytest.approx([0.1, 0.0, 0.8, 0.2])
    assert weights.tolist() == pytest.approx([0.1, 0.4, 0.0, 0.2]), "the input is not changed"


def test_boost_on_an_empty_query_gives_a_one_word_query() -> None:
    edited = apply_edits(torch.zeros(4), QueryEdits(("beach",)), VOCAB, 2.0)
    assert edited.tolist() == [2.0, 0.0, 0.0, 0.0]


def test_a_word_both_boosted_and_dropped_is_dropped() -> None:
    edited = apply_edits(torch.ones(4), QueryEdits(("dog",), ("dog",)), VOCAB, 2.0)
    assert edited[VOCAB["dog"]] == 0


def test_merged_edits_keep_order_without_repeats() -> None:
    merged = QueryEdits(("a", "b"), ("c",)).merged(QueryEdits(("b", "d"), ("c", "e")))
    assert merged == QueryEdits(("a", "b", "d"), ("c", "e"))


def test_unknown_words_are_named() -> None:
    with pytest.raises(UnknownWordError, match="zebra, the"):
        QueryEdits(("beach", "zebra"), ("the",)).check(VOCAB)
    QueryEdits(("beach",), ("dog",)).check(VOCAB)
