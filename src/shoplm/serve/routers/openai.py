"""The shop assistant behind an OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Chat UIs and the official ``openai`` client talk to it unchanged; the model is the shop's
customer-service assistant (``shoplm-assistant``). Identity and continuity:

- the API key's scope gates the route (write, as for ``POST /v1/assistant/messages``);
- the shop's end user is the request's standard ``user`` field; without it the customer is an
  anonymous visitor, who can ask questions but has no orders (no order tools);
- the assistant answers the last ``user`` message. The conversation continues from the
  history the client sends: each answer is stored with a digest of the conversation up to it
  (API key, user, and the user and assistant messages), so the next request, whose history
  ends with that answer, finds its stored conversation, pending confirmations included. A
  ``conversation_id`` in ``metadata`` resumes a stored conversation by its id;
- ``stream: true`` answers with server-sent events (``chat.completion.chunk`` objects, then
  ``[DONE]``).

Example:
    >>> from openai import OpenAI                                                      # doctest: +SKIP
    >>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="slm_...")        # doctest: +SKIP
    >>> client.chat.completions.create(model="shoplm-assistant", user="U00042",       # doctest: +SKIP
    ...     messages=[{"role": "user", "content": "where is my order O0000123?"}]).choices[0].message.content
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from shoplm.serve.auth import ApiKey
from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ApiError
from shoplm.serve.routers.assistant import assistant_turn
from shoplm.serve.schemas import CONVERSATION_ID, MAX_CONVERSATION_ID, MAX_MESSAGE_CHARS

router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses=ERROR_RESPONSES)

MODEL_ID = "shoplm-assistant"
#: When the model was "created", as /v1/models reports it (the first release of the assistant).
MODEL_CREATED = 1_764_547_200  # 2025-12-01T00:00:00Z
#: Messages one request may carry (a chat UI sends the whole history each time).
MAX_MESSAGES = 200


class TextPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=32)
    text: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    name: str | None = Field(default=None, max_length=256)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ChatMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CONVERSATION_ID,
        pattern=CONVERSATION_ID,
        description="resume this stored conversation",
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(default=False, strict=True)


class ChatCompletionRequest(BaseModel):
    """The fields of OpenAI's chat completion request that the assistant reads; others are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: Literal["shoplm-assistant"] = Field(description="the shop assistant, the one model GET /v1/models lists")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    user: str | None = Field(default=None, min_length=1, max_length=256, description="the shop's user id")
    metadata: ChatMetadata | None = None
    stream: bool = Field(default=False, strict=True, description="answer as server-sent events")
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, strict=True, description="only one answer")


class AnswerMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AnswerMessage
    finish_reason: Literal["stop"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ShopDetails(BaseModel):
    """What the assistant did, beyond the text (shoplm's addition; OpenAI clients keep it as an extra field)."""

    conversation_id: str
    intent: str
    escalated: bool
    actions: list[dict[str, Any]]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    shoplm: ShopDetails


class Model(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\s\u3400-\u9fff]+")


def count_tokens(text: str) -> int:
    """An estimate of tokens (a Chinese character or a word each) for ``usage``; shoplm runs no LLM tokenizer.

    Example:
        >>> count_tokens("where is 我的订单")
        6
    """
    return len(_TOKEN.findall(text))


def transcript_digest(key_id: str, user: str | None, messages: list[tuple[str, str]]) -> str:
    """The digest a conversation is found by: the API key, the user, the user and assistant messages so far.

    Example:
        >>> transcript_digest("k1", "U1", [("user", "hi ")]) == transcript_digest("k1", "U1", [("user", "hi")])
        True
    """
    canonical = json.dumps([key_id, user or "", [[r, " ".join(t.split())] for r, t in messages]], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@router.get(
    "/models",
    response_model=ModelList,
    summary="The models this API serves (chat UIs ask this first)",
    dependencies=[Depends(require("read"))],
)
async def models() -> Response:
    return json_response(
        {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": MODEL_CREATED, "owned_by": "shoplm"}],
        }
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Talk to the shop assistant through the OpenAI chat completions API (streaming too)",
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {
                        "description": "one server-sent event: data is a chat.completion.chunk as JSON, or [DONE]",
                        "type": "object",
                        "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
                        "required": ["data"],
                    }
                }
            },
            "description": "a chat.completion, or with stream: true its chunks as server-sent events",
        },
        403: {"description": "metadata.conversation_id names another user's conversation"},
        404: {"description": "metadata.conversation_id names no stored conversation"},
    },
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: Annotated[ApiKey, Depends(require("write"))]
) -> Response:
    """Answer the last ``user`` message as the shop assistant (see the module docstring for identity and continuity)."""
    dialogue = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
    if not dialogue or dialogue[-1][0] != "user":
        dialogue.append(("user", ""))  # nothing asked (yet): the assistant asks how it can help
    state = get_state(request)
    question = dialogue[-1][1]
    conversation_id = await _conversation(state, key, body, dialogue[:-1])
    created = int(time.time())
    answer = await assistant_turn(state, conversation_id, body.user, question)
    # Stored once answered: the client's next request ends with this answer and finds the conversation.
    digest = transcript_digest(key.key_id, body.user, [*dialogue, ("assistant", answer["text"])])
    state.store.conversations.add_transcript(digest, conversation_id, now_ms=int(time.time() * 1000))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    usage = {
        "prompt_tokens": sum(count_tokens(t) for _, t in dialogue),
        "completion_tokens": count_tokens(answer["text"]),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    details = {
        "conversation_id": conversation_id,
        "intent": answer["intent"],
        "escalated": answer["escalated"],
        "actions": answer["actions"],
    }
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _stream(completion_id, created, answer["text"], usage if include_usage else None, details)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return json_response(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer["text"]}, "finish_reason": "stop"}
            ],
            "usage": usage,
            "shoplm": details,
        }
    )


async def _conversation(state: Any, key: ApiKey, body: ChatCompletionRequest, before: list[tuple[str, str]]) -> str:
    """The stored conversation this request continues, or a new id."""
    if body.metadata is not None and body.metadata.conversation_id:
        conversation_id = body.metadata.conversation_id
        if state.store.conversations.load(conversation_id) is None:
            raise ApiError(404, f"no conversation {conversation_id!r}", code="conversation_not_found")
        return conversation_id  # another user's: the turn answers 403
    if before:
        found = state.store.conversations.find_by_transcript(transcript_digest(key.key_id, body.user, before))
        if found is not None:
            return found
    return f"chat-{uuid.uuid4().hex}"


async def _stream(
    completion_id: str, created: int, text: str, usage: dict[str, int] | None, details: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The answer as server-sent events: a role chunk, content chunks a few words each, a stop chunk, [DONE]."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield event({"content": piece})
    yield event({}, "stop", shoplm=details)
    if usage is not None:
        yield (
            b"data: "
            + orjson.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL_ID,
                    "choices": [],
                    "usage": usage,
                }
            )
            + b"\n\n"
        )
    yield b"data: [DONE]\n\n"
