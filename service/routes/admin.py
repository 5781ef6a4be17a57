"""Admin endpoints (``X-API-Key``): reload the index now, show the settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import AdminDep, EngineDep, SettingsDep
from ..errors import problems
from ..schemas import ReloadResult

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses=problems(401, 403, 422),
)


@router.post("/reload", response_model=ReloadResult, responses=problems(409, 503))
async def reload(engine: EngineDep) -> ReloadResult:
    """Look for a newly published index version now (it is also picked up on its own)."""
    changed = await engine.reload()
    return ReloadResult(version=engine.handle.version, changed=changed)


@router.get("/settings")
def settings(settings: SettingsDep) -> dict[str, Any]:
    """The running settings (the API key hidden)."""
    return settings.model_dump(mode="json")
