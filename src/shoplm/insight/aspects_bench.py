"""``shoplm bench aspects``: score an :class:`~shoplm.insight.aspects.AspectExtractor` on a labelled file.

Files are JSONL (``{"text", "language"?, "aspects": [{"term", "category", "polarity", "from"?, "to"?}]}``,
``term`` ``null`` for an implicit aspect) or SemEval-2014 Task 4 XML (``<sentences><sentence>
<text>..</text><aspectTerms><aspectTerm term= polarity= from= to=/></aspectTerms>
<aspectCategories><aspectCategory category= polarity=/></aspectCategories></sentence>``), told
apart by their first character. SemEval's restaurant categories map to ours where they mean the
same: ``food`` -> ``taste``, ``service`` -> ``service``, ``price`` -> ``price``; ``ambience`` and
``anecdotes/miscellaneous`` have no counterpart and are left out of the category score.

Reported, as published for SemEval-2014 Task 4:

- aspect-term polarity (``accuracy``, ``macro_f1``): the gold term is given, its polarity is
  predicted; gold ``conflict`` terms are dropped;
- aspect-category detection (``category_f1``): micro-F1 over (sentence, category) pairs of the
  nine categories; ``None`` when the file labels no category.

Each system of :data:`~shoplm.insight.aspects.SYSTEMS` is scored in the same run: the trained
heads, the zero-shot prototypes and the keyword baseline (lexicon categories, majority polarity).

Example:
    >>> report = run_aspect_benchmark(Path("aspects_eval.jsonl"), extractor)  # doctest: +SKIP
    >>> sorted(report["systems"]["head"])[:3]  # doctest: +SKIP
    ['accuracy', 'category_f1', 'category_precision']
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shoplm.errors import InputError
from shoplm.insight.aspects import CATEGORIES, POLARITIES, SYSTEMS, AspectExtractor, System
from shoplm.lm.classify.metrics import accuracy, macro_f1

__all__ = ["SEMEVAL_CATEGORIES", "load_aspect_file", "run_aspect_benchmark", "score_system"]

#: SemEval-2014 restaurant categories -> ours (the others have no counterpart and are dropped)
SEMEVAL_CATEGORIES = {"food": "taste", "service": "service", "price": "price"}


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a JSON line ({exc.msg})", path=path, line=number) from exc
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError('each line needs a "text" string', path=path, line=number)
        aspects = row.get("aspects", [])
        if not isinstance(aspects, list) or not all(isinstance(a, dict) for a in aspects):
            raise InputError('"aspects" must be a list of objects', path=path, line=number)
        row["aspects"] = aspects
        rows.append(row)
    return rows


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _read_semeval(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"not well-formed XML ({exc})", path=path) from exc
    rows = []
    for sentence in root.iter("sentence"):
        body = sentence.findtext("text")
        if body is None:
            raise InputError(f"sentence {sentence.get('id', '?')!r} has no <text>", path=path)
        aspects: list[dict[str, Any]] = []
        for term in sentence.iter("aspectTerm"):
            aspects.append(
                {
                    "term": term.get("term"),
                    "category": None,
                    "polarity": term.get("polarity"),
                    "from": _int_or_none(term.get("from")),
                    "to": _int_or_none(term.get("to")),
                }
            )
        categories = list(sentence.iter("aspectCategory"))
        for category in categories:
            mapped = SEMEVAL_CATEGORIES.get(str(category.get("category")))
            if mapped is not None:
                aspects.append({"term": None, "category": mapped, "polarity": category.get("polarity")})
        rows.append({"text": body, "id": sentence.get("id"), "aspects": aspects, "has_categories": bool(categories)})
    return rows


def load_aspect_file(path: str | Path) -> list[dict[str, Any]]:
    """Labelled sentences of a JSONL or SemEval-2014 XML file (see the module docstring).

    Raises:
        InputError: the file is missing, empty, not UTF-8, not JSONL or XML, or a line/sentence is malformed.

    Example:
        >>> load_aspect_file("aspects_eval.jsonl")[0]["aspects"][0]["category"]  # doctest: +SKIP
        'quality'
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path=path) from exc
    stripped = text.lstrip()
    if not stripped:
        raise InputError("the file is empty", path=path)
    rows = _read_semeval(path, stripped) if stripped.startswith("<") else _read_jsonl(path, stripped)
    if not rows:
        raise InputError("no labelled sentences in the file", path=path)
    return rows


