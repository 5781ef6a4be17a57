"""Searching the tiny index: every kind of query, exact explanations, query editing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer import MetadataStore, decode_image, open_published
from model import LexVLA
from service import create_app
from service.explain import dot

from .conftest import index_settings


def stored_vectors(index: Path, target: str) -> dict[str, dict[str, int]]:
    """Every stored document vector of the published version (the brute-force reference)."""
    with MetadataStore(open_published(index).metadata) as store:
        images = store.images(store.image_ids())
        if target == "images":
            return {row.id: row.terms for row in images}
        return {c.id: c.terms for row in images for c in store.captions_of(row.id)}


def query_vector(answer: dict[str, Any]) -> dict[str, int]:
    return {w["word"]: w["weight"] for w in answer["query"]["words"]}


def check_exact(answer: dict[str, Any], index: Path) -> None:
    """Hits are the brute-force top k of the query vector the answer reports, and each
    hit's word contributions add up exactly to its score."""
    query = query_vector(answer)
    vectors = stored_vectors(index, answer["target"])
    expected = sorted((dot(query, terms) for terms in vectors.values()), reverse=True)
    expected = [s for s in expected if s > 0][: answer["k"]]
    assert [h["score"] for h in answer["hits"]] == expected
    for rank, hit in enumerate(answer["hits"], start=1):
        assert hit["rank"] == rank
        assert hit["score"] == dot(query, vectors[hit["id"]])
        matches = hit["matches"]
        assert sum(m["contribution"] for m in matches) == hit["score"]
        assert [m["contribution"] for m in matches] == sorted(
            (m["contribution"] for m in matches), reverse=True
        )
        for m in matches:
            assert m["query_weight"] == query[m["word"]]
            assert m["doc_weight"] == vectors[hit["id"]][m["word"]]
            assert m["contribution"] == m["query_weight"] * m["doc_weight"]


def test_text_to_images(client: TestClient, tiny_index: Path, tiny_lite0: LexVLA) -> None:
    answer = client.get("/search", params={"q": "a dog runs on the beach", "k": 5}).json()
    assert answer["target"] == "images" and answer["k"] == 5
    assert 0 < len(answer["hits"]) <= 5
    check_exact(answer, tiny_index)
    weights = tiny_lite0.encode_texts(["a dog runs on the beach"]).word_weights
    assert query_vector(answer) == tiny_lite0.term_dicts(weights, "query")[0]
    index = tiny_lite0.vocab.index
    order = [(-w["weight"], -float(weights[0, index[w["word"]]])) for w in answer["query"]["words"]]
    assert order == sorted(order), "highest impact first, equal impacts by float weight"
    hit = answer["hits"][0]
    assert hit["metadata"]["image_url"] == f"/images/{hit['id']}"
    assert hit["metadata"]["thumbnail_url"] == f"/thumbnails/{hit['id']}"
    assert answer["index_version"] == open_published(tiny_index).version


def test_text_to_captions(client: TestClient, tiny_index: Path) -> None:
    answer = client.get(
        "/search", params={"q": "a cat sleeps on the sofa", "target": "captions", "k": 4}
    ).json()
    assert answer["target"] == "captions"
    check_exact(answer, tiny_index)
    for hit in answer["hits"]:
        image_id, position = hit["id"].rsplit("#", 1)
        assert hit["image_id"] == image_id
        assert hit["caption"] == hit["metadata"]["captions"][int(position)]


