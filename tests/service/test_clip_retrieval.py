"""clip-retrieval's own client (``ClipClient`` from the clip-retrieval wheel) and its
back end's request bodies against a running service with two indexes."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from bench.server import ServiceProcess
from indexer import MetadataStore, open_published

from .conftest import ImageServer


def load_clip_client() -> ModuleType:
    """``clip_retrieval/clip_client.py`` as the wheel ships it. Importing the package runs
    its ``__init__``, which imports the back end (flask, faiss, open_clip: not installed,
    see requirements-nodeps.txt); the client itself needs only ``requests``."""
    package = importlib.util.find_spec("clip_retrieval")
    assert package is not None and package.submodule_search_locations, "pip install clip-retrieval"
    path = Path(package.submodule_search_locations[0]) / "clip_client.py"
    spec = importlib.util.spec_from_file_location("clip_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clip() -> ModuleType:
    return load_clip_client()


@pytest.fixture(scope="module")
def server(two_index_server: ServiceProcess) -> ServiceProcess:
    return two_index_server


def client(clip: ModuleType, server: ServiceProcess, **options: Any) -> Any:
    return clip.ClipClient(url=f"{server.url}/knn-service", indice_name="photos", **options)


def search(server: ServiceProcess, **params: Any) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/search", params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def ranking(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(item["id"], item["score"]) for item in items]


def check_results(results: list[dict[str, Any]], server: ServiceProcess, scale: float) -> None:
    """What a clip-retrieval user reads, plus each result's exact explanation."""
    assert results, "no results"
    for result in results:
        assert result["similarity"] == pytest.approx(result["score"] / scale**2)
        assert sum(m["contribution"] for m in result["matches"]) == result["score"] > 0
        assert isinstance(result["caption"], str)
        image = httpx.get(result["url"], timeout=60)
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def stored_terms(index: Path) -> dict[str, dict[str, int]]:
    with MetadataStore(open_published(index).metadata) as store:
        return {row.id: row.terms for row in store.images(store.image_ids())}


def test_clip_client_by_text_finds_what_search_finds(
    clip: ModuleType, server: ServiceProcess
) -> None:
    text = "a dog runs on the beach"
    expected = search(server, q=text, k=5)
    results = client(clip, server, num_images=5, deduplicate=False).query(text=text)
    assert ranking(results) == ranking(expected["hits"])
    check_results(results, server, expected["quant_scale"])
    for result, hit in zip(results, expected["hits"]):
        assert result["caption"] == next(iter(hit["metadata"]["captions"]), "")
        assert result["url"] == server.url + hit["metadata"]["image_url"]
    with_defaults = client(clip, server, num_images=5).query(text=text)  # deduplicate=True
    assert set(ranking(with_defaults)) <= set(ranking(results))


def test_clip_client_by_text_finds_captions(clip: ModuleType, server: ServiceProcess) -> None:
    text = "a cat sleeps on the sofa"
    expected = search(server, q=text, k=4, target="captions")
    found = client(clip, server, num_images=4, deduplicate=False, modality=clip.Modality.TEXT)
    results = found.query(text=text)
    assert ranking(results) == ranking(expected["hits"])
    assert [r["caption"] for r in results] == [h["caption"] for h in expected["hits"]]
    check_results(results, server, expected["quant_scale"])


def test_clip_client_by_image_file_and_url(
    clip: ModuleType, server: ServiceProcess, photos: Path, image_server: ImageServer
) -> None:
    path = photos / "images" / "coffee.jpg"
    upload = httpx.post(
        f"{server.url}/search", files={"image": path.read_bytes()}, data={"k": "6"}, timeout=60
    ).json()
    found = client(clip, server, num_images=6, deduplicate=False)
    by_file = found.query(image=str(path))
    assert ranking(by_file) == ranking(upload["hits"])
    check_results(by_file, server, upload["quant_scale"])
    assert path.read_bytes() == image_server.photo
    by_url = found.query(image=f"{image_server.url}/photo.jpg")  # sent as image_url
    assert ranking(by_url) == ranking(upload["hits"])
    refused = found.query(image=f"http://localhost:{image_server.port}/photo.jpg")
    assert "not on the allowlist" in refused["detail"]


def test_clip_client_by_lexical_vector(
    clip: ModuleType, server: ServiceProcess, tiny_index: Path
) -> None:
    """``embedding_input`` as ``{word: weight}``: one word finds exactly the images that
    hold it, strongest first, each scored quant_scale x its impact of the word."""
    terms = stored_terms(tiny_index)
    word = max(terms["chelsea.jpg"], key=terms["chelsea.jpg"].__getitem__)
    holding = sorted((t[word] for t in terms.values() if word in t), reverse=True)
    results = client(clip, server, num_images=20, deduplicate=False).query(
        embedding_input={word: 0.7}
    )
    scale = search(server, q="a dog")["quant_scale"]
    assert [r["score"] for r in results] == [int(scale) * impact for impact in holding]
    for result in results:
        assert [m["word"] for m in result["matches"]] == [word]
        assert result["score"] == int(scale) * terms[result["id"]][word]
    check_results(results, server, scale)


def test_indexes_are_listed_and_each_answers_from_its_own_documents(
    clip: ModuleType, server: ServiceProcess, tiny_index: Path, more_index: Path
) -> None:
    assert httpx.get(f"{server.url}/indices-list").json() == ["photos", "more"]
    word = next(iter(stored_terms(more_index)["cat-a.png"]))
    for name, index in (("photos", tiny_index), ("more", more_index)):
        found = clip.ClipClient(url=f"{server.url}/knn-service", indice_name=name, num_images=50)
        results = found.query(embedding_input={word: 1.0})
        assert {r["id"] for r in results} <= set(stored_terms(index))
        assert all(("?index=more" in r["url"]) == (name == "more") for r in results)
    check_results(results, server, search(server, q="a dog")["quant_scale"])


