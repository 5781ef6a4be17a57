"""Health, readiness, stats, Prometheus metrics, admin endpoints, CORS, the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from indexer import open_published
from service import create_app

from .conftest import index_settings

ADMIN_KEY = "s3cret-key"


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def admin_client(tiny_index: Path) -> Iterator[TestClient]:
    settings = index_settings(
        tiny_index, admin_api_key=ADMIN_KEY, cors_origins=["https://example.org"]
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health_and_readiness(client: TestClient, tiny_index: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    version = open_published(tiny_index).version
    assert ready.json() == {
        "status": "ready",
        "index_version": version,
        "indexes": {"photos": version},
        "model": "tiny-lite0",
    }


def test_not_ready_before_the_lifespan_has_run(tiny_index: Path) -> None:
    app = create_app(index_settings(tiny_index))
    response = TestClient(app).get("/readyz")  # no `with`: the lifespan does not run
    assert response.status_code == 503 and response.json()["status"] == "not ready"


def test_stats(client: TestClient, tiny_index: Path) -> None:
    stats = client.get("/stats").json()
    manifest = open_published(tiny_index).manifest
    assert (stats["images"], stats["captions"]) == (manifest.images, manifest.captions) == (13, 12)
    assert stats["vocabulary_size"] == manifest.model.vocab_size == 52
    assert stats["model"]["name"] == "tiny-lite0"
    assert stats["model"]["fingerprint"] == manifest.model.fingerprint
    assert stats["model"]["query_top_k"] == 8
    assert stats["manifest"] == json.loads(json.dumps(manifest.to_json()))


def test_metrics_count_requests_latency_and_errors(admin_client: TestClient) -> None:
    before = samples(admin_client)
    admin_client.get("/search", params={"q": "a dog"})
    admin_client.get("/search", params={"q": "a dog"})
    admin_client.get("/search", params={"q": ""})
    after = samples(admin_client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"method": "GET", "route": "/search"}
    assert delta("lexsearch_http_requests_total", **ok, status="200") == 2
    assert delta("lexsearch_http_requests_total", **ok, status="422") == 1
    assert delta("lexsearch_http_request_seconds_count", **ok) == 3
    assert delta("lexsearch_http_request_seconds_bucket", **ok, le="+Inf") == 3
    assert delta("lexsearch_http_errors_total", route="/search", kind="client") == 1
    assert delta("lexsearch_search_stage_seconds_count", stage="encode_text") == 2
    assert delta("lexsearch_search_stage_seconds_count", stage="lucene") == 2
    assert after[("lexsearch_index_documents", (("index", "photos"), ("kind", "images")))] == 13
    assert after.get(("lexsearch_explain_mismatches_total", ()), 0.0) == 0


def test_admin_needs_the_key(admin_client: TestClient, client: TestClient) -> None:
    assert admin_client.post("/admin/reload").status_code == 401
    wrong = admin_client.post("/admin/reload", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
    right = admin_client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert right.status_code == 200 and right.json()["changed"] is False
    settings = admin_client.get("/admin/settings", headers={"X-API-Key": ADMIN_KEY}).json()
    assert settings["admin_api_key"] == "**********", "the key is never shown"
    disabled = client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert disabled.status_code == 403 and "disabled" in disabled.json()["detail"]


def test_cors_is_a_setting(admin_client: TestClient, client: TestClient) -> None:
    origin = {"Origin": "https://example.org"}
    allowed = admin_client.get("/healthz", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://example.org"
    other = admin_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200


def test_openapi_documents_both_post_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/search"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    text = content["application/json"]["schema"]
    assert {"q", "url", "index"} <= set(text["properties"])
    assert text["additionalProperties"] is False
    assert text["properties"]["target"]["$ref"] == "#/components/schemas/Target"
    assert "Target" in schema["components"]["schemas"]


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_admin_key_is_refused_at_start(tiny_index: Path, key: str) -> None:
    with pytest.raises(ValueError, match="admin_api_key is empty"):
        index_settings(tiny_index, admin_api_key=key)
