"""The customer-service assistant: ``POST /v1/assistant/messages``, ``GET /v1/assistant/conversations/{id}``.

A conversation belongs to the user of its first message: a message of another user (or of
a guest) in it is refused with 403 and stores nothing. The assistant never changes an order
before the customer confirms the change it summarized, which is why sending messages needs
a write key.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request

from shoplm.serve.chat import read_conversation
from shoplm.serve.deps import ServiceState, get_state, require
from shoplm.serve.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from shoplm.serve.schemas import (
    CONVERSATION_ID,
    MAX_CONVERSATION_ID,
    AssistantMessage,
    AssistantReply,
    Conversation,
)

router = APIRouter(prefix="/v1/assistant", tags=["assistant"], responses=ERROR_RESPONSES)


def new_conversation_id() -> str:
    """A fresh conversation id.

    Example:
        >>> new_conversation_id().startswith("conv-"), len(new_conversation_id())
        (True, 37)
    """
    return f"conv-{uuid.uuid4().hex}"


async def assistant_turn(
    state: ServiceState,
    conversation_id: str,
    user_id: str | None,
    text: str,
    *,
    pseudonymous: bool = False,
) -> dict[str, Any]:
    """One turn in a worker thread, as the API answers it; 403 in another user's conversation."""
    holder = state.assistant

    def run() -> dict[str, Any]:
        turn = holder.reply(conversation_id, user_id, text, pseudonymous=pseudonymous)
        if any(a.tool == "conversation" and a.outcome == "not_allowed" for a in turn.actions):
            raise ApiError(
                403, f"conversation {conversation_id!r} belongs to another user", code="conversation_not_allowed"
            )
        status = holder.get().status(conversation_id) or ("escalated" if turn.escalated else "open")
        return {**turn.to_dict(), "conversation_id": conversation_id, "status": status}

    answer = await anyio.to_thread.run_sync(run, limiter=holder.limiter())
    state.metrics.inc("shoplm_assistant_turns_total")
    if answer["escalated"]:
        state.metrics.inc("shoplm_assistant_escalations_total")
    if not math.isfinite(answer["confidence"]):  # JSON has no NaN
        answer["confidence"] = 0.0
    sentiment = answer.get("sentiment")
    if isinstance(sentiment, dict) and not math.isfinite(float(sentiment.get("negative", 0.0))):
        answer["sentiment"] = None
    answer["seconds"] = round(float(answer["seconds"]), 4)
    return answer


@router.post(
    "/messages",
    response_model=AssistantReply,
    summary="Send a customer message to the assistant and get its reply",
    dependencies=[Depends(require("write"))],
)
async def post_message(message: AssistantMessage, request: Request) -> dict[str, Any]:
    """Answer one customer message; omit ``conversation_id`` to start a conversation.

    Order changes (cancel, refund, new address) are first ``proposed`` with a summary; only
    a "yes" in the next message applies them. The assistant's models load when the service
    starts; before ``shoplm train assistant`` has made them, this answers 503.
    """
    conversation_id = message.conversation_id or new_conversation_id()
    return await assistant_turn(get_state(request), conversation_id, message.user_id, message.text)


@router.get(
    "/conversations/{conversation_id}",
    response_model=Conversation,
    summary="A conversation's status and messages",
    dependencies=[Depends(require("read"))],
    responses={404: {"model": ErrorResponse, "description": "unknown conversation"}},
)
def get_conversation(
    conversation_id: Annotated[str, Path(min_length=1, max_length=MAX_CONVERSATION_ID, pattern=CONVERSATION_ID)],
    request: Request,
    user_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            description="the shop's user id: answer only if the conversation is this user's (404 otherwise)",
        ),
    ] = None,
) -> dict[str, Any]:
    """Messages are stored with emails and phone numbers masked; ``user_id`` in the answer is pseudonymous."""
    state = get_state(request)
    found = read_conversation(state.store, conversation_id)
    # Someone else's conversation answers like an unknown one: its existence is not disclosed.
    if found is not None and user_id is not None:
        owner = state.assistant.user_key(user_id.encode("utf-8", errors="replace").decode("utf-8"))
        if (found["user_id"] or "") != owner:
            found = None
    if found is None:
        raise ApiError(404, f"no conversation {conversation_id!r}", code="conversation_not_found")
    return found
