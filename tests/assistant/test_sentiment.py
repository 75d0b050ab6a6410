"""The assistant's sentiment model: shipped data, held-out messages, training and saving, use in the dialogue.

The TextClassifier's estimator contract is tested once, in test_classifier.py; here the sentiment
model is checked to be such an estimator on disk (saved by ``train_assistant``, loaded back by
:class:`~shoplm.estimator.Estimator`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from shoplm.app.assistant import Assistant
from shoplm.assistant.emotion import NEGATIVE, Sentiment, detect_emotion
from shoplm.assistant.training import (
    SENTIMENT_LABELS,
    default_sentiment_path,
    relabel_sentiment,
    sentiment_examples,
    sentiment_examples_from_file,
    train_assistant,
)
from shoplm.errors import InputError, ModelFileError
from shoplm.estimator import Estimator
from shoplm.lm.classify.classifier import TextClassifier
from tests.assistant.dialogue_fixtures import Kit, make_bot
from tests.assistant.dialogue_shop import Shop
from tests.lm.fakes import CountingEncoder

# Written for this test, not taken from (nor copied into) sentiment.csv.
HELD_OUT = [
    ("It's been two weeks and my kettle still hasn't shipped, I'm really unhappy about it.", "negative"),
    ("I had to ask three times before anyone even looked at my return.", "negative"),
    ("The sandals fell apart on the first walk, money down the drain.", "negative"),
    ("快递半个月了还没到，一直没人给我答复。", "negative"),
    ("这是我第三次联系你们了，每次都说会处理，结果什么都没变。", "negative"),
    ("枕头收到就塌了，跟详情页说的完全两回事。", "negative"),
    ("Can I change the delivery date for order O0003141?", "neutral"),
    ("Which sizes does the linen shirt come in?", "neutral"),
    ("请问这款空气炸锅有几种颜色？", "neutral"),
    ("订单O0002468的发票可以开个人抬头吗？", "neutral"),
    ("我想把收货时间改到周末，可以吗？", "neutral"),
    ("The new kettle works great, thanks for the quick replacement.", "positive"),
    ("That was quick, thank you for your help!", "positive"),
    ("谢谢，保温杯收到了，很好用。", "positive"),
    ("客服回复很及时，非常满意。", "positive"),
    ("包装很用心，下次还来。", "positive"),
]
# Unhappy without a word of the anger lexicon: only the model can see these.
# (Neither is a "complaint" to the intent model, which would hand over at once.)
UNHAPPY = "Order O0000101 still hasn't shipped after all this time and I hear nothing from you."
UNHAPPY_AGAIN = "Cancel order O0000101, it has taken far too long and I hear nothing from you."


def _rows() -> list[dict[str, str]]:
    source = resources.files("shoplm.assistant").joinpath("data/sentiment.csv")
    with source.open("r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_shipped_set_is_bilingual_balanced_and_distinct() -> None:
    rows = _rows()
    texts, labels = sentiment_examples()
    assert len(texts) == len(rows) >= 400 and labels == [r["label"] for r in rows]
    assert set(labels) == set(SENTIMENT_LABELS)
    counts = Counter((r["label"], r["language"]) for r in rows)
    assert all(counts[(label, lang)] >= 40 for label in SENTIMENT_LABELS for lang in ("en", "zh")), counts
    for row in rows:  # the language column is right: Chinese rows have Chinese characters, English ones none
        assert bool(re.search(r"[\u4e00-\u9fff]", row["text"])) == (row["language"] == "zh"), row
    assert len(set(texts)) == len(texts), "duplicate texts"
    assert not {t for t, _ in HELD_OUT} & set(texts), "a held-out test sentence is in the training set"


def test_held_out_messages_are_separated(kit: Kit) -> None:
    texts = [t for t, _ in HELD_OUT]
    gold = [g for _, g in HELD_OUT]
    model = kit.sentiment
    assert model.labels == list(SENTIMENT_LABELS)
    proba = model.predict_proba(texts)
    predicted = [model.labels[i] for i in proba.argmax(axis=1)]
    assert sum(p == g for p, g in zip(predicted, gold, strict=True)) >= len(gold) - 1, list(
        zip(texts, predicted, strict=True)
    )
    # What escalation reads is P(negative): every negative message above every other one, with a margin.
    negative = proba[:, model.labels.index(NEGATIVE)]
    is_negative = np.array([g == NEGATIVE for g in gold])
    assert negative[is_negative].min() >= 0.8, negative
    assert negative[~is_negative].max() < 0.5, negative


def test_sentiment_reading_adds_a_cue_to_the_lexicon() -> None:
    sure, unsure = Sentiment("negative", 0.95), Sentiment("negative", 0.6)
    assert detect_emotion("nobody told me anything", sentiment=sure).label == "frustrated"
    assert detect_emotion("nobody told me anything", sentiment=unsure).label == "neutral"
    # a strong lexicon word (2 points) plus the model's cue reaches anger (3)
    assert detect_emotion("the worst week of waiting", sentiment=sure).angry
    assert not detect_emotion("the worst week of waiting", sentiment=unsure).angry
    assert detect_emotion("nobody told me anything", sentiment=sure).sentiment == sure


def test_relabel_names_the_negative_class() -> None:
    assert relabel_sentiment([0, 1, 0], negative_label=0) == ["negative", "1", "negative"]
    assert relabel_sentiment(["unhappy", "fine"], negative_label="unhappy") == ["negative", "fine"]
    with pytest.raises(InputError, match="--negative-label"):
        relabel_sentiment(["pos", "neg"], negative_label="negative")
    with pytest.raises(InputError, match="every row"):
        relabel_sentiment(["neg", "neg"], negative_label="neg")
    with pytest.raises(InputError, match="the labels include"):
        relabel_sentiment(["negative", "bad", "ok"], negative_label="bad")


def test_a_shops_file_without_a_negative_class_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "chats.csv"
    path.write_text("message,mood\nwhere is my parcel,calm\nthanks a lot,happy\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        sentiment_examples_from_file(path, text_col="message", label_col="mood")
    message = str(caught.value)
    assert "chats.csv" in message and "'calm'" in message and "--negative-label" in message
    texts, labels = sentiment_examples_from_file(path, text_col="message", label_col="mood", negative_label="calm")
    assert texts == ["where is my parcel", "thanks a lot"] and labels == ["negative", "happy"]
    with pytest.raises(InputError, match="missing column"):
        sentiment_examples_from_file(path)  # columns text/label are not there


def test_train_assistant_writes_both_models(shop: Shop, kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    result = train_assistant(shop.settings)
    assert (result.path / "meta.json").is_file() and (result.sentiment_path / "meta.json").is_file()
    assert result.sentiment_path == default_sentiment_path(shop.settings) != result.path
    assert result.sentiment_source == "shipped" and result.sentiment_examples == len(sentiment_examples()[0])
    assert result.sentiment_labels == list(SENTIMENT_LABELS)
    loaded = Estimator.load(result.sentiment_path)  # the estimator contract's loader
    assert isinstance(loaded, TextClassifier)
    texts = [t for t, _ in HELD_OUT]
    loaded.use(encoder=kit.encoder)
    np.testing.assert_allclose(loaded.predict_proba(texts), kit.sentiment.predict_proba(texts), atol=1e-5)

    # A default Assistant loads what was saved.
    bot = Assistant.load(shop.store, shop.settings, encoder=kit.encoder, policy_index=kit.policies)
    assert bot.models.sentiment is not None and bot.models.sentiment.labels == list(SENTIMENT_LABELS)


def test_a_missing_model_is_an_error_that_names_the_command(shop: Shop, kit: Kit) -> None:
    # Models load explicitly: nothing is trained as a side effect of loading or answering.
    path = default_sentiment_path(shop.settings)
    assert not path.exists()
    with pytest.raises(ModelFileError, match="shoplm train assistant") as caught:
        Assistant.load(shop.store, shop.settings, classifier=kit.classifier, encoder=kit.encoder)
    assert "sentiment" in str(caught.value) and not path.exists()
    with pytest.raises(ModelFileError, match="no intent model"):
        Assistant.load(shop.store, shop.settings, sentiment=kit.sentiment, encoder=kit.encoder)


def test_a_turn_embeds_the_message_once_and_reports_its_sentiment(shop: Shop, kit: Kit) -> None:
    # Counted in front of the disk cache: without the turn's shared vectors the intent model, the
    # sentiment model and retrieval would each ask the encoder again (three e5 runs uncached).
    counting = CountingEncoder(kit.encoder)
    bot = Assistant.load(
        shop.store,
        shop.settings,
        classifier=kit.classifier,
        sentiment=kit.sentiment,
        encoder=counting,
        policy_index=kit.policies,
    )
    messages = [UNHAPPY, "How much are the Trail Running Shoes?", "What is your refund policy?"]
    for n, text in enumerate(messages):
        turn = bot.reply(f"c{n}", "U1", text).to_dict()
        assert set(turn["sentiment"]) == {"label", "negative"} and 0.0 <= turn["sentiment"]["negative"] <= 1.0
        assert counting.asked.count(("query", text)) == 1, counting.asked
    assert bot.reply("c0", "U1", UNHAPPY).sentiment.label == NEGATIVE  # type: ignore[union-attr]


def test_the_previous_messages_sentiment_survives_a_restart(shop: Shop, kit: Kit) -> None:
    first = make_bot(shop, kit).reply("c1", "U1", UNHAPPY)
    assert not first.escalated and first.sentiment is not None and first.sentiment.negative >= 0.8
    stored = make_bot(shop, kit).state("c1")["sentiments"]
    assert stored[-1]["label"] == NEGATIVE and stored[-1]["negative"] >= 0.8

    restarted = make_bot(shop, kit)  # a new process: only the store remembers the first message
    second = restarted.reply("c1", "U1", UNHAPPY_AGAIN)
    assert second.escalated and second.emotion == "frustrated"
    escalation = restarted.state("c1")["escalation"]
    assert escalation["reason"] == "negative_sentiment"
    assert [s["label"] for s in escalation["sentiments"][-2:]] == [NEGATIVE, NEGATIVE]
    # The same message in a conversation without an unhappy message before it is no reason.
    alone = restarted.reply("c2", "U1", UNHAPPY_AGAIN)
    assert not alone.escalated and any(a.outcome == "proposed" for a in alone.actions)


def test_a_confirmation_answer_ends_a_negative_run(shop: Shop, kit: Kit) -> None:
    bot = make_bot(shop, kit)
    proposed = bot.reply("c1", "U1", UNHAPPY_AGAIN)
    assert proposed.sentiment is not None and proposed.sentiment.negative >= 0.8
    assert any(a.outcome == "proposed" for a in proposed.actions) and not proposed.escalated
    confirmed = bot.reply("c1", "U1", "yes")
    assert confirmed.sentiment is None and any(a.outcome == "done" for a in confirmed.actions)
    assert bot.state("c1")["sentiments"][-1] is None
    assert not bot.reply("c1", "U1", UNHAPPY).escalated


def test_a_model_without_a_negative_class_leaves_the_lexicon_alone(
    shop: Shop, kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    odd = TextClassifier(ngram_features=0, calibration_folds=0).use(encoder=kit.encoder)
    odd.fit(["great", "太好了", "awful", "太差了"], ["good", "good", "bad", "bad"])
    with caplog.at_level(logging.ERROR, logger="shoplm.assistant.models"):
        bot = Assistant.load(
            shop.store,
            shop.settings,
            classifier=kit.classifier,
            sentiment=odd,
            encoder=kit.encoder,
            policy_index=kit.policies,
        )
    calm = bot.reply("c1", "U1", UNHAPPY)
    assert calm.sentiment is None and not calm.escalated
    assert "no 'negative' class" in caplog.text
    assert bot.reply("c1", "U1", "This is RIDICULOUS!!! I am fed up with your useless service").escalated
