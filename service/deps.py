"""Dependencies of the routes: the settings, the search engine, the thumbnails and the
admin check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from .engine import SearchEngine
from .settings import Settings
from .thumbnails import Thumbnails


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def search_engine(request: Request) -> SearchEngine:
    engine: SearchEngine = request.app.state.engine
    return engine


def thumbnails(request: Request) -> Thumbnails:
    found: Thumbnails = request.app.state.thumbnails
    return found


SettingsDep = Annotated[Settings, Depends(app_settings)]
IndexParam = Annotated[
    str | None, Query(max_length=64, description="the index (default: the first one served)")
]
EngineDep = Annotated[SearchEngine, Depends(search_engine)]
ThumbnailsDep = Annotated[Thumbnails, Depends(thumbnails)]


def require_admin(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="the admin API key")] = None,
) -> None:
    """Admin endpoints need ``X-API-Key``; they are off when no key is configured."""
    if settings.admin_api_key is None:
        raise HTTPException(403, "admin endpoints are disabled: set LEXSEARCH_ADMIN_API_KEY")
    expected = settings.admin_api_key.get_secret_value()
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong X-API-Key")


AdminDep = Depends(require_admin)
