"""What bounds the CTR models: the oracle's AUC with parts of the click model taken out.

Reads a demo store's hidden truth (``ground_truth.json``, ``impressions_truth.json``) — evaluation
only, never a model input — and rebuilds every term of the click model but the user's taste
(``d·cos(taste, text)``), which ``p_click`` holds together with the noise ε. Reports the AUC on the
bench's test window (the last 21 days) of: the oracle; the oracle without taste and ε; without
the creative effects too; and the known terms plus the taste *estimated* from each user's earlier
impressions as well as any model could with the hidden title vectors themselves (a ridge regression
of the user's past click residuals on the true title vectors, its scale chosen on the validation
window): the bound for a model that must learn the taste from the log.

    python benchmarks/ctr/oracle_decomposition.py DEMO_DIR   # "data.dir" of ctr.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def main(demo_dir: Path, test_days: int = 21) -> dict[str, float]:
    imps = pd.read_parquet(demo_dir / "impressions.parquet")
    truth = json.loads((demo_dir / "ground_truth.json").read_text(encoding="utf-8"))
    clicks = json.loads((demo_dir / "impressions_truth.json").read_text(encoding="utf-8"))
    model = clicks["click_model"]
    items = pd.read_csv(demo_dir / "items.csv", dtype=str, keep_default_na=False)
    category = dict(zip(items["item_id"], items["category"], strict=True))
    quality = np.array([truth["items"][i]["quality"] for i in imps["item_id"]])
    prefs = {u: v["preferred_categories"] for u, v in truth["users"].items()}
    by_rank = clicks["affinity_by_rank"]
    affinity = np.array(
        [
            by_rank[prefs[u].index(category[i])] if category[i] in prefs[u] else 0.0
            for u, i in zip(imps["user_id"], imps["item_id"], strict=True)
        ]
    )
    creative = np.array(
        [clicks["creative_effects"][i][c] for i, c in zip(imps["item_id"], imps["creative"], strict=True)]
    )
    p = imps["p_click"].to_numpy()
    logit = np.log(p / (1 - p))
    known = (
        model["w0"]
        + model["a"] * affinity
        + model["b"] * quality
        - model["c"] * np.log1p(imps["position"].to_numpy())
        + creative
    )
    ts = imps["ts"].to_numpy()
    test = ts >= ts.max() + 1 - test_days * 86_400_000
    val = ~test & (ts >= ts.max() + 1 - (test_days + 14) * 86_400_000)
    y = imps["clicked"].to_numpy()[test]
    estimated = known + _best_scale(imps, items, known, val)
    return {
        "oracle": round(float(roc_auc_score(y, logit[test])), 4),
        "without_taste_and_noise": round(float(roc_auc_score(y, known[test])), 4),
        "without_taste_noise_creative": round(float(roc_auc_score(y, (known - creative)[test])), 4),
        "known_plus_taste_to_date_true_titles": round(float(roc_auc_score(y, estimated[test])), 4),
        "sd_taste_plus_noise": round(float((logit - known).std()), 3),
        "sd_other_terms": round(float(known.std()), 3),
    }


def _best_scale(imps: pd.DataFrame, items: pd.DataFrame, known: np.ndarray, val: np.ndarray) -> np.ndarray:
    """The taste estimated from each user's earlier impressions on the true title vectors, scaled on validation."""
    from shoplm.demo.impressions import title_vectors
    from shoplm.marketing.ctr_taste import taste_to_date

    text = title_vectors(items["title"].tolist())[pd.Index(items["item_id"]).get_indexer(imps["item_id"])]
    residual = imps["clicked"].to_numpy(dtype=np.float64) - 1 / (1 + np.exp(-known))
    score, _ = taste_to_date(imps["user_id"].to_numpy(), imps["ts"].to_numpy(), text, residual, ridge=3.0)
    y = imps["clicked"].to_numpy()[val]
    scale = max(np.arange(0, 41), key=lambda a: roc_auc_score(y, (known + a * score)[val]))
    return scale * score


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=2))
