"""Runs the scripted conversations (``conversations/*.yaml``) and checks each turn's expectations.

A script: ``user`` (the shop's user id), ``turns``: ``say`` (customer text) and ``expect``:

``intent``             the turn's intent (a string or a list of acceptable ones)
``action``             ``tool:outcome`` that must be among the turn's actions
``no_action``          ``tool:outcome`` that must not be
``contains``           substrings the reply must contain (all of them)
``not_contains``       substrings it must not contain
``escalated``          whether the turn handed over to a human
``language``           ``en`` / ``zh``
``emotion``            ``neutral`` / ``frustrated`` / ``angry``
``sentiment``          the sentiment model's label of the message (``negative``, ``neutral``, ``positive``)
``citation``           a substring of one of the citations
``order_status``       ``{order_id: status}`` in the store after the turn
``order_address``      ``{order_id: address}`` in the store after the turn
``conversation_status``, ``escalation_reason``, ``escalation_focus``: the stored conversation after the turn

Turns are checked as dicts (:meth:`AssistantTurn.to_dict`), so ``shoplm chat --json`` output is
checked by the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from shoplm.store import Store
from shoplm.store.schema import conversations, orders

SCRIPTS_DIR = Path(__file__).parent / "conversations"


def load_scripts() -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(SCRIPTS_DIR.glob("*.yaml"))}


def check_turn(turn: dict[str, Any], expect: dict[str, Any], store: Store, conversation_id: str) -> list[str]:
    """Every expectation ``turn`` misses, as readable messages (empty: the turn passed)."""
    problems: list[str] = []
    actions = {f"{a['tool']}:{a['outcome']}" for a in turn["actions"]}
    text = turn["text"]
    if "intent" in expect:
        wanted = expect["intent"] if isinstance(expect["intent"], list) else [expect["intent"]]
        if turn["intent"] not in wanted:
            problems.append(f"intent {turn['intent']!r}, expected {wanted}")
    if "action" in expect and expect["action"] not in actions:
        problems.append(f"actions {sorted(actions)} lack {expect['action']!r}")
    if "no_action" in expect and expect["no_action"] in actions:
        problems.append(f"actions {sorted(actions)} include {expect['no_action']!r}")
    for needle in expect.get("contains", []):
        if str(needle) not in text:
            problems.append(f"reply lacks {needle!r}")
    for needle in expect.get("not_contains", []):
        if str(needle) in text:
            problems.append(f"reply contains {needle!r}")
    if "escalated" in expect and bool(turn["escalated"]) != bool(expect["escalated"]):
        problems.append(f"escalated={turn['escalated']}, expected {expect['escalated']}")
    if "language" in expect and turn["language"] != expect["language"]:
        problems.append(f"language {turn['language']!r}, expected {expect['language']!r}")
    if "emotion" in expect and turn["emotion"] != expect["emotion"]:
        problems.append(f"emotion {turn['emotion']!r}, expected {expect['emotion']!r}")
    if "sentiment" in expect:
        reading = turn.get("sentiment") or {}
        if reading.get("label") != expect["sentiment"]:
            problems.append(f"sentiment {reading or None}, expected {expect['sentiment']!r}")
    if "citation" in expect and not any(expect["citation"] in c for c in turn["citations"]):
        problems.append(f"citations {turn['citations']} lack {expect['citation']!r}")
    with store.engine.connect() as conn:
        for order_id, status in (expect.get("order_status") or {}).items():
            stored = conn.execute(select(orders.c.status).where(orders.c.order_id == order_id)).scalar_one()
            if stored != status:
                problems.append(f"order {order_id} is {stored!r}, expected {status!r}")
        for order_id, address in (expect.get("order_address") or {}).items():
            stored = conn.execute(select(orders.c.shipping_address).where(orders.c.order_id == order_id)).scalar_one()
            if stored != address:
                problems.append(f"order {order_id} address {stored!r}, expected {address!r}")
        keys = ("conversation_status", "escalation_reason", "escalation_focus")
        if any(k in expect for k in keys):
            row = conn.execute(
                select(conversations.c.status, conversations.c.state).where(
                    conversations.c.conversation_id == conversation_id
                )
            ).one()
            state = json.loads(row[1])
            escalation = state.get("escalation") or {}
            if "conversation_status" in expect and row[0] != expect["conversation_status"]:
                problems.append(f"conversation status {row[0]!r}, expected {expect['conversation_status']!r}")
            if "escalation_reason" in expect and escalation.get("reason") != expect["escalation_reason"]:
                problems.append(f"escalation reason {escalation.get('reason')!r}")
            if "escalation_focus" in expect and escalation.get("order_in_focus") != expect["escalation_focus"]:
                problems.append(f"escalation order in focus {escalation.get('order_in_focus')!r}")
    return [f"turn {turn.get('_index', '?')} ({turn['text'][:80]!r}): {p}" for p in problems]
