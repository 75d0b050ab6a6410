"""Reply templates as data: the dialogue acts the text generator has no task for.

Confirmation questions, refusals and fixed answers (greeting, thanks, "which order?") are
bilingual templates in ``assistant/data/replies.json``; a shop can edit the wording there
without touching the dialogue policy. Fields in braces are filled from the turn's facts and
a missing one renders empty, never an error.

Example:
    >>> templates = ReplyTemplates.shipped()
    >>> templates.render("declined", "en", {"order_id": "O1"})
    'OK, I have not changed anything on order O1.'
    >>> templates.render("refuse_cancel", "zh", {"order_id": "O1", "status": "shipped"})
    '订单 O1 当前状态为“已发货”，已无法取消。'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from shoplm.errors import InputError


@dataclass(frozen=True)
class ReplyTemplates:
    """Act name -> {language: template}, and order statuses in Chinese."""

    acts: Mapping[str, Mapping[str, str]]
    status_zh: Mapping[str, str]

    @classmethod
    def from_file(cls, path: str | Path) -> ReplyTemplates:
        """Read templates from a JSON file shaped like the shipped ``replies.json``.

        Raises:
            InputError: the file is not such JSON, or an act lacks its English or Chinese text.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"unreadable reply templates: {exc}", path=path) from exc
        acts = data.get("acts") if isinstance(data, dict) else None
        if not isinstance(acts, dict):
            raise InputError("no 'acts' object", path=path)
        for name, texts in acts.items():
            if not isinstance(texts, dict) or not {"en", "zh"} <= set(texts):
                raise InputError(f"act {name!r} needs an 'en' and a 'zh' text", path=path)
        return cls(acts=acts, status_zh=dict(data.get("status_zh", {})))

    @staticmethod
    @cache
    def shipped() -> ReplyTemplates:
        """The templates shipped with shoplm (read once)."""
        with resources.as_file(resources.files("shoplm.assistant") / "data" / "replies.json") as path:
            return ReplyTemplates.from_file(path)

    def render(self, act: str, language: str, values: Mapping[str, str]) -> str:
        """The act's text in ``language`` (``zh``, else English) with ``values`` filled in.

        A ``status`` value also fills ``status_zh`` (the status named in Chinese).
        """
        texts = self.acts[act]
        filled = _Defaulting(values)
        status = str(values.get("status", ""))
        filled.setdefault("status_zh", self.status_zh.get(status, status))
        return (texts["zh"] if language == "zh" else texts["en"]).format_map(filled)


class _Defaulting(dict):  # type: ignore[type-arg]
    """format_map values where a missing key renders empty rather than raising."""

    def __missing__(self, key: str) -> str:
        return ""
