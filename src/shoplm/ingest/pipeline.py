"""Ingestion: a file or DataFrame in, validated, cleaned and pseudonymized rows in the store.

Nothing is dropped silently: every row read is accepted, rejected (with its line, field and
reason, written to a rejects file beside the input) or a duplicate, and the report says
``read = accepted + rejected + duplicates``. Each chunk commits in one transaction, and
ingesting the same data again adds nothing, so an interrupted ingest is simply re-run.

Example:
    >>> import pandas as pd, tempfile
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp())
    >>> store = Store.open(settings.database_url)
    >>> items = pd.DataFrame({"item_id": ["1", "2"], "title": ["Mug", "杯子"], "price": [3.5, -1]})
    >>> report = ingest("items", items, store=store, settings=settings)
    >>> report.accepted, report.rejected, report.rejects.iloc[0]["reason"]
    (1, 1, 'price: negative: -1')
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pseudonymize import Pseudonymizer, mask_series
from shoplm.ingest.readers import Chunk, Source, open_source
from shoplm.ingest.schemas import KINDS, KindSpec
from shoplm.ingest.validate import validate_chunk
from shoplm.store import Store, UpsertResult, content_hash
from shoplm.store.orders import batch_content_hashes

ProgressCallback = Callable[[int, int], None]  # (done, total) in the source's size unit


@dataclass
class IngestReport:
    """What one ingest did. ``read == accepted + rejected + duplicates`` always holds."""

    kind: str
    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    duplicates: int = 0
    flagged_bots: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["line", "field", "reason"]))
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated

    @property
    def balanced(self) -> bool:
        return self.read == self.accepted + self.rejected + self.duplicates

    def summary(self) -> str:
        text = (
            f"{self.kind}: read {self.read:,} = accepted {self.accepted:,} (new {self.inserted:,}, "
            f"updated {self.updated:,}) + rejected {self.rejected:,} + duplicates {self.duplicates:,}"
        )
        if self.flagged_bots:
            text += f"; {self.flagged_bots:,} events flagged as bot-like bursts"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "read": self.read,
            "accepted": self.accepted,
            "inserted": self.inserted,
            "updated": self.updated,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "flagged_bots": self.flagged_bots,
            "seconds": round(self.seconds, 3),
            "rejects_path": str(self.rejects_path) if self.rejects_path else None,
            "warnings": self.warnings,
        }


# Keep at most this many rejected rows in memory for the report; all go to the rejects file.
_REJECTS_IN_REPORT = 1_000
BROWSE_EVENTS = ("view", "click", "search")


def ingest(
    kind: str,
    source: str | Path | pd.DataFrame,
    *,
    store: Store,
    settings: Settings,
    encoding: str = "utf-8",
    rejects_path: Path | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest a file (CSV, TSV, JSONL, Parquet) or a DataFrame of ``kind`` into ``store``.

    Raises :class:`InputError` for problems with the whole input (missing file, wrong
    columns, wrong encoding, corrupt Parquet) before anything of it is stored; bad rows are
    rejected one by one and reported instead.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise InputError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    started = time.perf_counter()
    reader = open_source(source, encoding=encoding)
    report = IngestReport(kind=kind, source=reader.label)
    columns = _check_columns(reader, spec, report)
    writer = _RejectsWriter(reader, rejects_path, settings, columns)
    transform = _Transformer(spec, Pseudonymizer(settings.hmac_key), settings)
    pending_orders: pd.DataFrame | None = None
    try:
        for chunk in reader.chunks(settings.ingest.chunk_rows):
            chunk.frame = _apply_aliases(chunk.frame, spec)
            report.read += len(chunk.frame) + len(chunk.broken)
            now_ms = int(time.time() * 1000)
            checked = validate_chunk(
                chunk.frame,
                spec,
                now_ms=now_ms,
                future_tolerance_ms=settings.ingest.future_tolerance_seconds * 1000,
            )
            _record_rejects(report, writer, chunk, checked.good, checked.reasons, checked.first_field)
            good = checked.frame
            if spec.kind == "orders":
                # Lines of one order may straddle chunks: hold back the last order until the next chunk.
                if pending_orders is not None:
                    good = pd.concat([pending_orders, good], ignore_index=True)
                good, pending_orders = _split_last_order(good)
            _store_chunk(transform, good, store, report)
            if progress is not None:
                progress(chunk.bytes_read, reader.size)
        if pending_orders is not None and len(pending_orders):
            _store_chunk(transform, pending_orders, store, report)
    finally:
        writer.close()
    report.rejects_path = writer.path if report.rejected else None
    report.seconds = time.perf_counter() - started
    if report.read == 0:
        raise InputError("the file has a header but no rows", path=reader.label)
    assert report.balanced, report.summary()
    return report


def _check_columns(reader: Source, spec: KindSpec, report: IngestReport) -> list[str]:
    columns = [spec.aliases.get(c, c) for c in reader.columns()]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InputError(f"column(s) named twice: {', '.join(duplicated)}", path=reader.label)
    missing = [name for name in spec.required if name not in columns]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(repr(m) for m in missing)} for {spec.kind}; "
            f"found: {', '.join(columns) or 'none'}; expected: {', '.join(spec.names)}",
            path=reader.label,
        )
    extra = [c for c in columns if c not in spec.names]
    if extra:
        what = "kept as attributes" if spec.extra_to_attributes else "ignored"
        report.warnings.append(f"unknown column(s) {', '.join(extra)}: {what}")
    return reader.columns()


def _apply_aliases(frame: pd.DataFrame, spec: KindSpec) -> pd.DataFrame:
    if spec.aliases and any(c in spec.aliases for c in frame.columns):
        frame = frame.rename(columns=spec.aliases)
    return frame


class _RejectsWriter:
    """Appends rejected rows to ``<input>.rejects.csv`` (or data_dir/rejects/ if that is not writable)."""

    def __init__(self, reader: Source, path: Path | None, settings: Settings, columns: list[str]) -> None:
        self.columns = columns
        self.handle = None
        self.writer: csv.writer | None = None  # type: ignore[valid-type]
        self.path: Path | None = None
        if path is not None:
            self.path = path
        elif not reader.label.startswith("<"):  # a DataFrame keeps its rejects in the report only
            source = Path(reader.label)
            self.path = source.with_name(source.name + ".rejects.csv")
        self.fallback = settings.data_dir / "rejects" / (self.path.name if self.path else "rejects.csv")

    def write(self, rows: list[list[object]]) -> None:
        if self.path is None or not rows:
            return
        if self.handle is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.handle = self.path.open("w", encoding="utf-8", newline="")
            except OSError:
                self.path = self.fallback
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.handle = self.path.open("w", encoding="utf-8", newline="")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(["line", "field", "reason", *self.columns])
        self.writer.writerows(rows)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _record_rejects(
    report: IngestReport,
    writer: _RejectsWriter,
    chunk: Chunk,
    good: np.ndarray,
    reasons: list[str],
    fields: list[str],
) -> None:
    rows: list[list[object]] = [[line, "", reason, raw] for line, reason, raw in chunk.broken]
    bad = np.flatnonzero(~good)
    if len(bad):
        raw = chunk.frame.iloc[bad].astype(object).where(chunk.frame.iloc[bad].notna(), "")
        for position, values in zip(bad, raw.itertuples(index=False, name=None), strict=True):
            rows.append([int(chunk.lines[position]), fields[position], reasons[position], *values])
    report.rejected += len(rows)
    writer.write(rows)
    room = _REJECTS_IN_REPORT - len(report.rejects)
    if rows and room > 0:
        extra = pd.DataFrame([r[:3] for r in rows[:room]], columns=["line", "field", "reason"])
        report.rejects = extra if report.rejects.empty else pd.concat([report.rejects, extra], ignore_index=True)


def _split_last_order(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame.empty:
        return frame, frame
    last = frame["order_id"].iloc[-1]
    is_last = (frame["order_id"] == last).to_numpy()
    return frame[~is_last], frame[is_last]


def _hash_ids(frame: pd.DataFrame, columns: list[str], prefix: str) -> pd.Series:
    return prefix + content_hash(frame, columns).str.slice(0, 24)


class _Transformer:
    """Turns validated rows of one kind into store rows: pseudonymize, mask, derive, dedupe."""

    def __init__(self, spec: KindSpec, pseudonymizer: Pseudonymizer, settings: Settings) -> None:
        self.spec = spec
        self.p = pseudonymizer
        self.settings = settings

    def pseudonymize(self, frame: pd.DataFrame) -> pd.DataFrame:
        for spec_field in self.spec.fields:
            if spec_field.pii == "id":
                frame[spec_field.name] = self.p.users(frame[spec_field.name])
            elif spec_field.pii == "free_text":
                frame[spec_field.name] = mask_series(frame[spec_field.name])
        return frame


def _store_chunk(transform: _Transformer, frame: pd.DataFrame, store: Store, report: IngestReport) -> None:
    if frame.empty:
        return
    frame = transform.pseudonymize(frame.copy())
    kind = transform.spec.kind
    with store.transaction() as conn:
        if kind == "items":
            rows = _items_rows(frame)
            result = store.upsert("items", rows, connection=conn)
            _count(report, result, len(frame))
        elif kind == "users":
            rows = _users_rows(frame, transform.p)
            _count(report, store.upsert("users", rows, connection=conn), len(frame))
        elif kind == "events":
            rows = _events_rows(frame, transform.settings)
            report.flagged_bots += int(rows["suspected_bot"].sum())
            _count(report, store.upsert("events", rows, connection=conn), len(frame))
        elif kind == "reviews":
            rows = _reviews_rows(frame)
            _count(report, store.upsert("reviews", rows, connection=conn), len(frame))
        elif kind == "conversations":
            conversations, messages = _conversation_rows(frame)
            store.upsert("conversations", conversations, connection=conn)
            _count(report, store.upsert("messages", messages, connection=conn), len(frame))
        elif kind == "orders":
            _store_orders(store, conn, frame, report)
        elif kind == "impressions":
            _count(report, store.upsert("impressions", _impressions_rows(frame), connection=conn), len(frame))


def _count(report: IngestReport, result: UpsertResult, rows_in: int) -> None:
    """Rows collapsed as in-file duplicates count as duplicates, like rows already stored."""
    report.inserted += result.inserted
    report.updated += result.updated
    report.duplicates += rows_in - result.inserted - result.updated


def _json_attributes(frame: pd.DataFrame, known: list[str]) -> pd.Series:
    extra = [c for c in frame.columns if c not in known]
    base = frame["attributes"] if "attributes" in frame.columns else pd.Series(["{}"] * len(frame), index=frame.index)
    if not extra:
        return base.map(lambda t: json.dumps(json.loads(t or "{}"), ensure_ascii=False, sort_keys=True))
    records = frame[extra].astype(str).to_dict("records")
    return pd.Series(
        [
            json.dumps(
                {**json.loads(b or "{}"), **{k: v for k, v in r.items() if v != ""}}, ensure_ascii=False, sort_keys=True
            )
            for b, r in zip(base, records, strict=True)
        ],
        index=frame.index,
    )


_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"


def guess_language(texts: pd.Series) -> pd.Series:
    """'zh' where the text has Chinese characters, else 'en'."""
    return np.where(texts.str.contains(_CJK, regex=True), "zh", "en")  # type: ignore[return-value]


def _items_rows(frame: pd.DataFrame) -> pd.DataFrame:
    spec = KINDS["items"]
    rows = pd.DataFrame(
        {
            "item_id": frame["item_id"],
            "title": frame["title"],
            "description": frame["description"],
            "category": frame["category"].str.replace(r"\s*[/>]\s*", " > ", regex=True),
            "brand": frame["brand"],
            "price": frame["price"],
            "currency": frame["currency"].str.upper(),
            "stock": frame["stock"],
            "language": frame["language"].str.lower().where(frame["language"] != "", guess_language(frame["title"])),
            "attributes": _json_attributes(frame, spec.names),
        }
    )
    rows["stock"] = rows["stock"].astype("Int64")
    rows["content_hash"] = content_hash(rows, list(rows.columns))
    rows["updated_ms"] = int(time.time() * 1000)
    return rows


def _users_rows(frame: pd.DataFrame, p: Pseudonymizer) -> pd.DataFrame:
    spec = KINDS["users"]
    rows = pd.DataFrame(
        {
            "user_id": frame["user_id"],
            "email_hash": p.emails(frame["email"]).replace("", None),
            "phone_hash": p.phones(frame["phone"]).replace("", None),
            "country": frame["country"],
            "attributes": _json_attributes(frame.drop(columns=["email", "phone"]), spec.names),
            "created_ms": frame["created_at"].where(frame["created_at"] > 0, None),
        }
    )
    # Extra columns may carry PII of their own: mask it in attributes too.
    rows["attributes"] = mask_series(rows["attributes"])
    rows["content_hash"] = content_hash(rows, list(rows.columns))
    return rows


def _events_rows(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "user_id": frame["user_id"],
            "item_id": frame["item_id"].replace("", None),
            "event_type": frame["event_type"],
            "scene": frame["scene"],
            "query": frame["query"],
            "value": frame["value"],
            "ts_ms": frame["ts_ms"] if "ts_ms" in frame.columns else frame["timestamp"],
            "session_id": frame["session_id"],
        }
    )
    hashed = _hash_ids(rows.fillna(""), ["user_id", "item_id", "event_type", "ts_ms", "session_id", "query"], "h_")
    rows.insert(0, "event_id", frame["event_id"].where(frame["event_id"] != "", hashed))
    # Only browsing counts toward a burst: one checkout legitimately writes many purchase
    # events in the same second (UCI Online Retail invoices do), a scraper writes views.
    browsing = rows["event_type"].isin(BROWSE_EVENTS).to_numpy()
    flags = np.zeros(len(rows), dtype=bool)
    flags[browsing] = flag_bursts(
        rows["user_id"].to_numpy()[browsing],
        rows["ts_ms"].to_numpy()[browsing],
        min_events=settings.ingest.bot_burst_events,
        window_ms=settings.ingest.bot_burst_seconds * 1000,
    )
    rows["suspected_bot"] = flags
    return rows


def flag_bursts(users: np.ndarray, ts_ms: np.ndarray, *, min_events: int, window_ms: int) -> np.ndarray:
    """True for events in a burst: ``min_events`` or more from one user within ``window_ms``.

    Example:
        >>> flag_bursts(np.array(["a"] * 3 + ["b"]), np.array([0, 10, 20, 30]), min_events=3, window_ms=50)
        array([ True,  True,  True, False])
    """
    n = len(users)
    flags = np.zeros(n, dtype=bool)
    if n < min_events:
        return flags
    order = np.lexsort((ts_ms, users))
    u, t = users[order], ts_ms[order]
    span = min_events - 1
    # A window of min_events consecutive events (sorted by user, time) ends at i.
    ends = np.flatnonzero((u[span:] == u[:-span]) & (t[span:] - t[:-span] <= window_ms)) + span
    if len(ends):
        marks = np.zeros(n + 1, dtype=np.int64)
        np.add.at(marks, ends - span, 1)
        np.add.at(marks, ends + 1, -1)
        flags[order] = np.cumsum(marks[:-1]) > 0
    return flags


def _reviews_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "item_id": frame["item_id"],
            "user_id": frame["user_id"].replace("", None),
            "rating": frame["rating"].astype("Int64"),
            "text": frame["text"],
            "language": frame["language"].str.lower().where(frame["language"] != "", guess_language(frame["text"])),
            "ts_ms": frame["timestamp"],
        }
    )
    # The rating is not hashed, and an empty Int64 column cannot take "" (a file without ratings).
    hashed = _hash_ids(rows.drop(columns=["rating"]).fillna(""), ["item_id", "user_id", "ts_ms", "text"], "r_")
    rows.insert(0, "review_id", frame["review_id"].where(frame["review_id"] != "", hashed))
    return rows


def _impressions_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Store rows of impressions; a ``p_click`` column (the demo's ground truth) is never stored."""
    return pd.DataFrame(
        {
            "request_id": frame["request_id"],
            "position": frame["position"].astype(np.int64),
            "user_id": frame["user_id"],
            "item_id": frame["item_id"],
            "ts_ms": frame["ts"],
            "scene": frame["scene"],
            "clicked": frame["clicked"] > 0,
            "added_to_cart": frame["added_to_cart"].fillna(0) > 0,
            "creative": frame["creative"].astype("Int64"),
        }
    )


