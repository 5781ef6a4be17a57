"""HTTP methods across routes: ``OPTIONS`` and ``405`` list every method a path has, and
``HEAD`` is answered wherever ``GET`` is (as the ``GET``, without its body).

Starlette matches one route at a time, so ``GET /search`` and ``POST /search`` are two
routes and a wrong method got the ``Allow`` header of the first alone.
"""

from __future__ import annotations

import json

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE")  # HEAD and OPTIONS are answered here
READS = frozenset({"GET", "HEAD"})  # what a mount (the static files) answers


def _full(route: BaseRoute, scope: Scope, method: str) -> bool:
    return route.matches({**scope, "method": method})[0] is Match.FULL


def methods_of(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Every method the routes answer on this request's path (empty: no such path)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):
            methods |= READS if route.matches(scope)[0] is not Match.NONE else set()
        else:
            methods |= {m for m in PROBED if _full(route, scope, m)}
    if "GET" in methods:
        methods.add("HEAD")
    return methods | {"OPTIONS"} if methods else methods


class MethodsMiddleware:
    """Answers ``OPTIONS`` (204) and wrong methods (405) for ``routes``, and ``HEAD`` as ``GET``."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        routed = method not in ("HEAD", "OPTIONS") and any(
            _full(route, scope, method) for route in self.routes
        )
        methods = set() if routed else methods_of(self.routes, scope)
        if not methods:  # routed as it is, or no such path (404)
            await self.app(scope, receive, send)
        elif method == "OPTIONS":
            await _answer(send, 204, methods, b"")
        elif method == "HEAD" and "GET" in methods:
            await self._head(scope, receive, send)
        else:
            allow = ", ".join(sorted(methods))
            body = json.dumps({"detail": f"{method} is not allowed here; use {allow}"})
            await _answer(send, 405, methods, body.encode(), b"application/json")

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ``GET`` answer's status and headers (its length included), no body."""
        as_get = {**scope, "method": "GET"}  # a copy: the server reads the original's method

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, headers_only)
        finally:
            if "route" in as_get:  # for the metrics' route label
                scope["route"] = as_get["route"]


async def _answer(
    send: Send, status: int, methods: set[str], body: bytes, media_type: bytes | None = None
) -> None:
    headers = [(b"allow", ", ".join(sorted(methods)).encode())]
    if media_type is not None:
        headers += [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
