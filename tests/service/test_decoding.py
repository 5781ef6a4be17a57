"""Large uploads in parallel: at most ``max_decodes`` images decode at once, the others
wait their turn, and every answer is the one the upload gets alone."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from service import create_app

from .conftest import index_settings

UPLOADS = 6


def large_png(side: int = 3000) -> bytes:
    """9 megapixels of gradients: a small file that decodes to 27 MB of RGB."""
    ramp = np.linspace(0, 255, side)
    pixels = np.stack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side))] * 2, -1)
    out = io.BytesIO()
    Image.fromarray(pixels[..., :3].astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def one_at_a_time(tiny_index: Path) -> Iterator[TestClient]:
    with TestClient(create_app(index_settings(tiny_index, max_decodes=1))) as client:
        yield client


def gauges(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def search(client: TestClient, data: bytes) -> dict[str, Any]:
    response = client.post("/search", files={"image": ("big.png", data)}, data={"k": "5"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_parallel_large_uploads_decode_one_at_a_time_and_answer_right(
    one_at_a_time: TestClient,
) -> None:
    data = large_png()
    alone = search(one_at_a_time, data)
    with ThreadPoolExecutor(UPLOADS) as pool:
        answers = list(pool.map(lambda _: search(one_at_a_time, data), range(UPLOADS)))
    for answer in answers:
        assert answer["query"]["words"] == alone["query"]["words"]
        assert [(h["id"], h["score"]) for h in answer["hits"]] == [
            (h["id"], h["score"]) for h in alone["hits"]
        ]
    figures = gauges(one_at_a_time)
    assert figures["lexsearch_image_decodes_peak"] == 1, "max_decodes=1 held"
    assert figures["lexsearch_image_decodes_running"] == 0
