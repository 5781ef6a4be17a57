"""Prometheus metrics: HTTP requests, latency histograms, errors and search stages.

Each app gets its own registry, so several apps (tests) never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics in one registry (``/metrics`` renders it)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lexsearch_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "lexsearch_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "lexsearch_http_errors",
            "HTTP answers with a 4xx or 5xx status",
            ["route", "kind"],
            registry=r,
        )
        self.stage = Histogram(
            "lexsearch_search_stage_seconds",
            "Time of one search-worker stage (per batch)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "lexsearch_batch_size",
            "Jobs the search worker handled together",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.documents = Gauge(
            "lexsearch_index_documents",
            "Documents in the served version of each index",
            ["index", "kind"],
            registry=r,
        )
        self.decodes_running = Gauge(
            "lexsearch_image_decodes_running", "Images being decoded now", registry=r
        )
        self.decodes_peak = Gauge(
            "lexsearch_image_decodes_peak",
            "Most images decoded at once since the start (at most max_decodes)",
            registry=r,
        )
        self.reloads = Counter(
            "lexsearch_index_reloads",
            "Index versions picked up after start",
            ["index"],
            registry=r,
        )
        self.explain_mismatches = Counter(
            "lexsearch_explain_mismatches",
            "Hits whose word contributions did not add up to the Lucene score",
            registry=r,
        )

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Observe the seconds of the ``with`` block as one ``stage`` of the search worker."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage.labels(stage).observe(time.perf_counter() - started)


def route_label(scope: Scope) -> str:
    """The matched route's path template (bounded label values), or ``unmatched``."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class MetricsMiddleware:
    """Counts every HTTP request by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_label(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            if status >= 400:
                kind = "server" if status >= 500 else "client"
                self.metrics.errors.labels(route, kind).inc()