@pytest.mark.parametrize("target", ["images", "captions"])
def test_image_queries(
    client: TestClient, tiny_index: Path, photos: Path, tiny_lite0: LexVLA, target: str
) -> None:
    path = photos / "images" / "chelsea.jpg"
    response = client.post(
        "/search",
        files={"image": ("chelsea.jpg", path.read_bytes(), "image/jpeg")},
        data={"k": "3", "target": target},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["query"]["kind"] == "image" and answer["query"]["text"] is None
    check_exact(answer, tiny_index)
    picture = decode_image(path, int(tiny_lite0.image.image_size)).image
    weights = tiny_lite0.encode_images([picture]).word_weights
    assert query_vector(answer) == tiny_lite0.term_dicts(weights, "query")[0]


def test_post_json_answers_like_get(client: TestClient) -> None:
    params = {"q": "two children play in the snow", "k": 3, "target": "captions"}
    got = client.get("/search", params=params).json()
    posted = client.post("/search", json=params).json()
    for answer in (got, posted):
        del answer["took_ms"]
    assert got == posted


def test_explain_false_leaves_matches_out(client: TestClient) -> None:
    answer = client.get("/search", params={"q": "a red bike", "explain": "false"}).json()
    assert answer["hits"] and all(hit["matches"] is None for hit in answer["hits"])


def test_default_k_and_k_larger_than_the_index(client: TestClient, tiny_index: Path) -> None:
    assert client.get("/search", params={"q": "a red bike"}).json()["k"] == 10
    answer = client.get("/search", params={"q": "a red bike", "k": 1000}).json()
    assert len(answer["hits"]) <= len(stored_vectors(tiny_index, "images"))
    check_exact(answer, tiny_index)


def test_dropping_a_word_removes_it_from_the_query(client: TestClient, tiny_index: Path) -> None:
    plain = client.get("/search", params={"q": "a dog on the beach"}).json()
    top = plain["query"]["words"][0]["word"]
    edited = client.get("/search", params={"q": f"a dog on the beach -{top}"}).json()
    assert top not in query_vector(edited)
    assert edited["query"]["drop"] == [top] and edited["query"]["text"] == "a dog on the beach"
    by_field = client.get("/search", params={"q": "a dog on the beach", "drop": top}).json()
    assert query_vector(by_field) == query_vector(edited)
    check_exact(edited, tiny_index)


def test_boosting_a_word_makes_it_the_strongest(client: TestClient, tiny_index: Path) -> None:
    plain = client.get("/search", params={"q": "a dog on the beach"}).json()
    words = query_vector(plain)
    boosted = client.get("/search", params={"q": "a dog on the beach", "boost": "wave"}).json()
    query = boosted["query"]
    first, *others = query["words"]
    assert (first["word"], first["boosted"]) == ("wave", True)
    # twice the query's highest weight (the kept words are renormalised together)
    assert abs(first["weight"] - 2 * max(w["weight"] for w in others)) <= 2
    assert "wave" not in words
    assert query["boost"] == ["wave"]
    check_exact(boosted, tiny_index)


def test_a_query_of_boosts_alone_is_a_lexical_query(client: TestClient, tiny_index: Path) -> None:
    answer = client.get("/search", params={"q": "+cat", "target": "captions"}).json()
    assert answer["query"]["text"] == ""
    assert query_vector(answer) == {"cat": 256}  # a unit vector at quant_scale 256
    check_exact(answer, tiny_index)
    assert all(hit["matches"][0]["word"] == "cat" for hit in answer["hits"])


def test_edits_apply_to_image_queries(client: TestClient, photos: Path) -> None:
    data = (photos / "images" / "coffee.jpg").read_bytes()
    files = {"image": ("coffee.jpg", data, "image/jpeg")}
    plain = client.post("/search", files=files).json()
    top = plain["query"]["words"][0]["word"]
    edited = client.post("/search", files=files, data={"drop": [top], "boost": ["sofa"]}).json()
    words = query_vector(edited)
    assert top not in words and words["sofa"] == max(words.values())
    assert edited["query"]["drop"] == [top] and edited["query"]["boost"] == ["sofa"]


def test_unknown_edit_words_are_rejected_by_name(client: TestClient) -> None:
    response = client.get("/search", params={"q": "a dog +zebra -the"})
    assert response.status_code == 422
    assert "zebra" in response.json()["detail"] and "the" in response.json()["detail"]


def test_a_query_of_drops_alone_is_rejected(client: TestClient) -> None:
    response = client.get("/search", params={"q": "-dog -cat"})
    assert response.status_code == 422
    assert "no words to search for" in response.json()["detail"]


@pytest.mark.parametrize("q", ["\x00", "\x00\x01\x02\x1b", "\x7f\x00 -dog", "?!. ,;"])
def test_a_query_with_nothing_searchable_left_is_rejected(client: TestClient, q: str) -> None:
    """Control characters, NUL and punctuation alone are no query (not some unrelated words)."""
    response = client.get("/search", params={"q": q})
    assert response.status_code == 422
    assert "no words to search for" in response.json()["detail"]


def test_control_characters_inside_a_query_are_spaces(client: TestClient) -> None:
    spaced = client.get("/search", params={"q": "a dog\x00on\x1bthe beach"}).json()
    assert spaced["query"]["text"] == "a dog on the beach"
    plain = client.get("/search", params={"q": "a dog on the beach"}).json()
    assert query_vector(spaced) == query_vector(plain)


def test_a_two_phase_service_scores_its_candidates_exactly(
    client: TestClient, tiny_index: Path
) -> None:
    q = "a dog runs on the beach"
    exact = client.get("/search", params={"q": q, "k": 5}).json()
    settings = index_settings(tiny_index, two_phase_lead=1, two_phase_candidates=5)
    with TestClient(create_app(settings)) as two_phase:
        answer = two_phase.get("/search", params={"q": q, "k": 5}).json()
    query = query_vector(answer)
    assert query == query_vector(exact)
    lead = min(query, key=lambda word: (-query[word], word))  # the one word finding candidates
    vectors = stored_vectors(tiny_index, "images")
    assert answer["hits"]
    for hit in answer["hits"]:
        assert lead in vectors[hit["id"]]
        assert hit["score"] == dot(query, vectors[hit["id"]])
        assert sum(m["contribution"] for m in hit["matches"]) == hit["score"]