def _conversation_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    messages = pd.DataFrame(
        {
            "conversation_id": frame["conversation_id"],
            "role": frame["role"],
            "text": frame["text"],
            "intent": frame["intent"],
            "ts_ms": frame["timestamp"],
        }
    )
    hashed = _hash_ids(messages, ["conversation_id", "role", "ts_ms", "text"], "m_")
    messages.insert(0, "message_id", frame["message_id"].where(frame["message_id"] != "", hashed))
    grouped = frame.assign(user_id=frame["user_id"].replace("", None)).groupby("conversation_id", sort=False)
    conversations = pd.DataFrame(
        {
            "user_id": grouped["user_id"].first(),
            "channel": grouped["channel"].first(),
            "started_ms": grouped["timestamp"].min(),
        }
    ).reset_index()
    conversations["status"] = "open"
    conversations["state"] = "{}"
    return conversations, messages


def _store_orders(store: Store, conn: object, frame: pd.DataFrame, report: IngestReport) -> None:
    frame = frame.copy()
    if (frame["line_no"].isna()).any():
        position = frame.groupby("order_id", sort=False).cumcount().astype(np.float64)
        frame["line_no"] = frame["line_no"].fillna(position)
    frame["amount"] = frame["quantity"] * frame["unit_price"]
    grouped = frame.groupby("order_id", sort=False)
    orders = pd.DataFrame(
        {
            "user_id": grouped["user_id"].first().replace("", None),
            "status": grouped["status"].first(),
            "currency": grouped["currency"].first().str.upper(),
            "total_amount": grouped["amount"].sum().round(2),
            "country": grouped["country"].first(),
            "shipping_address": grouped["shipping_address"].first(),
            "created_ms": grouped["created_at"].first(),
            "updated_ms": grouped["updated_at"].max(),
        }
    ).reset_index()
    orders["updated_ms"] = orders["updated_ms"].where(orders["updated_ms"] > 0, orders["created_ms"])
    lines = pd.DataFrame(
        {
            "order_id": frame["order_id"],
            "line_no": frame["line_no"].astype(np.int64),
            "item_id": frame["item_id"],
            "quantity": frame["quantity"].astype(np.int64),
            "unit_price": frame["unit_price"],
        }
    ).drop_duplicates(["order_id", "line_no"], keep="last")
    # The order's hash covers its lines, so a changed line updates the order.
    orders["content_hash"] = batch_content_hashes(orders, lines)
    saved = store.orders.save_batch(orders, lines, connection=conn)  # type: ignore[arg-type]
    if saved.stale:
        report.warnings.append(f"{saved.stale} order(s) are older than the stored state and were kept as stored")
    new_ids, changed_ids = saved.new_ids, saved.changed_ids
    inserted = int(frame["order_id"].isin(new_ids).sum())
    updated = int(frame["order_id"].isin(changed_ids).sum())
    report.inserted += inserted
    report.updated += updated
    report.duplicates += len(frame) - inserted - updated
