"""The assistant's intent model: trained on the phrasings shipped in ``assistant/data/intents.csv``.

The shipped set (written for shoplm, Chinese and English, 30 intents: the 27 Bitext-style
customer-support intents plus ``product_question``, ``recommendation_request`` and
``chitchat``) lets every installation train its intent classifier in seconds, without any
download. A shop can train on its own labelled chats instead (``texts``/``labels``).

Example:
    >>> from shoplm.config import Settings
    >>> path = train_assistant(Settings(data_dir="/tmp/shop"))  # doctest: +SKIP
    >>> TextClassifier.load(path).predict(["我要退款"])[0].label  # doctest: +SKIP
    'get_refund'
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shoplm.assistant.classifier import TextClassifier
from shoplm.config import Settings

#: the intents the dialogue knows (the shipped training set has phrasings of each)
INTENTS = (
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "check_cancellation_fee",
    "check_invoice",
    "check_payment_methods",
    "check_refund_policy",
    "complaint",
    "contact_customer_service",
    "contact_human_agent",
    "create_account",
    "delete_account",
    "delivery_options",
    "delivery_period",
    "edit_account",
    "get_invoice",
    "get_refund",
    "newsletter_subscription",
    "payment_issue",
    "place_order",
    "recover_password",
    "registration_problems",
    "review",
    "set_up_shipping_address",
    "switch_account",
    "track_order",
    "track_refund",
    "product_question",
    "recommendation_request",
    "chitchat",
)


def default_model_path(settings: Settings) -> Path:
    """Where :func:`train_assistant` saves the intent model: ``models_dir/assistant/intents``."""
    return settings.models_dir / "assistant" / "intents"


def training_examples() -> tuple[list[str], list[str]]:
    """The shipped (text, intent) training pairs.

    Example:
        >>> texts, labels = training_examples()
        >>> len(set(labels))
        30
    """
    source = resources.files("shoplm.assistant").joinpath("data/intents.csv")
    texts: list[str] = []
    labels: list[str] = []
    with source.open("r", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["text"])
            labels.append(row["intent"])
    return texts, labels


def train_default_assistant_model(
    settings: Settings, *, texts: Sequence[str] | None = None, labels: Sequence[str] | None = None
) -> TextClassifier:
    """A :class:`TextClassifier` fitted on the shipped phrasings (or on ``texts``/``labels``).

    Embeddings go through the settings' cache, so a second training costs only the head.
    """
    if texts is None or labels is None:
        texts, labels = training_examples()
    clf = TextClassifier(encoder=settings.encoder.name, ngram_features=20_000, fallback_threshold=0.0)
    clf.use(settings)
    return clf.fit(list(texts), list(labels))


@dataclass(frozen=True)
class AssistantTrainResult:
    path: Path
    seconds: float
    examples: int


def train_assistant(settings: Settings, *, path: Path | None = None) -> AssistantTrainResult:
    """Train the intent model and save it (estimator contract) under the models dir.

    The command ``shoplm train assistant`` calls this.
    """
    started = time.perf_counter()
    texts, labels = training_examples()
    model = train_default_assistant_model(settings, texts=texts, labels=labels)
    target = path or default_model_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target)
    return AssistantTrainResult(target, time.perf_counter() - started, len(texts))
