"""BasketRules: FP-growth rules with support, confidence and lift; returns left out; persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.segments import BasketRules, basket_rules_summary
from tests.estimator_contract import EstimatorContract
from tests.segments.retail_fixture import line, paired_shop


class TestBasketRulesContract(EstimatorContract):
    def make_estimator(self) -> BasketRules:
        return BasketRules(min_support=0.1, min_confidence=0.2, scoring="confidence_lift")

    def fit_estimator(self, estimator: BasketRules) -> BasketRules:
        return estimator.fit(paired_shop(invoices=60))

    def probe(self, estimator: BasketRules) -> np.ndarray:
        scores = estimator.scores(["A"])
        return np.concatenate([estimator.lift_, estimator.confidence_, [scores.get("B", -1.0), estimator.n_rules]])


def test_items_always_together_give_a_certain_rule_with_lift() -> None:
    rules = BasketRules(min_support=0.1).fit(paired_shop())
    found = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in rules.top_rules(1000)}
    a_to_b = found[("A",), ("B",)]
    assert a_to_b["confidence"] == pytest.approx(1.0)
    assert a_to_b["support"] == pytest.approx(0.5)  # half the invoices hold the A+B pair
    assert a_to_b["lift"] == pytest.approx(2.0)  # P(B | A) = 1 against P(B) = 0.5
    assert a_to_b["antecedent_names"] == ["RED TEAPOT"]
    # A and C are never in one invoice: no rule links them.
    assert (("A",), ("C",)) not in found
    assert rules.recommend(["A"], k=1) == [("B", 1.0)]
    assert rules.recommend(["A", "B"], k=5) == []  # nothing left to complete
    assert rules.recommend(["unknown"], k=3) == []


def test_rules_frame_and_ordering() -> None:
    rules = BasketRules(min_support=0.1).fit(paired_shop())
    frame = rules.rules_frame()
    assert list(frame.columns) == ["antecedents", "consequents", "support", "confidence", "lift"]
    assert len(frame) == rules.n_rules > 0
    by_lift = [r["lift"] for r in rules.top_rules(50, by="lift")]
    assert by_lift == sorted(by_lift, reverse=True)
    by_support = [r["support"] for r in rules.top_rules(50, by="support")]
    assert by_support == sorted(by_support, reverse=True)
    with pytest.raises(InputError, match="lift, confidence or support"):
        rules.top_rules(3, by="novelty")


def test_returns_and_cancelled_invoices_are_not_baskets() -> None:
    shop = paired_shop(invoices=40)
    # Every "A" sold is also taken back in a cancelled invoice together with "X": were returns
    # counted, A -> X would be a rule.
    returns = [line(f"9{n}", "00001", item, 95.0, -1) for n in range(40) for item in ("A", "X")]
    rules = BasketRules(min_support=0.1).fit(pd.concat([shop, pd.DataFrame(returns)], ignore_index=True))
    assert rules.return_lines_ == 80
    assert rules.n_baskets_ == 40
    assert all("X" not in r["consequents"] + r["antecedents"] for r in rules.top_rules(1000))


def test_round_trip_keeps_recommendations(tmp_path) -> None:
    rules = BasketRules(min_support=0.1, max_len=2).fit(paired_shop())
    loaded = BasketRules.load(rules.save(tmp_path / "rules"))
    assert loaded.recommend(["C"], k=3) == rules.recommend(["C"], k=3)
    assert loaded.top_rules(5) == rules.top_rules(5)


def test_no_frequent_pair_gives_an_empty_model_that_still_saves(tmp_path) -> None:
    rows = [line(str(n), "1", f"I{n}", n) for n in range(10)]  # every invoice a different item
    rules = BasketRules(min_support=0.05).fit(pd.DataFrame(rows))
    assert rules.n_rules == 0 and rules.recommend(["I1"]) == []
    assert BasketRules.load(rules.save(tmp_path / "empty")).n_rules == 0


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(InputError, match="invoice_id"):
        BasketRules().fit(pd.DataFrame({"item_id": ["a"]}))
    with pytest.raises(InputError, match="every line is a return"):
        BasketRules().fit(pd.DataFrame([line("1", "1", "A", 0, -1)]))
    with pytest.raises(InputError, match="min_support"):
        BasketRules(min_support=0).fit(paired_shop())
    with pytest.raises(InputError, match="scoring"):
        BasketRules(scoring="magic").fit(paired_shop())


def test_summary_for_the_app_floor() -> None:
    summary = basket_rules_summary(paired_shop(), min_support=0.1, top=3)
    assert summary["baskets"] == 120 and summary["rules"] >= 4
    assert len(summary["top_rules"]) == 3
    assert {"antecedents", "consequents", "support", "confidence", "lift"} <= set(summary["top_rules"][0])
