"""Admin endpoints (``X-API-Key``): reload the index now, show the settings."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException

from ..deps import AdminDep, EngineDep, IndexParam, SettingsDep
from ..errors import problems
from ..index_handle import IndexOpenError, ModelMismatchError
from ..schemas import ReloadResult

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses=problems(401, 403, 422),
)


@router.post("/reload", response_model=ReloadResult, responses=problems(404, 409, 429, 503))
async def reload(
    engine: EngineDep,
    index: IndexParam = None,
) -> ReloadResult:
    """Look for a newly published version of one index now (each index also picks up its
    new versions on its own; the others are not touched).

    A refused version is named in the answer; the reason, with its paths, in the log.
    """
    versions = engine.indexes.get(index)
    try:
        changed = await engine.reload(versions.name)
    except ModelMismatchError as exc:
        log.error("reload refused: %s", exc)
        raise HTTPException(
            409,
            "the newest index version was written by a model of another fingerprint than "
            f"the loaded one; still serving {versions.current.version} (the server log says which)",
        ) from exc
    except IndexOpenError as exc:
        log.error("reload refused: %s", exc)
        raise HTTPException(
            503,
            "the newest index version is incomplete or damaged; still serving "
            f"{versions.current.version} (the server log says why)",
        ) from exc
    return ReloadResult(index=versions.name, version=versions.current.version, changed=changed)


@router.get("/settings")
def settings(settings: SettingsDep) -> dict[str, Any]:
    """The running settings (the API key hidden)."""
    return settings.model_dump(mode="json")
