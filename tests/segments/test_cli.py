"""``shoplm segments`` and ``shoplm bench basket`` on tiny generated Online Retail files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.segments.bench import SUPPORT_GRID
from tests.segments.retail_fixture import line, paired_shop, write_retail_csv

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def retail_file(tmp_path: Path, fillers: int = 8, pairs: int = 2) -> Path:
    import pandas as pd

    shop = paired_shop(invoices=160 * pairs // 2, days=100, fillers=fillers, pairs=pairs)
    shop = pd.concat([shop, pd.DataFrame([line("C1", "00001", "A", 50.0, -2, 3.0)])], ignore_index=True)
    return write_retail_csv(shop, tmp_path / "retail.csv")


def test_segments_json_and_files(tmp_path: Path) -> None:
    path = retail_file(tmp_path)
    out, assignments = tmp_path / "segments.json", tmp_path / "customers.csv"
    result = invoke(
        "segments", "--data", str(path), "--rules", "3", "--min-support", "0.1",
        "--out", str(out), "--assignments", str(assignments), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["method"] == "rfm" and report["customers"] == 30
    assert sum(s["customers"] for s in report["segments"]) == 30
    assert {"segment", "customers", "top_categories", "tags", "value"} <= set(report["segments"][0])
    assert report["basket_rules"]["return_lines_left_out"] == 1
    assert len(report["basket_rules"]["top_rules"]) == 3
    assert len(assignments.read_text().splitlines()) == 31  # header + one line per customer

    table = invoke("segments", "--data", str(path), "--method", "kmeans", "--segments", "2")
    assert table.exit_code == 0, table.output
    assert "segment 1" in table.output and "segment 2" in table.output


def test_bench_basket_writes_json_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "basket.json"
    result = invoke("bench", "basket", "--data", str(retail_file(tmp_path, fillers=20, pairs=12)), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"rules", "rules+popularity", "co-occurrence", "popularity"}
    assert report["data"]["test_cases"] > 10
    # A hidden pair item (two cases in three) is its partner's: rules find it, while popularity
    # has ten slots for 24 pair items of about the same sales.
    assert report["models"]["rules"]["HR@10"] >= 0.5
    assert report["models"]["rules"]["HR@10"] > report["models"]["popularity"]["HR@10"] + 0.2
    assert (report["settings"]["min_support"], report["settings"]["max_len"]) in SUPPORT_GRID
    assert out.with_suffix(".png").stat().st_size > 1000


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    missing = invoke("segments", "--data", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "no such file" in missing.output
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("order,sku\n1,A\n")
    result = invoke("bench", "basket", "--data", str(wrong))
    assert result.exit_code == 2
    assert "missing InvoiceNo" in result.output
    method = invoke("segments", "--data", str(retail_file(tmp_path)), "--method", "tarot")
    assert method.exit_code == 2 and "unknown segmentation method" in method.output


def test_segments_of_the_store_are_stored_for_the_api(tmp_path: Path) -> None:
    from shoplm.config import Settings
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    rows = ["order_id,user_id,status,item_id,quantity,unit_price,created_at"]
    for n in range(40):
        day = 1 + n % 28
        rows.append(f"o{n},U{n % 9},delivered,mug,1,4.0,2024-0{1 + n % 6}-{day:02d}T10:00:00Z")
        rows.append(
            f"o{n},U{n % 9},delivered,{'tea' if n % 2 else 'spoon'},2,1.5,2024-0{1 + n % 6}-{day:02d}T10:00:00Z"
        )
    (tmp_path / "orders.csv").write_text("\n".join(rows) + "\n")
    settings = Settings(data_dir=tmp_path / "shop")
    store = Store.open(settings.database_url)
    ingest("orders", tmp_path / "orders.csv", store=store, settings=settings)
    store.close()
    result = runner.invoke(app, ["segments", "--rules", "3", "--data-dir", str(tmp_path / "shop")])
    assert result.exit_code == 0, result.output
    store = Store.open(settings.database_url)
    try:
        stored = store.analytics.report("segments")["body"]
        assert stored["customers"] == 9 and sum(s["customers"] for s in stored["segments"]) == 9
        assert store.analytics.report("basket")["body"]["baskets"] == 40
    finally:
        store.close()
    refused = runner.invoke(app, ["segments", "--assignments", "x.csv", "--data-dir", str(tmp_path / "shop")])
    assert refused.exit_code == 2 and "--data" in refused.output
