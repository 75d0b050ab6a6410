"""RFM segments, k-means profile segments and their descriptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.segments import ProfileSegments, RFMSegments, describe_segments, rfm_name, segment_customers
from tests.estimator_contract import EstimatorContract
from tests.segments.retail_fixture import line, paired_shop


def regulars_and_lapsed(n: int = 20) -> pd.DataFrame:
    """``n`` customers of rising habit: customer i buys i + 1 times, last 100 - 5 i days before the end.

    Plus "star" (bought yesterday, every three days, big orders) and "gone" (once, long ago, small).
    """
    rows = []
    for i in range(n):
        for visit in range(i + 1):
            rows.append(line(f"{i}-{visit}", f"c{i:02d}", "F1", 100 - 5 * i - visit, price=10.0 + i))
    for visit in range(30):
        rows.append(line(f"s{visit}", "star", "A", 99 - 3 * visit, quantity=20, price=50.0))
    rows.append(line("g0", "gone", "C", 0, price=1.0))
    rows.append(line("end", "", "F2", 100))  # a guest's line: it sets the end date, no customer
    return pd.DataFrame(rows)


class TestRFMContract(EstimatorContract):
    def make_estimator(self) -> RFMSegments:
        return RFMSegments(as_of="2024-04-15")

    def fit_estimator(self, estimator: RFMSegments) -> RFMSegments:
        return estimator.fit(regulars_and_lapsed())

    def probe(self, estimator: RFMSegments) -> np.ndarray:
        found = estimator.assign(regulars_and_lapsed())
        return found[["R", "F", "M"]].to_numpy(np.float64).ravel()


class TestProfileContract(EstimatorContract):
    def make_estimator(self) -> ProfileSegments:
        return ProfileSegments(n_clusters=2, n_components=3, seed=1)

    def fit_estimator(self, estimator: ProfileSegments) -> ProfileSegments:
        return estimator.fit(paired_shop())

    def probe(self, estimator: ProfileSegments) -> np.ndarray:
        return estimator.assign(paired_shop())["cluster"].to_numpy(np.float64)


def test_frequent_recent_big_spender_is_a_champion_and_the_lapsed_one_hibernates() -> None:
    frame = regulars_and_lapsed()
    found = RFMSegments().fit(frame).assign(frame).set_index("customer_id")
    assert "" not in found.index  # guests are not segmented
    assert found.loc["star", ["R", "F", "M"]].tolist() == [5, 5, 5]
    assert found.loc["star", "segment"] == "champions"
    assert found.loc["gone", ["R", "F", "M"]].tolist() == [1, 1, 1]
    assert found.loc["gone", "segment"] == "hibernating"
    # Recency counts to midnight after the last line (day 100, 09:00): day 99 at 09:00 is 1.625 days before.
    assert found.loc["star", "recency_days"] == pytest.approx(1.625)
    assert found.loc["star", "frequency"] == 30


def test_assign_scores_a_new_frame_against_the_learned_quintiles() -> None:
    model = RFMSegments().fit(regulars_and_lapsed())
    newcomer = pd.DataFrame([line("n1", "newbie", "A", 100), line("x", "", "F2", 100)])
    found = model.assign(newcomer).set_index("customer_id")
    # One recent purchase of 2.0: most recent quintile, lowest frequency -> "new".
    assert found.loc["newbie", ["R", "F"]].tolist() == [5, 1]
    assert found.loc["newbie", "segment"] == "new"


def test_returns_lower_monetary_value() -> None:
    frame = pd.DataFrame([line("1", "a", "A", 0, 10, 5.0), line("2", "a", "A", 1, -4, 5.0), line("3", "b", "A", 1)])
    found = RFMSegments().fit(frame).assign(frame).set_index("customer_id")
    assert found.loc["a", "monetary"] == pytest.approx(30.0)
    assert found.loc["a", "frequency"] == 1  # the return is not a purchase


def test_the_named_grid() -> None:
    assert rfm_name(5, 5) == "champions" and rfm_name(4, 4) == "loyal" and rfm_name(2, 3) == "at risk"
    assert rfm_name(1, 5) == "cannot lose" and rfm_name(3, 3) == "need attention"
    with pytest.raises(InputError):
        rfm_name(0, 3)


def two_kinds_of_customers() -> pd.DataFrame:
    """Gardeners buy C/D often and spend a lot; tea drinkers buy A/B once, a little (prices jitter a bit)."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(12):
        for visit in range(6):
            for item in ("C", "D"):
                rows.append(line(f"g{c}-{visit}", f"g{c}", item, 90 - 3 * visit, 5, 20.0 + rng.uniform(0, 1)))
        for item in ("A", "B"):
            rows.append(line(f"t{c}", f"t{c}", item, 10, 1, 2.0 + rng.uniform(0, 0.1)))
    return pd.DataFrame(rows)


