"""``shoplm bench elasticity``: elasticity per category on an Online Retail file, checked on later weeks.

An elasticity cannot be scored against a known truth on real data, so the benchmark asks what
it can: does the price term predict demand in weeks the model has not seen? Every model is fit
on all weeks but the last ``holdout_weeks`` and predicts log units of each item-week there
from the price then:

- ``shoplm``: item and week fixed effects (:class:`~shoplm.pricing.elasticity.ElasticityModel`);
  future weeks get the mean effect of the last 4 fitted weeks;
- ``pooled_ols``: the naive log-log line per category, no fixed effects (the usual first try);
- ``item_effects``: item effects only, no week effects;
- ``no_price``: the fixed-effects model with the price term removed (β = 0): what price adds.

The elasticities reported are those of the fit on every week. Categories come from the
descriptions (e5 embeddings clustered, as :mod:`shoplm.lm.categories` does).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.ingest.transactions import read_retail_transactions
from shoplm.lm.categories import derive_categories
from shoplm.lm.encoder import TextEncoder
from shoplm.pricing.elasticity import ElasticityModel, demean_two_way, weekly_price_panel

HOLDOUT_WEEKS = 8


def _log(message: str) -> None:
    print(f"[elasticity] {message}", file=sys.stderr, flush=True)


def item_categories(
    transactions: pd.DataFrame, encoder: TextEncoder | None, *, k: int | None = None, seed: int = 0
) -> tuple[pd.Series, dict[str, Any]]:
    """Item id -> derived category (clustered description embeddings), and how k was chosen."""
    described = transactions[transactions["description"] != ""]
    titles = described.groupby("item_id")["description"].agg(lambda d: d.mode().iat[0])
    vectors = None if encoder is None else encoder.encode(titles.tolist(), mode="passage")
    found = derive_categories(titles.tolist(), vectors, k=k, seed=seed)
    info = {"k": found.k, "silhouettes": found.silhouettes, "source": found.source, "names": found.names}
    return pd.Series(found.category_of(), index=titles.index), info


def _effects(panel: pd.DataFrame, beta: float, *, week_effects: bool = True) -> tuple[pd.Series, pd.Series]:
    """Item and week effects of log q − β log p (alternating means), for prediction."""
    residual = np.log(panel["quantity"].to_numpy(float)) - beta * np.log(panel["price"].to_numpy(float))
    items = panel["item_id"].to_numpy()
    weeks = panel["week"].to_numpy()
    week_effect = pd.Series(0.0, index=pd.unique(weeks))
    item_effect = pd.Series(0.0, index=pd.unique(items))
    for _ in range(50 if week_effects else 1):
        item_effect = pd.Series(residual - week_effect.reindex(weeks).to_numpy()).groupby(items).mean()
        if not week_effects:
            break
        previous = week_effect
        week_effect = pd.Series(residual - item_effect.reindex(items).to_numpy()).groupby(weeks).mean()
        if np.abs(week_effect.to_numpy() - previous.reindex(week_effect.index).to_numpy()).max() < 1e-9:
            break
    return item_effect, week_effect


def _item_only_beta(panel: pd.DataFrame) -> float:
    codes = pd.factorize(panel["item_id"])[0]
    logs = np.column_stack([np.log(panel["quantity"].to_numpy(float)), np.log(panel["price"].to_numpy(float))])
    within = demean_two_way(logs, codes, np.zeros(len(panel), dtype=np.int64))
    sxx = float(within[:, 1] @ within[:, 1])
    return float(within[:, 1] @ within[:, 0]) / sxx if sxx > 1e-12 else 0.0


def holdout_errors(train: pd.DataFrame, test: pd.DataFrame, table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """RMSE of log units per model on ``test`` item-weeks whose item was seen in ``train``."""
    betas = table.set_index("category")["elasticity"].fillna(0.0)
    squared: dict[str, list[np.ndarray]] = {m: [] for m in ("shoplm", "pooled_ols", "item_effects", "no_price")}
    for category, part in train.groupby("category"):
        future = test[(test["category"] == category) & test["item_id"].isin(part["item_id"])]
        if future.empty or category not in betas.index:
            continue
        actual = np.log(future["quantity"].to_numpy(float))
        log_price = np.log(future["price"].to_numpy(float))
        beta = float(betas[category])
        predictions = {}
        for name, slope in (("shoplm", beta), ("no_price", 0.0)):
            item_effect, week_effect = _effects(part, slope)
            recent = week_effect.sort_index().iloc[-4:].mean()
            predictions[name] = item_effect.reindex(future["item_id"]).to_numpy() + slope * log_price + recent
        slope = _item_only_beta(part)
        item_effect, _ = _effects(part, slope, week_effects=False)
        predictions["item_effects"] = item_effect.reindex(future["item_id"]).to_numpy() + slope * log_price
        b, a = np.polyfit(np.log(part["price"].to_numpy(float)), np.log(part["quantity"].to_numpy(float)), 1)
        predictions["pooled_ols"] = a + b * log_price
        for name, predicted in predictions.items():
            squared[name].append((predicted - actual) ** 2)
    out = {}
    for name, parts in squared.items():
        errors = np.concatenate(parts) if parts else np.array([np.nan])
        out[name] = {"holdout_rmse_log_units": float(np.sqrt(np.mean(errors))), "item_weeks": len(errors)}
    return out


def run_elasticity_benchmark(
    data: str | Path,
    out: str | Path | None = None,
    *,
    encoder: TextEncoder | None = None,
    k: int | None = None,
    holdout_weeks: int = HOLDOUT_WEEKS,
    price_from: str = "small_orders",
    seed: int = 0,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); write JSON (and a PNG beside it) to ``out``.

    Args:
        data: a CSV(.gz) with Online Retail's (or Online Retail II's) columns.
        encoder: text encoder for the descriptions; None clusters TF-IDF vectors instead.
        k: number of categories; None chooses it by silhouette.
        holdout_weeks: the last weeks held out for the prediction check.
        price_from: the price measure (see :func:`~shoplm.pricing.elasticity.weekly_price_panel`).

    Returns:
        ``{"categories": [...], "models": {name: {"holdout_rmse_log_units", ...}}, "best", "verdicts", ...}``.
    """
    started = time.perf_counter()
    retail = read_retail_transactions(data)
    _log(f"{len(retail.frame):,} lines; deriving categories from descriptions")
    categories, info = item_categories(retail.frame, encoder, k=k, seed=seed)
    panel = weekly_price_panel(retail.frame, categories, price_from=price_from)
    weeks = np.sort(panel["week"].unique())
    if len(weeks) < holdout_weeks + 8:
        raise InputError(f"{len(weeks)} weeks of sales: the benchmark needs at least {holdout_weeks + 8}", path=data)
    cut = weeks[-holdout_weeks]
    _log(f"{len(panel):,} item-weeks over {len(weeks)} weeks, {info['k']} categories; fitting")
    model = ElasticityModel().fit(panel)
    train, test = panel[panel["week"] < cut], panel[panel["week"] >= cut]
    train_model = ElasticityModel().fit(train)
    models = holdout_errors(train, test, train_model.table())
    best = min(models, key=lambda name: models[name]["holdout_rmse_log_units"])
    table = model.table()
    results: dict[str, Any] = {
        "data": str(data),
        "protocol": {
            "holdout_weeks": holdout_weeks,
            "holdout_from": str(pd.Timestamp(cut).date()),
            "price": price_from,
            "interval_level": model.level,
        },
        "category_derivation": info,
        "categories": json.loads(table.to_json(orient="records")),
        "verdicts": {v: int((table["verdict"] == v).sum()) for v in sorted(table["verdict"].unique())},
        "models": models,
        "best": best,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))
        _chart(table, out_path.with_suffix(".png"))
    return results


def _chart(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"elastic": "#c92a2a", "inelastic": "#2f9e44", "undetermined": "#868e96", "confounded": "#f08c00"}
    shown = table[table["verdict"] != "no_variation"].sort_values("elasticity")
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(shown), 4) + 1.2))
    for row_index, row in enumerate(shown.itertuples()):
        ax.errorbar(
            row.elasticity,
            row_index,
            xerr=[[row.elasticity - row.ci_low], [row.ci_high - row.elasticity]],
            fmt="o",
            color=colors.get(row.verdict, "#495057"),
            capsize=3,
        )
    ax.set_yticks(range(len(shown)), shown["category"].tolist(), fontsize=8)
    ax.axvline(-1, color="#adb5bd", linestyle="--", linewidth=1)
    ax.axvline(0, color="#dee2e6", linewidth=1)
    ax.set_xlabel("own-price elasticity (95% interval); red: elastic, green: inelastic, grey: undetermined")
    skipped = int((table["verdict"] == "no_variation").sum())
    ax.set_title(f"Elasticity per category ({skipped} categories without price variation not shown)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
