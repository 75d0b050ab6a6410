"""Printing benchmark results beside the published figures they are compared with.

Published rows: full ranking on the Amazon "Toys and Games" 5-core file of S3Rec/ICLRec
(ICLRec, WWW 2022, Table 2; ICSRec, WSDM 2024), as listed in ``shared/data/README.md``. They are
shown only beside results on that file (recognised by its user and item counts); other data sets
get none, rather than another file's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

#: model -> {metric: value}; HR@10/NDCG@10 were not part of the published tables.
PUBLISHED_AMAZON_TOYS: dict[str, dict[str, float]] = {
    "GRU4Rec": {"HR@5": 0.0121, "HR@20": 0.0290, "NDCG@5": 0.0077, "NDCG@20": 0.0123},
    "SASRec": {"HR@5": 0.0429, "HR@20": 0.0957, "NDCG@5": 0.0245, "NDCG@20": 0.0397},
    "BERT4Rec": {"HR@5": 0.0371, "HR@20": 0.0760, "NDCG@5": 0.0259, "NDCG@20": 0.0368},
    "CL4SRec": {"HR@5": 0.0503, "HR@20": 0.0990, "NDCG@5": 0.0264, "NDCG@20": 0.0404},
    "ICLRec": {"HR@5": 0.0597, "HR@20": 0.1139, "NDCG@5": 0.0404, "NDCG@20": 0.0557},
    "DuoRec": {"HR@5": 0.0655, "HR@20": 0.1293, "NDCG@5": 0.0392, "NDCG@20": 0.0574},
    "ICSRec": {"HR@5": 0.0788, "HR@20": 0.1368, "NDCG@5": 0.0571, "NDCG@20": 0.0736},
}

METRICS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20")

#: published tables by data set, recognised by the (users, items) of the standard preprocessed file:
#: a name alone could be any file, and another file must not be shown beside another's rows
PUBLISHED: dict[tuple[int, int], tuple[str, dict[str, dict[str, float]]]] = {
    (19_412, 11_924): ("amazon-toys (S3-Rec/ICLRec preprocessing)", PUBLISHED_AMAZON_TOYS),
}


def published_rows(n_users: int, n_items: int) -> tuple[str, dict[str, dict[str, float]]]:
    """The published rows of the data set with this many users and items, else ``("", {})``.

    Example:
        >>> published_rows(19_412, 11_924)[1]["ICSRec"]["NDCG@20"]
        0.0736
        >>> published_rows(10, 5)
        ('', {})
    """
    return PUBLISHED.get((n_users, n_items), ("", {}))


def _published_for(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    data = results.get("data", {})
    return published_rows(int(data.get("users", 0)), int(data.get("items", 0)))[1]


def results_table(results: dict[str, Any], *, published: dict[str, dict[str, float]] | None = None) -> Table:
    """A rich table of our models (with time and memory) and the data set's published rows below them."""
    if published is None:
        published = _published_for(results)
    table = Table(title=f"next-item recommendation: {results.get('protocol', 'full ranking, leave-one-out')}")
    table.add_column("model", no_wrap=True, min_width=18)
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("train s", justify="right")
    table.add_column("peak MB", justify="right")
    best = results.get("best")
    for name, row in results.get("models", {}).items():
        label = f"[bold]{name}[/] *" if name == best else name
        cells = [f"{row[m]:.4f}" if m in row else "" for m in METRICS]
        table.add_row(label, *cells, f"{row.get('train_seconds', 0):.0f}", f"{row.get('peak_rss_mb', 0):.0f}")
    for name, row in published.items():
        cells = [f"{row[m]:.4f}" if m in row else "-" for m in METRICS]
        table.add_row(f"[dim]{name} (published)[/]", *[f"[dim]{c}[/]" for c in cells], "", "")
    return table


def print_results(results: dict[str, Any], *, console: Console | None = None) -> None:
    (console or Console()).print(results_table(results))


def write_chart(results: dict[str, Any], path: Path) -> Path:
    """A PNG bar chart of HR@20 and NDCG@20: our rows, then the data set's published rows (greyed).

    Args:
        results: what :func:`~shoplm.recommend.bench.run_seqrec_benchmark` returns.
        path: the PNG file to write (its directory is created).

    Returns:
        ``path``.

    Example:
        >>> write_chart({"models": {"ours": {"HR@20": 0.1, "NDCG@20": 0.05}}}, Path("chart.png"))  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    rows = [(name, row, False) for name, row in results.get("models", {}).items()]
    rows += [(f"{name} (published)", row, True) for name, row in _published_for(results).items()]
    metrics = ("HR@20", "NDCG@20")
    figure, axes = plt.subplots(1, len(metrics), figsize=(6 + 0.45 * len(rows), 4.5), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        values = [float(row.get(metric, 0.0)) for _, row, _ in rows]
        colours = ["#bbbbbb" if grey else "#2b6cb0" for _, _, grey in rows]
        bars = axis.bar(range(len(rows)), values, color=colours)
        for name_index, (name, _, _) in enumerate(rows):
            if name == results.get("best"):
                bars[name_index].set_color("#c05621")
        axis.set_xticks(range(len(rows)), [name for name, _, _ in rows], rotation=60, ha="right", fontsize=8)
        axis.set_title(metric)
        axis.bar_label(bars, fmt="%.4f", fontsize=6, rotation=90, padding=2)
        axis.margins(y=0.2)
    figure.suptitle(str(results.get("protocol", "next-item recommendation")), fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
