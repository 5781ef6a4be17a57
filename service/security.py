"""Security headers on every answer: ``X-Content-Type-Options: nosniff`` and a
Content-Security-Policy.

The search page may load its own script, style sheet and images (plus the ``data:``
icon and the ``blob:`` preview of a dropped image) and talk to its own origin, nothing
else: no inline script or style; clip-front (under ``fronts``) the same, plus inline
styles. FastAPI's docs pages load Swagger UI and ReDoc from their CDN. Every other
answer (JSON, image files, thumbnails) gets a policy under which a browser that renders
it as a document runs nothing (``sandbox``).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
    "worker-src blob:; base-uri 'none'; frame-ancestors 'none'"
)
FRONT_POLICY = PAGE_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
API_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


class SecurityHeadersMiddleware:
    """Adds ``nosniff`` and the path's policy: ``pages`` get the page's, ``docs`` the docs',
    paths under one of ``fronts`` clip-front's."""

    def __init__(
        self, app: ASGIApp, pages: Iterable[str], docs: Iterable[str], fronts: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.policies = {path: PAGE_POLICY for path in pages} | {path: DOCS_POLICY for path in docs}
        self.fronts = tuple(f"{prefix}/" for prefix in fronts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        policy = self.policies.get(
            path, FRONT_POLICY if path.startswith(self.fronts) else API_POLICY
        )

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Content-Security-Policy"] = policy
            await send(message)

        await self.app(scope, receive, secured)