def cosine(a: dict[str, int], b: dict[str, int]) -> float:
    dot = sum(v * b.get(w, 0) for w, v in a.items())
    return dot / (sum(v * v for v in a.values()) * sum(v * v for v in b.values())) ** 0.5


@pytest.mark.parametrize("modality", ["image", "text"])
def test_deduplicate_leaves_out_near_copies(
    clip: ModuleType, server: ServiceProcess, more_index: Path, modality: str
) -> None:
    """``more`` holds the cat photo twice (same pixels, other bytes) under the same caption:
    one of each pair is left out, and so is every result whose stored vector has a cosine
    of 0.94 or more with a better one kept (the tiny model's image vectors all do)."""
    with MetadataStore(open_published(more_index).metadata) as store:
        images = store.images(store.image_ids())
        captions = [c for row in images for c in store.captions_of(row.id)]
    stored = {d.id: d.terms for d in (images if modality == "image" else captions)}
    vector = {word: 1.0 for word in stored[next(iter(stored))]}
    found = {}
    for deduplicate in (False, True):
        query = clip.ClipClient(
            url=f"{server.url}/knn-service",
            indice_name="more",
            modality=clip.Modality(modality),
            deduplicate=deduplicate,
        )
        found[deduplicate] = [r["id"] for r in query.query(embedding_input=vector)]
    copies = {"cat-a.png", "cat-b.png"} if modality == "image" else {"cat-a.png#0", "cat-b.png#0"}
    assert copies <= set(found[False]) and len(copies & set(found[True])) == 1
    kept: list[str] = []
    for doc_id in found[False]:
        if all(cosine(stored[doc_id], stored[other]) < 0.94 for other in kept):
            kept.append(doc_id)
    assert found[True] == kept


# The body ClipClient 2.45 posts (no content type), and the one clip-front posts
# (text/plain; empty aesthetic score, weight as a string, 3000 result ids).
CLIENT_BODY = {
    "text": "a man rides a bike",
    "image": None,
    "image_url": None,
    "embedding_input": None,
    "deduplicate": True,
    "use_safety_model": True,
    "use_violence_detector": True,
    "indice_name": "photos",
    "use_mclip": False,
    "aesthetic_score": 9,
    "aesthetic_weight": 0.5,
    "modality": "image",
    "num_images": 40,
    "num_result_ids": 40,
}
FRONT_BODY = {
    **CLIENT_BODY,
    "num_images": 2,
    "num_result_ids": 3000,
    "deduplicate": False,
    "use_safety_model": False,
    "use_violence_detector": False,
    "aesthetic_score": "",
    "aesthetic_weight": "0.5",
}


def post(server: ServiceProcess, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=json.dumps(body), headers=headers, timeout=60)


def test_clip_retrievals_own_requests_are_answered(server: ServiceProcess) -> None:
    answer = post(server, "/knn-service", CLIENT_BODY)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ignored-fields"] == (
        "use_safety_model, use_violence_detector, aesthetic_score, aesthetic_weight"
    )
    minimal = post(server, "/knn-service", {"text": CLIENT_BODY["text"]})
    assert minimal.status_code == 200 and "x-ignored-fields" not in minimal.headers

    front = post(server, "/knn-service", FRONT_BODY, **{"Content-Type": "text/plain"})
    assert front.status_code == 200, front.text
    results = front.json()
    every = search(server, q=CLIENT_BODY["text"], k=1000)["hits"]
    assert ranking(results) == ranking(every), "num_result_ids: all hits, up to 1000"
    assert all("url" in r for r in results[:2]) and not any("url" in r for r in results[2:])
    rest = [r["id"] for r in results[2:]]
    items = post(server, "/metadata", {"ids": [*rest, "no-such-id"], "indice_name": "photos"})
    assert [item["id"] for item in items.json()] == rest
    hits = {h["id"]: h for h in every}
    for item in items.json():
        assert item["metadata"]["url"] == server.url + hits[item["id"]]["metadata"]["image_url"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "a dog", "indice_name": "laion5B"}, 404, "no index named 'laion5B'"),
        ({"embedding_input": [0.1] * 512}, 422, "a list of floats (a dense CLIP embedding)"),
        ({"embedding_input": {"zebraish": 1.0}}, 422, "not in the model's vocabulary: zebraish"),
        ({"embedding_input": {"dog": -1.0}}, 422, "greater than or equal to 0"),
        ({"text": ""}, 422, "give one of text, image, image_url or embedding_input"),
        ({"image": "***"}, 422, "image: not base64"),
        ({"image": base64.b64encode(b"plain text").decode()}, 415, "not an image"),
        ({"text": "a dog", "modality": "video"}, 422, "modality: Input should be 'image' or"),
        ({"ids": ["a.jpg"], "indice_name": "nope"}, 404, "no index named 'nope'"),
        ([1, 2], 422, "Input should be an object"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    server: ServiceProcess, body: Any, status: int, message: str
) -> None:
    path = "/metadata" if isinstance(body, dict) and "ids" in body else "/knn-service"
    answer = post(server, path, body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]


def test_clip_client_sees_the_refusal(clip: ModuleType, server: ServiceProcess) -> None:
    """ClipClient returns the error body (it does not raise): the detail says what is wrong."""
    unknown = clip.ClipClient(url=f"{server.url}/knn-service", indice_name="laion5B")
    assert "this service serves: photos, more" in unknown.query(text="a dog")["detail"]
    dense = client(clip, server).query(embedding_input=[0.5] * 512)
    assert "lexical vector {word: weight}" in dense["detail"]