def _gold_terms(rows: Sequence[dict[str, Any]]) -> list[tuple[int, str, int, int, str]]:
    """(row, text, start, end, polarity) of every gold term with a usable span and polarity (conflict dropped)."""
    found = []
    for i, row in enumerate(rows):
        text = row["text"]
        for aspect in row["aspects"]:
            term, polarity = aspect.get("term"), aspect.get("polarity")
            if not term or polarity not in POLARITIES:
                continue
            start, end = aspect.get("from"), aspect.get("to")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                start = text.lower().find(str(term).lower())
                if start < 0:
                    continue
                end = start + len(str(term))
            found.append((i, text, start, end, polarity))
    return found


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_system(extractor: AspectExtractor, rows: Sequence[dict[str, Any]], system: System = "head") -> dict[str, Any]:
    """Term polarity, category detection and term extraction scores of one system on labelled rows.

    Example:
        >>> score_system(extractor, load_aspect_file("aspects_eval.jsonl"))["accuracy"]  # doctest: +SKIP
        0.79
    """
    start_time = time.perf_counter()
    languages = [row.get("language") for row in rows]
    terms = _gold_terms(rows)
    predicted = extractor.term_polarities([(t[1], t[2], t[3], languages[t[0]]) for t in terms], system=system)
    gold_polarity = [t[4] for t in terms]
    guessed = [p for p, _ in predicted]
    results = extractor.extract([row["text"] for row in rows], languages=languages, system=system)

    labelled = [i for i, row in enumerate(rows) if row.get("has_categories", True)]
    tp = fp = fn = 0
    per_category = {c: [0, 0, 0] for c in CATEGORIES}
    term_tp = term_fp = term_fn = 0
    for i in labelled:
        gold = {a.get("category") for a in rows[i]["aspects"]} & set(CATEGORIES)
        found = results[i].categories
        for category in CATEGORIES:
            g, f = category in gold, category in found
            per_category[category][0] += g and f
            per_category[category][1] += f and not g
            per_category[category][2] += g and not f
        tp, fp, fn = tp + len(gold & found), fp + len(found - gold), fn + len(gold - found)
    for i, row in enumerate(rows):
        gold_terms = {str(a["term"]).lower() for a in row["aspects"] if a.get("term")}
        found_terms = {a.term.lower() for a in results[i].aspects if a.term}
        term_tp += len(gold_terms & found_terms)
        term_fp += len(found_terms - gold_terms)
        term_fn += len(gold_terms - found_terms)
    precision, recall, f1 = _prf(tp, fp, fn)
    by_language: dict[str, dict[str, Any]] = {}
    for language in sorted({str(languages[t[0]] or "?") for t in terms}):
        keep = [k for k, t in enumerate(terms) if str(languages[t[0]] or "?") == language]
        by_language[language] = {
            "accuracy": accuracy([gold_polarity[k] for k in keep], [guessed[k] for k in keep]),
            "macro_f1": macro_f1([gold_polarity[k] for k in keep], [guessed[k] for k in keep]),
            "n_terms": len(keep),
        }
    return {
        "accuracy": accuracy(gold_polarity, guessed),
        "macro_f1": macro_f1(gold_polarity, guessed),
        "category_f1": f1 if labelled else None,
        "category_precision": precision if labelled else None,
        "category_recall": recall if labelled else None,
        "per_category_f1": {c: _prf(*counts)[2] for c, counts in per_category.items() if sum(counts)},
        "per_category_support": {c: counts[0] + counts[2] for c, counts in per_category.items() if sum(counts)},
        "term_extraction_f1": _prf(term_tp, term_fp, term_fn)[2],
        "polarity_by_language": by_language,
        "seconds": round(time.perf_counter() - start_time, 2),
    }


def run_aspect_benchmark(
    data: str | Path, extractor: AspectExtractor, out: str | Path | None = None, *, model_path: str | None = None
) -> dict[str, Any]:
    """Score every system on ``data``; with ``out`` write the headline JSON, the details and a PNG.

    ``out`` receives exactly ``{"accuracy", "macro_f1", "category_f1"}`` of the trained heads;
    ``<out stem>.details.json`` every system's scores and ``<out stem>.png`` the per-category F1.

    Raises:
        InputError: the file cannot be read (see :func:`load_aspect_file`) or holds no gold term.
    """
    data = Path(data)
    rows = load_aspect_file(data)
    n_terms = len(_gold_terms(rows))
    if n_terms == 0 and not any(row.get("has_categories", True) for row in rows):
        raise InputError("no aspect term with a polarity and no category to score", path=data)
    systems = {name: score_system(extractor, rows, name) for name in SYSTEMS}  # type: ignore[arg-type]
    head = systems["head"]
    report = {
        "accuracy": head["accuracy"],
        "macro_f1": head["macro_f1"],
        "category_f1": head["category_f1"],
        "data": str(data),
        "n_sentences": len(rows),
        "n_terms_scored": n_terms,
        "n_conflict_dropped": sum(
            a.get("polarity") == "conflict" and bool(a.get("term")) for r in rows for a in r["aspects"]
        ),
        "languages": {lang: sum(r.get("language") == lang for r in rows) for lang in ("zh", "en")},
        "systems": systems,
        "model": model_path,
        "params": extractor.get_params(),
        "n_train": extractor.n_train_,
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        headline = {key: report[key] for key in ("accuracy", "macro_f1", "category_f1")}
        out.write_text(json.dumps(headline, indent=2) + "\n")
        details = out.with_name(out.stem + ".details.json")
        details.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        _chart(systems, out.with_suffix(".png"), title=f"{data.name}: {len(rows)} sentences, {n_terms} terms")
        report["files"] = {"json": str(out), "details": str(details), "png": str(out.with_suffix(".png"))}
    return report


def _chart(systems: dict[str, dict[str, Any]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    categories = [c for c in CATEGORIES if any(c in s["per_category_f1"] for s in systems.values())]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(categories))
    for k, (name, scores) in enumerate(systems.items()):
        values = [scores["per_category_f1"].get(c, 0.0) for c in categories]
        total = scores["category_f1"]
        label = f"{name} (micro-F1 {total:.3f})" if total is not None else name
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=label)
    support = systems["head"]["per_category_support"]
    ax.set_xticks(x, [f"{c}\n(n={support.get(c, 0)})" for c in categories], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("category F1")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