def test_kmeans_finds_the_two_kinds_and_chooses_k_by_silhouette() -> None:
    frame = two_kinds_of_customers()
    model = ProfileSegments(k_range=(2, 4), n_components=2).fit(frame)
    assert len(model.centers_) == 2
    assert max(model.silhouettes_, key=model.silhouettes_.get) == 2
    found = model.assign(frame)
    kinds = found.groupby(found["customer_id"].str[0])["segment"].agg(set)
    assert all(len(s) == 1 for s in kinds) and kinds["g"] != kinds["t"]
    assert kinds["g"] == {"segment 1"}  # numbered by value: the big spenders first


def test_descriptions_give_size_categories_tags_and_value() -> None:
    result = segment_customers(two_kinds_of_customers(), method="kmeans", n_segments=2)
    segments = {s["segment"]: s for s in result.to_dict()["segments"]}
    gardeners, tea = segments["segment 1"], segments["segment 2"]
    assert gardeners["customers"] == tea["customers"] == 12
    revenue = two_kinds_of_customers().groupby(lambda i: "tea" if i % 14 >= 12 else "garden")["amount"].sum()
    assert gardeners["value"]["total_revenue"] == pytest.approx(revenue["garden"], abs=0.01)
    assert tea["value"]["mean_revenue"] == pytest.approx(revenue["tea"] / 12, abs=0.01)
    assert {c["name"] for c in gardeners["top_categories"]} == {"garden", "gloves", "spade"}
    assert {c["name"] for c in tea["top_categories"]} >= {"red"}
    assert "frequent" in gardeners["tags"] and "high spend" in gardeners["tags"]
    assert "one-off" in tea["tags"] and "low spend" in tea["tags"]
    # With a category map, categories stand in for the words.
    by_category = describe_segments(
        two_kinds_of_customers(),
        result.assignment,
        item_category={"C": "Garden", "D": "Garden", "A": "Kitchen", "B": "Kitchen"},
    )
    names = {s["segment"]: [c["name"] for c in s["top_categories"]] for s in by_category}
    assert names == {"segment 1": ["Garden"], "segment 2": ["Kitchen"]}


def test_rfm_segments_for_the_app_floor() -> None:
    result = segment_customers(regulars_and_lapsed())
    report = result.to_dict()
    assert report["method"] == "rfm" and report["customers"] == 22
    assert sum(s["customers"] for s in report["segments"]) == 22
    assert report["segments"][0]["segment"] == "champions"  # listed best first
    total = sum(s["value"]["total_revenue"] for s in report["segments"])
    assert total == pytest.approx(result.assignment["monetary"].sum())


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(InputError, match="lacks columns"):
        segment_customers(pd.DataFrame({"invoice_id": ["1"]}))
    with pytest.raises(InputError, match="unknown segmentation method"):
        segment_customers(paired_shop(), method="astrology")
    guests = pd.DataFrame([line("1", "", "A", 0)])
    with pytest.raises(InputError, match="no sale by a known customer"):
        RFMSegments().fit(guests)
    with pytest.raises(InputError, match="k_range"):
        ProfileSegments(k_range=(5, 3)).fit(paired_shop())
