"""The assistant's two models: intents (``assistant/data/intents.csv``) and sentiment (``sentiment.csv``).

Both shipped sets were written for shoplm, in Chinese and English, so every installation trains
its models in seconds without any download:

* intents: 34 intents, the 27 Bitext-style customer-support intents plus ``product_question``,
  ``stock_question``, ``return_item``, ``coupon``, ``warranty``, ``recommendation_request`` and
  ``chitchat``, at least 40 messages per intent and language written in many registers (see
  ``data/INTENTS.md``, the labelling guide);
* sentiment of customer-support messages: ``negative`` (complaints, frustration, disappointment,
  said with or without angry words), ``neutral`` (questions and requests about orders, calm
  problem reports) and ``positive`` (thanks, praise). The dialogue escalates on sustained
  negative sentiment, so only P(negative) decides anything.

A shop can train on its own labelled chats instead (``texts``/``labels``, or a sentiment file
with :func:`sentiment_examples_from_file`).

Example:
    >>> from shoplm.config import Settings
    >>> result = train_assistant(Settings(data_dir="/tmp/shop"))  # doctest: +SKIP
    >>> TextClassifier.load(result.path).predict(["我要退款"])[0].label  # doctest: +SKIP
    'get_refund'
    >>> TextClassifier.load(result.sentiment_path).predict(["三封邮件都没人回"])[0].label  # doctest: +SKIP
    'negative'
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shoplm.assistant.emotion import NEGATIVE
from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.lm.classify.classifier import Label, TextClassifier
from shoplm.lm.classify.data import load_labelled
from shoplm.lm.factory import E5_NAMES

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
    "stock_question",
    "return_item",
    "coupon",
    "warranty",
    "recommendation_request",
    "chitchat",
)


# Three sentiment classes rather than "negative / not negative": thanks and praise read very
# differently from order questions (short, exclamatory, full of 谢谢 / thanks), and lumping them
# into one class makes it wide and fuzzy, so calm questions drift towards the negative border.
# With its own class each stays compact; escalation still uses P(negative) only.
#: the labels of the shipped sentiment set
SENTIMENT_LABELS = (NEGATIVE, "neutral", "positive")


def default_model_path(settings: Settings) -> Path:
    """Where :func:`train_assistant` saves the intent model: ``models_dir/assistant/intents``."""
    return settings.models_dir / "assistant" / "intents"


def default_sentiment_path(settings: Settings) -> Path:
    """Where :func:`train_assistant` saves the sentiment model: ``models_dir/assistant/sentiment``."""
    return settings.models_dir / "assistant" / "sentiment"


def _shipped(name: str, label_col: str) -> tuple[list[str], list[str]]:
    source = resources.files("shoplm.assistant").joinpath(f"data/{name}")
    texts: list[str] = []
    labels: list[str] = []
    with source.open("r", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["text"])
            labels.append(row[label_col])
    return texts, labels


def training_examples() -> tuple[list[str], list[str]]:
    """The shipped (text, intent) training pairs.

    Example:
        >>> texts, labels = training_examples()
        >>> len(set(labels))
        34
    """
    return _shipped("intents.csv", "intent")


def sentiment_examples() -> tuple[list[str], list[str]]:
    """The shipped (text, sentiment) pairs of customer-support messages, Chinese and English.

    Example:
        >>> texts, labels = sentiment_examples()
        >>> sorted(set(labels))
        ['negative', 'neutral', 'positive']
    """
    return _shipped("sentiment.csv", "label")


def relabel_sentiment(labels: Sequence[Label], negative_label: Label = NEGATIVE) -> list[str]:
    """A shop's sentiment labels with its negative one renamed to ``"negative"`` (the others kept).

    The dialogue looks for the ``"negative"`` class, whatever the shop called it (``0``, ``neg``,
    ``unhappy``).

    Raises:
        InputError: no row has ``negative_label``, every row has it, or another label is
            already called ``"negative"``.

    Example:
        >>> relabel_sentiment([0, 1, 1], negative_label=0)
        ['negative', '1', '1']
    """
    wanted = str(negative_label).strip()
    names = [str(label).strip() for label in labels]
    found = sorted(set(names))
    shown = ", ".join(map(repr, found[:10])) + (", ..." if len(found) > 10 else "")
    if wanted not in found:
        raise InputError(
            f"no row has the negative label {wanted!r} (the labels are {shown}); "
            "name the label that means negative with --negative-label"
        )
    if len(found) < 2:
        raise InputError(f"every row has the negative label {wanted!r}: add texts that are not negative")
    if wanted != NEGATIVE and NEGATIVE in found:
        raise InputError(
            f"the labels include {NEGATIVE!r} but the negative label is {wanted!r}; "
            f"pass --negative-label {NEGATIVE} or rename that label"
        )
    return [NEGATIVE if name == wanted else name for name in names]


def sentiment_examples_from_file(
    path: str | Path, *, text_col: str = "text", label_col: str = "label", negative_label: Label = NEGATIVE
) -> tuple[list[str], list[str]]:
    """A shop's labelled sentiment file (read by :func:`~shoplm.lm.classify.data.load_labelled`), relabelled.

    Raises:
        InputError: unreadable file, missing column, or no negative class (see :func:`relabel_sentiment`).
    """
    frame = load_labelled(path, text_col, label_col)
    try:
        labels = relabel_sentiment(frame["label"].tolist(), negative_label)
    except InputError as exc:
        raise InputError(exc.message, path=path, field=label_col) from None
    return [str(t) for t in frame["text"].tolist()], labels


#: how ``train_assistant`` trains its models: a head on frozen embeddings, or LoRA fine-tuning
TRAIN_MODES = ("query", "lora")


def _fit(settings: Settings, texts: Sequence[str], labels: Sequence[str], mode: str = "query") -> TextClassifier:
    # Fallback off: the dialogue reads the probabilities and applies its own thresholds.
    # LoRA: 3 epochs, since a shop's labelled set is small (hundreds of texts, seconds per epoch).
    lora = {"mode": "lora", "lora_epochs": 3} if mode == "lora" else {}
    clf = TextClassifier(encoder=settings.encoder.name, ngram_features=20_000, fallback_threshold=0.0, **lora)
    clf.use(settings)
    return clf.fit(list(texts), list(labels))


def train_default_assistant_model(
    settings: Settings,
    *,
    texts: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    mode: str = "query",
) -> TextClassifier:
    """A :class:`TextClassifier` fitted on the shipped phrasings (or on ``texts``/``labels``).

    Embeddings go through the settings' cache, so a second training costs only the head.
    ``mode="lora"`` fine-tunes the encoder instead (see :data:`TRAIN_MODES`).
    """
    if texts is None or labels is None:
        texts, labels = training_examples()
    return _fit(settings, texts, labels, mode)


def train_default_sentiment_model(
    settings: Settings,
    *,
    texts: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    mode: str = "query",
) -> TextClassifier:
    """The sentiment :class:`TextClassifier` fitted on the shipped messages (or on ``texts``/``labels``).

    Same features as the intent model (query embeddings, cached, plus character n-grams), so a
    turn embeds the customer's message once for both.
    """
    if texts is None or labels is None:
        texts, labels = sentiment_examples()
    return _fit(settings, texts, labels, mode)


@dataclass(frozen=True)
class AssistantTrainResult:
    """What :func:`train_assistant` wrote: the intent model (``path``) and the sentiment model."""

    path: Path
    seconds: float
    examples: int
    sentiment_path: Path
    sentiment_examples: int
    #: the sentiment model's labels (``"negative"`` among them)
    sentiment_labels: list[Label]
    #: ``"shipped"``, or the shop's sentiment file
    sentiment_source: str


def train_assistant(
    settings: Settings,
    *,
    path: Path | None = None,
    sentiment_path: Path | None = None,
    sentiment_file: str | Path | None = None,
    text_col: str = "text",
    label_col: str = "label",
    negative_label: Label = NEGATIVE,
    mode: str = "query",
) -> AssistantTrainResult:
    """Train the intent and the sentiment model and save both (estimator contract) under the models dir.

    The sentiment model learns from the shipped messages, or from ``sentiment_file`` (columns
    ``text_col``/``label_col``; the rows labelled ``negative_label`` are the negative class).
    The command ``shoplm train assistant`` calls this. ``mode="lora"`` fine-tunes
    multilingual-e5-small with LoRA for each model (minutes instead of seconds; each model then
    runs its own encoder in a turn, one more forward pass per model).

    Raises:
        InputError: the sentiment file is unreadable or has no negative class, or the mode is
            unknown or needs another encoder (checked before any training).
    """
    if mode not in TRAIN_MODES:
        raise InputError(f"unknown training mode {mode!r}: use {' or '.join(TRAIN_MODES)}")
    if mode == "lora" and settings.encoder.name not in E5_NAMES:
        raise InputError(
            f"LoRA fine-tunes multilingual-e5-small: set encoder.name = 'e5-onnx' (not {settings.encoder.name!r})"
        )
    started = time.perf_counter()
    if sentiment_file is not None:
        sentiment_texts, sentiment_labels = sentiment_examples_from_file(
            sentiment_file, text_col=text_col, label_col=label_col, negative_label=negative_label
        )
        source = str(sentiment_file)
    else:
        sentiment_texts, sentiment_labels = sentiment_examples()
        source = "shipped"
    texts, labels = training_examples()
    model = train_default_assistant_model(settings, texts=texts, labels=labels, mode=mode)
    sentiment = train_default_sentiment_model(settings, texts=sentiment_texts, labels=sentiment_labels, mode=mode)
    target = path or default_model_path(settings)
    sentiment_target = sentiment_path or default_sentiment_path(settings)
    for directory, trained in ((target, model), (sentiment_target, sentiment)):
        directory.parent.mkdir(parents=True, exist_ok=True)
        trained.save(directory)
    return AssistantTrainResult(
        target,
        time.perf_counter() - started,
        len(texts),
        sentiment_target,
        len(sentiment_texts),
        sentiment.labels,
        source,
    )
