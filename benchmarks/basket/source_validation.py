"""How the "bought together" source's defaults were chosen: validation invoices of Online Retail.

The training part of ``shoplm bench basket``'s time split is split again the same way (its
last 20 % of time is validation); the source is fitted on the purchases before that, as the
store would hand them over (:class:`~shoplm.interactions.Interactions`: customer, item, time,
weight 5), and each validation invoice of 2+ items gives one case: one item hidden, the others
the history. ``times`` keeps the real times (an invoice is one basket); ``positions`` replaces
them with positions, as ``shoplm evaluate``'s leave-one-out split does.

Usage:
    python benchmarks/basket/source_validation.py --data ../shared/data/retail/online_retail.csv.gz
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from shoplm.ingest.transactions import read_retail_transactions
from shoplm.interactions import Interactions
from shoplm.recommend.bought_together import BoughtTogetherRecommender
from shoplm.segments.basket import sale_baskets
from shoplm.segments.bench import hide_one, split_by_time

GRID = {"times": [(0.001, 20), (0.002, 20), (0.005, 20)], "positions": [(0.001, 20), (0.002, 20), (0.001, 40)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    frame = read_retail_transactions(args.data).frame
    train, _, _ = split_by_time(frame, 0.2)
    fit_part, valid_part, _ = split_by_time(train, 0.2)
    sales = fit_part[~fit_part["is_return"] & (fit_part["customer_id"] != "")]
    ms = (sales["timestamp"].astype("int64") // 1_000_000).to_numpy()
    customers, items = sales["customer_id"].to_numpy(), sales["item_id"].to_numpy()
    data = {
        "times": Interactions.from_arrays(customers, items, ms, np.full(len(sales), 5.0)),
        "positions": Interactions.from_arrays(customers, items),
    }
    cases = hide_one(sale_baskets(valid_part)[0], seed=0)
    rows = []
    for name, grid in GRID.items():
        for support, max_basket in grid:
            started = time.monotonic()
            model = BoughtTogetherRecommender(min_support=support, max_basket=max_basket).fit(data[name])
            seconds = time.monotonic() - started
            hits = sum(hidden in {i for i, _ in model.recommend(b, 10, exclude_seen=True)} for b, hidden in cases)
            row = {
                "times": name,
                "min_support": support,
                "max_basket": max_basket,
                "rules": len(model.indices_),
                "fit_seconds": round(seconds, 1),
                "HR@10": round(hits / len(cases), 4),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"validation_cases": len(cases), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
