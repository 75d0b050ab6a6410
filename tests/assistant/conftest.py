"""Fixtures of the assistant tests (the session's embedding cache is ``tests/conftest.py``'s).

The dialogue fixtures (``kit``: both trained models, the encoder and the policy index; ``shop``;
``bot``) are made available here rather than imported into each test module: a session fixture
imported into several modules is set up once per module, and ``kit`` costs most of a minute.
"""

from __future__ import annotations

from tests.assistant.dialogue_fixtures import bot, kit, shop  # noqa: F401  (fixtures for every module here)
