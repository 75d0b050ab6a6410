"""Ad copy: distinct variants per channel, every constraint checked and reported, model drafts repaired or dropped."""

from __future__ import annotations

import json

import httpx
import pytest

from shoplm.errors import InputError
from shoplm.lm.generator import AD_STYLES, OpenAIChatGenerator
from shoplm.marketing.adcopy import AdItem, check_ad, text_language, write_ad_variants
from shoplm.marketing.adcopy_bench import inject_claim

EN = AdItem(
    "I00001",
    "Flexa Deluxe Resistance Bands - Black, 10mm",
    "Ideal for home and office. Free shipping on every order.",
    "Sports > Fitness",
    "Flexa",
    439.0,
    "CNY",
    "en",
    {"color": "Black", "material": "TPE", "size": "10mm"},
)
ZH = AdItem(
    "I00002",
    "步履 环保透气网面帆布鞋 黑色 39码",
    "采用真皮材质，经久耐用。适合出行通勤。",
    "Fashion > Shoes",
    "步履",
    1069.0,
    "CNY",
    "zh",
    {"color": "黑色", "material": "真皮", "size": "39码"},
)


@pytest.mark.parametrize("item", [EN, ZH], ids=["en", "zh"])
@pytest.mark.parametrize("channel", ["search", "feed", "push"])
def test_template_variants_are_distinct_and_meet_every_constraint(item: AdItem, channel: str) -> None:
    result = write_ad_variants(item, channel, n=5, must_mention=["brand", "price"])
    assert result.ok, result.to_dict()
    assert result.language == item.language and len(result.variants) == 5
    assert len({v.text for v in result.variants}) == 5 and len({v.style for v in result.variants}) == 5
    passing = [v for v in result.variants if v.ok]
    assert passing and passing == result.variants[: len(passing)]  # passing variants come first
    for variant in passing:
        assert len(variant.text) <= result.limit and item.brand in variant.text
        assert "439" in variant.text or "1069" in variant.text
        assert set(variant.checks) == {"length", "banned", "must_mention", "language", "claims"}


def test_too_much_to_mention_in_a_push_is_reported_not_hidden() -> None:
    everything = ["brand", "price", "color", "material", "size", "title"]
    limits = {"push": {"zh": 12, "en": 20}}
    result = write_ad_variants(ZH, "push", n=3, must_mention=everything, limits=limits)
    assert not result.ok and result.variants  # the best tries are still shown ...
    assert any(u.startswith("length: the must-mention values alone") for u in result.unmet)
    assert all(v.violations for v in result.variants)  # ... each with what it breaks
    assert "no variant meets every constraint" in result.message


def test_an_attribute_the_item_lacks_is_unmet() -> None:
    bare = AdItem("I9", "Plain Mug", brand="Acme", price=9.5, currency="USD", language="en")
    result = write_ad_variants(bare, "feed", n=2, must_mention=["material"])
    assert not result.ok and result.unmet[0] == "must_mention material: the item has no material"
    assert all(v.checks["must_mention"].detail == "material" for v in result.variants)


def test_banned_words_are_left_out_when_they_can_be_and_reported_when_not() -> None:
    result = write_ad_variants(EN, "feed", n=3, banned=["flexa"])  # a banned brand: case-insensitive
    assert result.ok and all("Flexa" not in v.text for v in result.variants)
    stuck = write_ad_variants(EN, "feed", n=3, banned=["Resistance"])  # in the product name itself
    assert not stuck.ok and stuck.unmet == ["banned: no variant meets it (Resistance)"]


