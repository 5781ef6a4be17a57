"""32 concurrent clients against a real uvicorn server: every answer right, none failed.

pyjnius is not thread-safe; the service sends every model and Lucene call through one
worker thread. This test hammers a real server process with mixed text and image
searches from 32 threads at once and compares each answer with the one the same
request got alone, and with a brute-force search over the stored vectors.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.server import ServiceProcess

from .test_search_api import check_exact

CLIENTS = 32
ROUNDS = 4
TEXTS = [
    "a dog runs on the beach",
    "a brown cat sleeps on the sofa",
    "two children play soccer in the field",
    "a man rides a red bike down the street",
    "a surfer on a big wave +ocean",
    "a white horse near the wall -white",
]
IMAGES = ["chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]

Request = tuple[str, dict[str, Any]]


def requests(photos: Path) -> list[Request]:
    """A mix of text->images, text->captions, image->images and image->captions."""
    mix: list[Request] = []
    for i, text in enumerate(TEXTS):
        target = "images" if i % 2 else "captions"
        mix.append(("GET", {"params": {"q": text, "k": 5, "target": target}}))
    for i, name in enumerate(IMAGES):
        data = (photos / "images" / name).read_bytes()
        target = "captions" if i % 2 else "images"
        files = {"image": (name, data, "image/jpeg")}
        mix.append(("POST", {"files": files, "data": {"k": "5", "target": target}}))
    return mix


def send(client: httpx.Client, request: Request) -> dict[str, Any]:
    method, arguments = request
    response = client.request(method, "/search", **arguments)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def essence(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What must not depend on load: the query vector searched and the ranked hits."""
    hits = [(h["id"], h["score"], tuple(map(str, h["matches"]))) for h in answer["hits"]]
    return answer["query"]["kind"], tuple(map(str, answer["query"]["words"])), tuple(hits)


def batch_sizes(server: ServiceProcess) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics").text
    return {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "lexsearch_batch_size_bucket"
    }


def test_32_concurrent_clients_get_exact_answers(
    live_server: ServiceProcess, photos: Path, tiny_index: Path
) -> None:
    mix = requests(photos)
    with httpx.Client(base_url=live_server.url, timeout=60) as alone:
        expected = [send(alone, request) for request in mix]
    for answer in expected:
        check_exact(answer, tiny_index)
    before = batch_sizes(live_server)
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> list[tuple[int, dict[str, Any]]]:
        answers = []
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            start.wait()
            for round_ in range(ROUNDS):
                which = (number + round_ * 7) % len(mix)
                answers.append((which, send(http, mix[which])))
        return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [answer for batch in pool.map(client, range(CLIENTS)) for answer in batch]

    assert len(results) == CLIENTS * ROUNDS
    for which, answer in results:
        assert essence(answer) == essence(expected[which]), f"request {which} answered wrongly"
    after = batch_sizes(live_server)
    single = after["1.0"] - before.get("1.0", 0.0)
    total = after["+Inf"] - before.get("+Inf", 0.0)
    assert total < CLIENTS * ROUNDS, "concurrent searches were batched"
    assert single < total
    assert live_server.process.poll() is None, "the server is still up"
