"""Churn features, labels, the churn model, its warnings with reasons, and its fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from shoplm.customers.churn import ChurnModel, default_cutoffs, reason_sentences
from shoplm.customers.churn_features import churn_features, churn_labels
from shoplm.errors import InputError
from tests.customers.synthetic import retail_frame
from tests.estimator_contract import EstimatorContract

FRAME = retail_frame(n_customers=120, days=300, seed=0)
SMALL = retail_frame(n_customers=40, days=200, seed=1)


class TestChurnModelContract(EstimatorContract):
    def make_estimator(self) -> ChurnModel:
        return ChurnModel(n_components=4, bgnbd_features=False, n_estimators=20, max_cutoffs=2)

    def fit_estimator(self, estimator: ChurnModel) -> ChurnModel:
        return estimator.fit(SMALL)

    def probe(self, estimator: ChurnModel) -> np.ndarray:
        return estimator.predict_proba(SMALL, "2011-05-01").to_numpy()


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return ChurnModel(n_components=4, n_estimators=60, num_leaves=7, min_child_samples=10).fit(
        FRAME[FRAME["timestamp"] < "2011-07-01"]
    )


def test_features_use_only_lines_before_the_cutoff() -> None:
    cutoff = pd.Timestamp("2011-04-01")
    before = churn_features(FRAME[FRAME["timestamp"] < cutoff], cutoff)
    everything = churn_features(FRAME, cutoff)
    pd.testing.assert_frame_equal(before, everything)
    assert (everything["recency_days"] >= 0).all()
    one_timer = everything[everything["purchase_days"] == 1]
    assert one_timer["gap_mean"].isna().all()  # no gap to speak of: missing, not zero


def test_labels_mark_customers_silent_over_the_horizon() -> None:
    labels = churn_labels(FRAME, "2011-04-01", horizon_days=90)
    bought_after = set(
        FRAME.loc[(FRAME["timestamp"] >= "2011-04-01") & (FRAME["timestamp"] < "2011-06-30"), "customer_id"]
    )
    assert labels.index.is_monotonic_increasing
    for customer, churned in labels.items():
        assert churned == (customer not in bought_after)


def test_default_cutoffs_leave_history_before_and_a_full_window_after() -> None:
    cutoffs = default_cutoffs(FRAME, horizon_days=90)
    assert cutoffs[0] >= FRAME["timestamp"].min() + pd.Timedelta(days=30)
    assert cutoffs[-1] + pd.Timedelta(days=90) <= FRAME["timestamp"].max().normalize() + pd.Timedelta(days=1)
    assert {c.day for c in cutoffs} == {1, 15}
    assert default_cutoffs(FRAME.iloc[:0]) == []


def test_learns_who_churns_on_a_later_cutoff(model: ChurnModel) -> None:
    # Trained on data before July; scored in mid-July, on labels it never saw.
    probability = model.predict_proba(FRAME, "2011-07-15")
    labels = churn_labels(FRAME, "2011-07-15").reindex(probability.index)
    assert model.fallback_ == ""
    assert model.cutoffs_[-1] == "2011-04-01"
    assert all(pd.Timestamp(c) + pd.Timedelta(days=90) <= pd.Timestamp("2011-07-01") for c in model.cutoffs_)
    assert roc_auc_score(labels, probability) > 0.85
    assert probability.between(0, 1).all()


def test_warnings_come_sorted_with_reasons_from_the_customers_figures(model: ChurnModel) -> None:
    warnings = model.warnings(FRAME, "2011-07-15", top=5)
    assert len(warnings) == 5
    assert [w.probability for w in warnings] == sorted((w.probability for w in warnings), reverse=True)
    top = warnings[0]
    assert 1 <= len(top.reasons) <= 3 and len(top.reasons) == len(top.reason_codes)
    features = model.features(FRAME, "2011-07-15").loc[top.customer_id]
    assert top.as_dict()["cutoff"] == "2011-07-15"
    if "recency" in top.reason_codes:
        assert f"no purchase for {features['recency_days']:.0f} days" in top.reasons[top.reason_codes.index("recency")]
    one = model.warning_for(FRAME, top.customer_id, "2011-07-15")
    assert one is not None and one.probability == pytest.approx(top.probability)
    assert model.warning_for(FRAME, "no-such-customer", "2011-07-15") is None
    risky = model.warnings(FRAME, "2011-07-15", min_probability=0.5)
    assert all(w.probability >= 0.5 for w in risky)


def test_reason_sentences_quote_the_numbers() -> None:
    row = pd.Series(
        {"recency_days": 94.0, "gap_mean": 30.0, "spend_90d": 40.0, "spend_prev_90d": 100.0, "invoices_90d": 1.0,
         "invoices_prev_90d": 4.0, "purchase_days": 6.0, "return_share": 0.2, "tenure_days": 300.0}
    )  # fmt: skip
    sentences = reason_sentences(row)
    assert sentences["recency"] == "no purchase for 94 days, 3.1x your usual gap (30 days)"
    assert sentences["spend"].startswith("spend down 60% vs the previous 90 days")
    assert sentences["frequency"] == "1 order in the last 90 days, against 4 in the 90 before"
    assert sentences["returns"] == "returned 20% of the value bought"
    assert "tenure" not in sentences
    single = reason_sentences(pd.Series({"recency_days": 12.0, "gap_mean": np.nan, "purchase_days": 1.0}))
    assert single["recency"] == "no purchase for 12 days since the first and only one"
    assert "frequency" not in single and "spend" not in single


def test_too_short_a_history_falls_back_and_still_warns() -> None:
    young = FRAME[FRAME["timestamp"] < "2011-03-01"]  # two months: no complete 90-day window
    fallback = ChurnModel(n_components=4).fit(young)
    assert "too little history" in fallback.fallback_
    warnings = fallback.warnings(young, top=3)
    assert len(warnings) == 3 and all(0 <= w.probability <= 1 and w.reasons for w in warnings)
    assert fallback.feature_importance() == {}


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no transactions"):
        ChurnModel().fit(FRAME.iloc[:0])
    with pytest.raises(InputError, match="lack columns: item_id"):
        ChurnModel().fit(FRAME.drop(columns="item_id"))
    with pytest.raises(InputError, match="horizon_days"):
        ChurnModel(horizon_days=0).fit(FRAME)
    with pytest.raises(InputError, match="cutoff must be a date"):
        churn_features(FRAME, "not a date")
