"""``DELETE /v1/users/{user_id}`` (forget a user) and ``GET /v1/users/{user_id}/export`` (right of access), admin only.

Both are audited with the acting key's id. Forgetting runs off the event loop (it rewrites
files and compacts the database); an unknown user is a 404 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from shoplm.serve.auth import ApiKey
from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(prefix="/v1/users", tags=["privacy"], responses=ERROR_RESPONSES)
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "nothing is stored of this user (nothing changes)"}}

UserPath = Annotated[str, Path(min_length=1, max_length=256, description="the shop's user id")]
PseudonymousQuery = Annotated[bool, Query(description="the id is the pseudonym shoplm stores, not the shop's id")]


@router.delete(
    "/{user_id}",
    summary="Forget a user: every stored row, file row, cached vector and model row of theirs (admin)",
    responses=_NOT_FOUND,
)
async def forget(
    request: Request,
    user_id: UserPath,
    key: Annotated[ApiKey, Depends(require("admin"))],
    pseudonymous: PseudonymousQuery = False,
) -> Response:
    """Returns what was removed, per place (no user id in it); 404 ``user_not_found`` if nothing is stored of them."""
    from shoplm.app.erasure import forget_user

    state = get_state(request)
    report = await run_in_threadpool(
        forget_user, state.store, state.settings, user_id, actor=key.key_id, pseudonymous=pseudonymous
    )
    return json_response({"forgotten": True, **report.to_dict()})


@router.get(
    "/{user_id}/export",
    summary="Everything stored about a user, as JSON (admin)",
    responses=_NOT_FOUND,
)
async def export(
    request: Request,
    user_id: UserPath,
    key: Annotated[ApiKey, Depends(require("admin"))],
    pseudonymous: PseudonymousQuery = False,
) -> Response:
    """The user's rows per table and their rows in data files; 404 ``user_not_found`` if nothing is stored."""
    from shoplm.app.erasure import export_user

    state = get_state(request)
    document = await run_in_threadpool(
        export_user, state.store, state.settings, user_id, actor=key.key_id, pseudonymous=pseudonymous
    )
    return json_response(document)
