"""Price elasticity: recovers a known elasticity through season and item effects, and says when it cannot tell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.pricing.elasticity import ElasticityModel, demean_two_way, weekly_price_panel, what_if
from tests.estimator_contract import EstimatorContract


def synthetic_panel(seed: int = 0, *, elasticities: dict[str, float] | None = None, price_sd: float = 0.15):
    """Item-week demand with item levels, a shared season and price moves; known elasticities."""
    rng = np.random.default_rng(seed)
    elasticities = elasticities or {"candles": -2.0, "mugs": -0.5}
    rows = []
    for category, beta in elasticities.items():
        for item in range(25):
            level = rng.normal(3, 0.8)
            base = rng.uniform(2, 20)
            for week in range(30):
                price = base * np.exp(rng.normal(0, price_sd))
                season = 0.6 * np.sin(week / 4)  # moves every item at once: week effects take it
                units = np.exp(level + season + beta * np.log(price / base) + rng.normal(0, 0.15))
                monday = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=week)
                rows.append((f"{category}-{item}", monday, category, units, price))
    return pd.DataFrame(rows, columns=["item_id", "week", "category", "quantity", "price"])


class TestElasticityContract(EstimatorContract):
    def make_estimator(self) -> Estimator:
        return ElasticityModel(level=90.0)

    def fit_estimator(self, estimator: Estimator) -> Estimator:
        return estimator.fit(synthetic_panel())

    def probe(self, estimator: Estimator) -> np.ndarray:
        table = estimator.table()
        return np.concatenate([table["elasticity"].to_numpy(), [estimator.what_if("mugs", 0.1)["units"]["change"]]])


def test_known_elasticities_are_recovered_with_their_verdicts() -> None:
    table = ElasticityModel().fit(synthetic_panel()).table().set_index("category")
    assert table.loc["candles", "elasticity"] == pytest.approx(-2.0, abs=0.15)
    assert table.loc["mugs", "elasticity"] == pytest.approx(-0.5, abs=0.15)
    assert table.loc["candles", "ci_high"] - table.loc["candles", "ci_low"] < 0.5  # 750 item-weeks: a tight interval
    assert table.loc["candles", "verdict"] == "elastic"
    assert table.loc["mugs", "verdict"] == "inelastic"


def test_without_week_effects_a_season_tied_to_price_would_bias_it() -> None:
    # The shop raises prices in busy weeks: a pooled regression mistakes the season for price.
    panel = synthetic_panel(elasticities={"gifts": -1.5})
    busy = np.sin((panel["week"] - panel["week"].min()).dt.days / 28) > 0
    panel.loc[busy, "price"] *= 1.25
    panel.loc[busy, "quantity"] *= 1.25**-1.5  # the true response to the higher price
    panel.loc[busy, "quantity"] *= 2.0  # plus the busy season
    fitted = ElasticityModel().fit(panel).table().iloc[0]
    pooled = np.polyfit(np.log(panel["price"]), np.log(panel["quantity"]), 1)[0]
    assert fitted["elasticity"] == pytest.approx(-1.5, abs=0.2)
    assert abs(pooled + 1.5) > 0.5  # the naive slope is far off


def test_no_price_movement_means_no_claim() -> None:
    panel = synthetic_panel(elasticities={"flat": -1.0}, price_sd=0.001)
    model = ElasticityModel().fit(panel)
    assert model.table().iloc[0]["verdict"] == "no_variation"
    answer = model.what_if("flat", 0.1)
    assert "units" not in answer and "cannot tell" in answer["note"]


def test_what_if_follows_the_elasticity_with_an_interval() -> None:
    model = ElasticityModel().fit(synthetic_panel())
    answer = model.what_if("candles", -0.1)
    beta = answer["elasticity"]
    assert answer["units"]["change"] == pytest.approx(0.9**beta - 1)
    low, high = answer["units"]["interval"]
    assert low < answer["units"]["change"] < high
    assert answer["revenue"]["change"] == pytest.approx(0.9 ** (1 + beta) - 1)
    with pytest.raises(InputError, match="category"):
        model.what_if("nope", 0.1)
    with pytest.raises(InputError, match="price change"):
        model.what_if("candles", -1.0)


def test_two_way_demeaning_matches_dummy_regression() -> None:
    rng = np.random.default_rng(1)
    first, second = rng.integers(0, 6, 80), rng.integers(0, 5, 80)
    values = rng.normal(size=(80, 1))
    dummies = np.column_stack([np.eye(6)[first], np.eye(5)[second][:, 1:]])
    coef, *_ = np.linalg.lstsq(dummies, values, rcond=None)
    assert np.allclose(demean_two_way(values, first, second), values - dummies @ coef, atol=1e-7)


def test_the_panel_takes_sales_only_with_median_prices() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"]),
            "quantity": [2, 10, -1, 1],
            "unit_price": [3.0, 2.0, 3.0, 5.0],
            "is_return": [False, False, True, False],
        }
    )
    panel = weekly_price_panel(frame, {"a": "mugs"}, price_from="all_lines")
    assert panel[["item_id", "quantity", "price", "category"]].values.tolist() == [["a", 12, 2.5, "mugs"]]
    # The small buyer's price: the bulk line's lower unit price is not the price asked.
    small = weekly_price_panel(frame, {"a": "mugs"})
    assert small[["quantity", "price"]].values.tolist() == [[12, 3.0]]
    with pytest.raises(InputError, match="no sales"):
        weekly_price_panel(frame[frame["is_return"]], {"a": "mugs"})


def test_a_row_stored_as_json_answers_the_same() -> None:
    import json

    model = ElasticityModel().fit(synthetic_panel(elasticities={"flat": -1.0}, price_sd=0.0))
    row = json.loads(model.table().to_json(orient="records"))[0]  # NaN elasticity becomes null
    assert what_if(row, 0.1)["verdict"] == "no_variation" and what_if(row, 0.1)["elasticity"] is None
