"""``/dashboard``: a server-rendered page for shop staff (Jinja2 templates, a little inline JS).

Log in with an API key (the cookie holds a random server-side session token, HttpOnly and
SameSite=Strict, never the key), pick a user, see the profile and recommendations per
scene with reasons, watch the live event feed, search the catalog, post an event as the
user to see the recommendations change, and chat with the customer-service assistant as
that user. Fragments are rendered on the server and swapped in by ``fetch``; nothing is
loaded from outside the service.

Users are picked by their pseudonymous id (the only id the store keeps) or found by the
shop's own id, which is pseudonymized here. So an event posted from the page is written
for that pseudonymous id directly (the ingest pipeline would pseudonymize it a second time),
after the same checks: a known item and a browsing or buying event type. The chat likewise
hands the assistant the pseudonymous id as it is.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from shoplm.app.recommender import ShopRecommender
from shoplm.errors import InputError
from shoplm.ingest.pseudonymize import mask_pii
from shoplm.serve.auth import ApiKey, scope_allows
from shoplm.serve.chat import read_conversation
from shoplm.serve.deps import ServiceState, check_rate, get_state
from shoplm.serve.errors import ApiError
from shoplm.serve.routers.assistant import assistant_turn
from shoplm.serve.routers.users import user_profile
from shoplm.serve.schemas import CONVERSATION_ID, MAX_CONVERSATION_ID, MAX_MESSAGE_CHARS

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

COOKIE = "shoplm_session"
#: Event types the page may post (ratings and searches need more than one click).
PAGE_EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
_K = 6


def _session_key(request: Request) -> ApiKey | None:
    # None for no login, an expired one, or one whose key was revoked since.
    return get_state(request).sessions.get(request.cookies.get(COOKIE))


def dashboard_key(request: Request) -> ApiKey:
    """The logged-in key (401 without a session), rate-limited like the API."""
    key = _session_key(request)
    if key is None:
        raise ApiError(401, "log in at /dashboard first")
    check_rate(get_state(request), key)
    return key


DashboardKey = Annotated[ApiKey, Depends(dashboard_key)]


# -- pages ------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
def page(request: Request, user: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    key = _session_key(request)
    state = get_state(request)
    if key is None:
        return templates.TemplateResponse(request, "login.html", {"error": None})
    shop = state.live.current
    context: dict[str, Any] = {
        "key": key,
        "can_write": scope_allows(key.scope, "write"),
        "version": shop.version if shop else None,
        "users": active_users(state),
        "feed": recent_events(state, shop),
        "selected": None,
        "event_types": PAGE_EVENT_TYPES,
        "chat_max_chars": MAX_MESSAGE_CHARS,
    }
    if user and shop is not None:
        context["selected"] = user_panel(shop, user)
    return templates.TemplateResponse(request, "dashboard.html", context)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    # A urlencoded form, parsed here: the only form of the service needs no multipart library.
    body = (await request.body()).decode("utf-8", errors="replace")
    secret = (parse_qs(body).get("api_key") or [""])[0].strip()
    state = get_state(request)
    key = state.keys.verify(secret) if secret else None
    if key is None:
        return templates.TemplateResponse(
            request, "login.html", {"error": "That API key is not valid."}, status_code=401
        )
    token = state.sessions.create(key)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(state.settings.server.session_hours * 3600),
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    get_state(request).sessions.delete(request.cookies.get(COOKIE))
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


# -- fragments ----------------------------------------------------------------------------
@router.get("/fragments/users", response_class=HTMLResponse)
def users_fragment(request: Request, _key: DashboardKey, q: Annotated[str, Query(max_length=256)] = "") -> Response:
    state = get_state(request)
    shop = state.live.current
    users = active_users(state)
    found = None
    q = q.strip()
    if q:
        matching = [u for u in users if u["user_id"].startswith(q.lower())]
        if shop is not None:
            pseudo = shop.user_key(q)  # the shop's own id, pseudonymized as ingest does
            found = {"raw": q, "user_id": pseudo, "events": len(shop.history(pseudo)[0])}
        users = matching
    return templates.TemplateResponse(request, "_users.html", {"users": users, "found": found})


@router.get("/fragments/user/{user_id}", response_class=HTMLResponse)
def user_fragment(request: Request, user_id: str, key: DashboardKey) -> Response:
    shop = _shop(request)
    context = {"u": user_panel(shop, user_id), "can_write": scope_allows(key.scope, "write")}
    return templates.TemplateResponse(request, "_user.html", context)


@router.get("/fragments/feed", response_class=HTMLResponse)
def feed_fragment(request: Request, _key: DashboardKey) -> Response:
    state = get_state(request)
    return templates.TemplateResponse(request, "_feed.html", {"feed": recent_events(state, state.live.current)})


@router.get("/fragments/search", response_class=HTMLResponse)
def search_fragment(
    request: Request,
    _key: DashboardKey,
    q: Annotated[str, Query(max_length=200)] = "",
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shop = _shop(request)
    recs = []
    if q.strip():
        recs = shop.recommend(user or None, scene="search", query=q.strip(), k=8, pseudonymous=True)
    return templates.TemplateResponse(request, "_search.html", {"q": q, "recs": recs})


class PageEvent(BaseModel):
    user_id: str = Field(min_length=1, max_length=64, description="pseudonymous id")
    item_id: str = Field(min_length=1, max_length=128)
    event_type: str = "view"


@router.post("/events")
def post_page_event(request: Request, event: PageEvent, key: DashboardKey) -> JSONResponse:
    """Store one event of the selected user (write scope), committed before the answer."""
    if not scope_allows(key.scope, "write"):
        raise ApiError(403, f"this API key has scope {key.scope!r}; posting events needs 'write'")
    # JSON only: a cross-site form cannot send it without a CORS preflight (CSRF guard beside SameSite).
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ApiError(415, "send JSON")
    state = get_state(request)
    shop = _shop(request)
    if event.event_type not in PAGE_EVENT_TYPES:
        raise InputError(f"event_type must be one of {', '.join(PAGE_EVENT_TYPES)}", field="event_type")
    if event.item_id not in shop.engine.catalog.index:
        raise ApiError(404, f"no item {event.item_id!r} in the catalog", code="item_not_found")
    event_id = f"dash-{secrets.token_hex(8)}"
    row = {
        "event_id": event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "event_type": event.event_type,
        "scene": "dashboard",
        "query": "",
        "value": None,
        "ts_ms": int(time.time() * 1000),
        "session_id": "dashboard",
        "suspected_bot": False,
    }
    state.events.write([row])  # committed before the answer, with the API's events
    state.metrics.inc("shoplm_events_accepted_total", 1)
    return JSONResponse({"event_id": event_id, "stored": True})


class PageChat(BaseModel):
    user_id: str = Field(min_length=1, max_length=64, description="pseudonymous id")
    conversation_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_CONVERSATION_ID, pattern=CONVERSATION_ID
    )
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


@router.post("/chat", response_class=HTMLResponse)
async def post_chat(request: Request, message: PageChat, key: DashboardKey) -> Response:
    """One customer message as the selected user (write scope: the assistant can change orders).

    Answers the conversation so far as a fragment, the new turn's intent, actions and
    escalation beneath it; the fragment carries the conversation id for the next message.
    """
    if not scope_allows(key.scope, "write"):
        raise ApiError(403, f"this API key has scope {key.scope!r}; chatting as a customer needs 'write'")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ApiError(415, "send JSON")  # the same CSRF guard as posting events
    if not message.text.strip():
        raise ApiError(422, "text: the message is blank")
    state = get_state(request)
    conversation_id = message.conversation_id or f"dash-{uuid.uuid4().hex}"
    turn = await assistant_turn(state, conversation_id, message.user_id, message.text, pseudonymous=True)
    conversation = read_conversation(state.store, conversation_id) or {
        # Storing the turn failed (the assistant logged why): show the answer anyway.
        "conversation_id": conversation_id,
        "status": turn["status"],
        "escalation": None,
        "messages": [
            {"role": "customer", "text": mask_pii(message.text), "intent": turn["intent"]},
            {"role": "assistant", "text": turn["text"], "intent": turn["intent"]},
        ],
    }
    return templates.TemplateResponse(request, "_chat.html", {"c": conversation, "turn": turn})


# -- what the page shows ----------------------------------------------------------------
def _shop(request: Request) -> ShopRecommender:
    shop = get_state(request).live.current
    if shop is None:
        raise ApiError(503, "no trained models yet", code="models_unavailable")
    return shop


def active_users(state: ServiceState, *, window: int = 3000, limit: int = 12) -> list[dict[str, Any]]:
    """The users with the newest events (read from the newest ``window`` events: an index scan)."""
    return [
        {"user_id": user, "events": count, "last": _when(newest)}
        for user, count, newest in state.store.events.recent_users(window=window, limit=limit)
    ]


def recent_events(state: ServiceState, shop: ShopRecommender | None, *, limit: int = 20) -> list[dict[str, Any]]:
    feed = []
    for row in state.store.events.newest(limit=limit):
        event_id, user_id, item_id = row["event_id"], row["user_id"], row["item_id"]
        event_type, query, ts_ms = row["event_type"], row["query"], row["ts_ms"]
        title = shop.engine.catalog.title(str(item_id)) if shop is not None and item_id else ""
        feed.append(
            {
                "event_id": event_id,
                "user_id": user_id,
                "item_id": item_id or "",
                "title": title or (f"“{query}”" if query else ""),
                "type": event_type,
                "when": _when(int(ts_ms)),
            }
        )
    return feed


def user_panel(shop: ShopRecommender, user_id: str) -> dict[str, Any]:
    """Profile and recommendations per scene of one (pseudonymous) user, for the template."""
    history, purchased = shop.history(user_id)
    profile = user_profile(shop, user_id, pseudonymous=True)
    catalog = shop.engine.catalog
    scenes: list[dict[str, Any]] = []
    home = shop.recommend(user_id, scene="home", k=_K, pseudonymous=True)
    scenes.append({"scene": "home", "label": "Home page", "recs": home})
    anchor = history[-1] if history else (home[0].item_id if home else None)
    if anchor is not None:
        scenes.append(
            {
                "scene": "item_detail",
                "label": f"On the page of {catalog.title(anchor)}",
                "recs": shop.recommend(user_id, scene="item_detail", item_id=anchor, k=_K, pseudonymous=True),
            }
        )
        cart = history[-2:] if len(history) >= 2 else [anchor]
        scenes.append(
            {
                "scene": "cart",
                "label": "Cart: " + ", ".join(catalog.title(c) for c in cart),
                "recs": shop.recommend(user_id, scene="cart", cart=cart, k=_K, pseudonymous=True),
            }
        )
        bought = purchased[-1] if purchased else anchor
        scenes.append(
            {
                "scene": "post_purchase",
                "label": f"After buying {catalog.title(bought)}",
                "recs": shop.recommend(user_id, scene="post_purchase", item_id=bought, k=_K, pseudonymous=True),
            }
        )
    recent = [{"item_id": i, "title": catalog.title(i)} for i in reversed(history[-6:])]
    return {"user_id": user_id, "profile": profile, "scenes": scenes, "recent": recent, "events": len(history)}


def _when(ts_ms: int) -> str:
    seconds = time.time() - ts_ms / 1000
    if seconds < 90:
        return f"{max(0, int(seconds))} s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    if seconds < 172_800:
        return f"{int(seconds // 3600)} h ago"
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ms / 1000))