def test_the_claim_check_flags_invented_numbers_superlatives_and_promises() -> None:
    checks = check_ad("Flexa bands, the best! Now ¥299, ships in 2 days.", EN, limit=200, language="en")
    assert not checks["claims"].ok
    for claim in ("¥299", "2 days", "best"):
        assert claim in checks["claims"].detail
    # A promise the item's own facts make is not invented: this description offers free shipping.
    assert check_ad("Flexa bands, free shipping. ¥439.", EN, limit=200, language="en")["claims"].ok
    zh = check_ad("步履帆布鞋，全场包邮，同类第一！", ZH, limit=200, language="zh")["claims"]
    assert not zh.ok and "包邮" in zh.detail and "第一" in zh.detail
    # A number the facts hold for something else grounds no percentage, period or amount.
    sized = AdItem("I3", "Lamp 30cm", brand="Lux", price=30.0, currency="CNY", attributes={"size": "30cm"})
    assert check_ad("Lux lamp ¥30, save 30% today, 30 days only.", sized, limit=200, language="en")[
        "claims"
    ].detail == ("30%, 30 days")
    for kind in ("price", "percent", "period", "superlative", "free_shipping"):
        faked = inject_claim("步履帆布鞋。", kind, ZH, "zh")
        assert not check_ad(faked, ZH, limit=200, language="zh")["claims"].ok, kind


def test_length_and_language_checks() -> None:
    checks = check_ad("步履帆布鞋，仅需¥1069！", ZH, limit=5, language="en", must_mention=["price"])
    assert not checks["length"].ok and checks["length"].detail == "14 characters, the limit is 5"
    assert not checks["language"].ok and checks["must_mention"].ok
    assert text_language("Chronix GPS定位运动手环") == "zh" and text_language("智跑 Fitness Band") == "en"


def test_a_ctr_scorer_orders_the_variants() -> None:
    def scorer(item: AdItem, channel: str, texts: list[str]) -> list[float]:
        return [-len(t) for t in texts]  # shorter is "better", as a stand-in for a CTR model

    result = write_ad_variants(EN, "feed", n=4, scorer=scorer)
    scores = [v.score for v in result.variants]
    assert scores == sorted(scores, reverse=True) and {v.score_source for v in result.variants} == {"ctr"}


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="search, feed, push"):
        write_ad_variants(EN, "tv")
    with pytest.raises(InputError, match="between 1 and 10"):
        write_ad_variants(EN, "feed", n=0)
    with pytest.raises(InputError, match="unknown attribute 'weight'"):
        write_ad_variants(EN, "feed", must_mention=["weight"])
    with pytest.raises(InputError, match="zh or en"):
        write_ad_variants(EN, "feed", language="fr")


def test_model_drafts_are_checked_repaired_once_or_dropped() -> None:
    calls: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body)
        user = body["messages"][1]["content"]
        if "Rewrite this ad" not in user:
            text = (
                "1. Flexa bands for home and office, ¥439.\n"
                "2. The best Flexa bands ever, ¥399!\n"
                "3. Flexa bands: " + "very " * 40 + "good."
            )
        elif "best" in user:
            text = "Flexa bands, made of TPE, ¥439."  # the repair of draft 2 is clean
        else:
            text = "Flexa bands: " + "still " * 40 + "too long."  # draft 3 stays too long: dropped
        return httpx.Response(200, json={"choices": [{"message": {"content": text}}]})

    generator = OpenAIChatGenerator("http://stub/v1", transport=httpx.MockTransport(handler))
    result = write_ad_variants(EN, "feed", n=3, must_mention=["price"], generator=generator)
    model = [v for v in result.variants if v.style == "model"]
    assert [v.text for v in model] == ["Flexa bands for home and office, ¥439.", "Flexa bands, made of TPE, ¥439."]
    assert [v.repaired for v in model] == [False, True] and all(v.ok for v in model)
    assert len(result.dropped) == 1 and result.dropped[0]["violations"][0].startswith("length:")
    assert len(result.variants) == 3 and result.variants[2].generator == "template"  # templates fill the gap
    assert "Write 3 different ads" in calls[0]["messages"][1]["content"] and len(calls) == 3


def test_every_template_style_renders() -> None:
    texts = {style: write_ad_variants(EN, "feed", n=1, styles=[style]).variants[0].text for style in AD_STYLES}
    assert len(set(texts.values())) == len(AD_STYLES)
    assert texts["question"].startswith("Looking for") and texts["brand"].startswith("New from Flexa")
