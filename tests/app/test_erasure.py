"""Forget, export, re-key, key rotation and the audit log, on tiny stores built in each test."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from typer.testing import CliRunner

from shoplm.app.erasure import Subject, drop_user_rows, export_user, forget_user, retraining_status, what_files_hold
from shoplm.app.erasure_files import Matcher
from shoplm.app.keys import KeyStore
from shoplm.app.registry import ModelRegistry
from shoplm.app.rekey import rekey
from shoplm.cli.main import app
from shoplm.config import Settings
from shoplm.errors import InputError, NotFoundError
from shoplm.estimator import Estimator
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store import Store


class UserTable(Estimator):
    """A test double of a model that keeps one row per user (as a user-factor model would)."""

    def __init__(self, dim: int = 2) -> None:
        self.dim = dim

    def fit(self, users: list[str]) -> UserTable:
        self.user_ids_ = np.asarray(users, dtype=np.str_)
        self.factors_ = np.arange(len(users) * self.dim, dtype=np.float32).reshape(len(users), self.dim)
        self.scale_ = np.ones(self.dim, dtype=np.float32)
        return self

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"user_ids": self.user_ids_, "factors": self.factors_, "scale": self.scale_}, {"dim": self.dim}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.user_ids_, self.factors_, self.scale_ = arrays["user_ids"], arrays["factors"], arrays["scale"]
        if len(self.user_ids_) != len(self.factors_):
            raise ValueError("user ids and factors differ in length")


def _events(users: list[str], *, start: int = 0) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {
            "event_id": [f"e{start + i}" for i in range(n)],
            "user_id": users,
            "item_id": [f"i{i % 3}" for i in range(n)],
            "event_type": ["view"] * n,
            "ts_ms": [1_700_000_000_000 + start + i for i in range(n)],
            "scene": [""] * n,
            "query": [""] * n,
            "session_id": [""] * n,
            "suspected_bot": [False] * n,
        }
    )


@pytest.fixture
def shop(settings: Settings, store: Store) -> tuple[Settings, Store, Pseudonymizer]:
    """Two users (U1, U2) with events, a review, an order, a conversation, a churn score, a report, an alert."""
    p = Pseudonymizer(settings.hmac_key)
    u1, u2 = p.user("U1"), p.user("U2")
    store.upsert("events", _events([u1, u1, u2]))
    store.upsert(
        "reviews",
        pd.DataFrame(
            {
                "review_id": ["r1", "r2"],
                "item_id": ["i0", "i1"],
                "user_id": [u1, u2],
                "rating": [5, 3],
                "text": ["U1 adored this kettle, boils fast", "fine"],
                "language": ["en", "en"],
                "ts_ms": [1, 2],
            }
        ),
    )
    store.review_sentiment.upsert(
        {
            "review_id": r,
            "text_hash": h,
            "polarity": "positive",
            "p_positive": 0.9,
            "rating_estimate": 4.6,
            "model_version": "m",
        }
        for r, h in (("r1", "h1"), ("r2", "h2"))
    )
    store.upsert(
        "orders",
        pd.DataFrame(
            {
                "order_id": ["o1", "o2"],
                "user_id": [u1, u2],
                "status": ["paid", "paid"],
                "currency": ["EUR"] * 2,
                "total_amount": [10.0, 20.0],
                "country": ["DE"] * 2,
                "shipping_address": [""] * 2,
                "created_ms": [1, 2],
                "updated_ms": [1, 2],
                "content_hash": ["a", "b"],
            }
        ),
    )
    store.upsert(
        "order_lines",
        pd.DataFrame(
            {
                "order_id": ["o1", "o2"],
                "line_no": [1, 1],
                "item_id": ["i0", "i1"],
                "quantity": [1, 2],
                "unit_price": [10.0, 10.0],
            }
        ),
    )
    store.analytics.replace_user_scores("churn", pd.DataFrame({"user_id": [u1, u2], "score": [0.9, 0.1]}))
    store.analytics.save_report(
        "segments", {"members": [{"user_id": u1, "segment": "vip"}, {"user_id": u2, "segment": "new"}]}
    )
    store.alerts.add(
        [
            {"alert_id": "fraud:o1", "kind": "fraud", "subject": "o1", "score": 0.9, "title": "odd order", "body": {}},
            {"alert_id": "fraud:o2", "kind": "fraud", "subject": "o2", "score": 0.8, "title": "odd order", "body": {}},
        ]
    )
    return settings, store, p


def test_forget_removes_every_row_of_the_user_and_keeps_the_others(shop: tuple[Settings, Store, Pseudonymizer]) -> None:
    settings, store, p = shop
    u1, u2 = p.user("U1"), p.user("U2")
    others = store.erasure.counts(u2)
    report = forget_user(store, settings, "U1")
    assert report.rows == {
        "events": 2,
        "reviews": 1,
        "review_sentiment": 1,
        "orders": 1,
        "order_lines": 1,
        "user_scores": 1,
        "alerts": 1,
        "analytics_reports": 1,
    }
    assert not any(store.erasure.counts(u1).values())
    assert store.erasure.counts(u2) == {**others, "analytics_reports": 1}
    members = store.analytics.report("segments")["body"]["members"]
    assert members == [{"user_id": u2, "segment": "new"}]
    assert [a["alert_id"] for a in store.alerts.recent("fraud")] == ["fraud:o2"]


def test_export_has_every_row_of_the_user_only_and_is_audited(shop: tuple[Settings, Store, Pseudonymizer]) -> None:
    settings, store, p = shop
    document = export_user(store, settings, "U1", actor="k123")
    assert document["user_id"] == "U1" and document["pseudonymous_id"] == p.user("U1")
    tables = document["tables"]
    assert len(tables["events"]) == 2 and tables["reviews"][0]["text"].startswith("U1 adored")
    assert tables["orders"][0]["order_id"] == "o1" and tables["order_lines"][0]["quantity"] == 1
    assert p.user("U2") not in json.dumps(tables["events"] + tables["reviews"] + tables["orders"])
    assert [row["review_id"] for row in tables["review_sentiment"]] == ["r1"]  # their review's score, not U2's
    entry = store.audit.entries()[-1]
    assert (entry["actor"], entry["action"], entry["details"]["rows"]) == ("k123", "export", 9)
    assert "U1" not in json.dumps(entry) and p.user("U1") not in json.dumps(entry)


def test_an_unknown_user_is_not_found_and_a_pseudonym_is_accepted(shop: tuple[Settings, Store, Pseudonymizer]) -> None:
    settings, store, p = shop
    counts = store.counts()
    with pytest.raises(NotFoundError):
        forget_user(store, settings, "U404")
    with pytest.raises(NotFoundError):
        export_user(store, settings, "U404")
    assert store.counts() == counts
    # What the API showed an admin (the pseudonym) names the user too.
    assert forget_user(store, settings, p.user("U2")).rows["events"] == 1


def test_files_under_the_data_dir_lose_the_users_rows(shop: tuple[Settings, Store, Pseudonymizer]) -> None:
    settings, store, _ = shop
    rejects = settings.data_dir / "rejects" / "events.csv.rejects.csv"
    rejects.parent.mkdir(parents=True)
    rejects.write_text(
        'line,field,reason,user_id\n2,event_type,unknown,U1\n3,event_type,unknown,U2\n4,,broken,"x,U1,y"\n'
    )
    vectors = settings.data_dir / "embeddings" / "reviews-test.npz"
    vectors.parent.mkdir(parents=True)
    np.savez(vectors, review_ids=np.array(["r1", "r2"]), vectors=np.eye(2, dtype=np.float32))
    source = settings.data_dir / "demo-source" / "reviews.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text('{"user_id": "U1", "text": "x"}\n{"user_id": "U12", "text": "y"}\n')
    report = forget_user(store, settings, "U1")
    assert sorted(report.files) == [
        "demo-source/reviews.jsonl",
        "embeddings/reviews-test.npz",
        "rejects/events.csv.rejects.csv",
    ]
    assert rejects.read_text().splitlines() == ["line,field,reason,user_id", "3,event_type,unknown,U2"]
    assert source.read_text() == '{"user_id": "U12", "text": "y"}\n'  # U12 is another user
    with np.load(vectors) as left:
        assert left["review_ids"].tolist() == ["r2"] and left["vectors"].tolist() == [[0.0, 1.0]]


def test_a_models_user_rows_are_dropped_and_it_still_loads(
    shop: tuple[Settings, Store, Pseudonymizer], tmp_path: Path
) -> None:
    settings, store, p = shop
    u1, u2 = p.user("U1"), p.user("U2")
    version = settings.models_dir / "versions" / "20260101T000000.000000-abcd"
    UserTable().fit([u2, u1, "u_other"]).save(version / "users")
    (settings.models_dir / "CURRENT").write_text(version.name + "\n")
    report = forget_user(store, settings, "U1", verify=True)
    assert report.models_rewritten == [f"versions/{version.name}/users"] and report.residue == []
    model = Estimator.load(version / "users")  # the hashes in meta.json match the new files
    assert model.user_ids_.tolist() == [u2, "u_other"]
    assert model.factors_.tolist() == [[0.0, 1.0], [4.0, 5.0]] and model.scale_.tolist() == [1.0, 1.0]
    # The live version changed: a copy of it is published, so running servers (polling the pointer) reload.
    live = ModelRegistry(settings.models_dir).current()
    assert live != version.name
    assert Estimator.load(settings.models_dir / "versions" / live / "users").user_ids_.tolist() == [u2, "u_other"]
    status = retraining_status(settings)
    assert status["live_needs_retraining"] and status["flagged"][f"versions/{version.name}"]["forgotten_users"] == 1
    # Without a matching row there is nothing to rewrite.
    assert not drop_user_rows(version / "users", Matcher(raw_id="nobody", pseudonym="u_nobody"))


def test_rekey_keeps_histories_joined_and_old_pseudonyms_gone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = Store.open(settings.database_url)
    old = Pseudonymizer(settings.hmac_key)
    store.upsert("events", _events([old.user("U1"), old.user("U1"), old.user("U2")]))
    store.upsert(
        "users",
        pd.DataFrame(
            {
                "user_id": [old.user("U1")],
                "email_hash": [old.email("a@b.co")],
                "country": [""],
                "attributes": ["{}"],
                "content_hash": ["h"],
            }
        ),
    )
    store.analytics.save_report("segments", {"members": [old.user("U1")]})
    version = settings.models_dir / "versions" / "20260101T000000.000000-abcd"
    UserTable().fit([old.user("U2"), old.user("U1")]).save(version / "users")
    result = rekey(store, settings, actor="cli")
    assert (result.users, result.generation) == (2, 2)
    new = Pseudonymizer(Settings(data_dir=settings.data_dir).hmac_key)
    assert new.user("U1") != old.user("U1") and not any(store.erasure.counts(old.user("U1")).values())
    # A new event of U1, pseudonymized with the new chain, joins their history.
    store.upsert("events", _events([new.user("U1")], start=100))
    assert len(store.events.history(new.user("U1"), limit=10)) == 3
    assert store.frame("users")["email_hash"].tolist() == [new.email("a@b.co")]
    assert store.analytics.report("segments")["body"]["members"] == [new.user("U1")]
    assert store.audit.entries(action="rekey")[-1]["details"]["users"] == 2
    # A model's per-user rows carry the new pseudonyms, and it still loads (its hashes renewed).
    assert result.rows["models"] == 1
    assert Estimator.load(version / "users").user_ids_.tolist() == [new.user("U2"), new.user("U1")]
    store.close()


def test_a_key_chain_hashes_each_digest_again() -> None:
    first, second = Pseudonymizer(b"k0"), Pseudonymizer(b"k1")
    chain = Pseudonymizer(b"k0\nk1")
    assert chain.user("U1") == "u_" + second.digest("user", first.user("U1").removeprefix("u_"))
    assert chain.email("A@b.co") == second.digest("email", first.email("a@b.co"), 32)
    assert Pseudonymizer(b"k0\n").user("U1") == first.user("U1")


def test_rekey_refuses_a_key_set_in_settings_and_an_interrupted_run(settings: Settings, store: Store) -> None:
    with pytest.raises(InputError, match="set in the settings"):
        rekey(store, settings)
    free = Settings(data_dir=settings.data_dir / "other")
    _ = free.hmac_key
    (free.data_dir / "secret.key.pending").write_text("x")
    with pytest.raises(InputError, match="stopped midway"):
        rekey(store, free)


def test_the_audit_log_is_append_only(store: Store) -> None:
    store.audit.append(actor="cli", action="forget", subject_hash="h", at_ms=1)
    for statement in ("UPDATE audit_log SET actor = 'me'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), store.transaction() as conn:
            conn.execute(text(statement))
    assert [e["actor"] for e in store.audit.entries()] == ["cli"]
    with pytest.raises(ValueError, match="unknown audit action"):
        store.audit.append(actor="cli", action="drop everything", at_ms=2)


def test_rotating_a_key_replaces_its_secret(store: Store) -> None:
    keys = KeyStore(store, recheck_seconds=0)
    first = keys.create("admin", name="ops")
    rotated = keys.rotate(first.key.key_id)
    assert (rotated.key.scope, rotated.key.name) == ("admin", "ops")
    assert keys.verify(first.secret) is None and keys.verify(rotated.secret).key_id == rotated.key.key_id
    with pytest.raises(InputError, match="no active key"):
        keys.rotate(first.key.key_id)
    assert not keys.revoke("nope", actor="k1")  # nothing done, nothing audited
    entries = [(e["action"], e["actor"]) for e in store.audit.entries()]
    assert entries == [("key_create", "cli")] * 2 + [("key_revoke", "cli"), ("key_rotate", "cli")]


def test_the_residue_check_says_what_it_found_where(tmp_path: Path) -> None:
    subject = Subject(pseudonym="u_5eed", raw_id="12347", texts=("the strap broke after two days",))
    (tmp_path / "events.db").write_bytes(b"\x00inv-537374-12347\x05u_other\x00")  # a row index, not the user
    (tmp_path / "model.npz").write_bytes("u_5eed".encode("utf-32-le"))
    (tmp_path / "rejects.csv").write_text("12347,the strap broke after two days\n")
    (tmp_path / "clean.csv").write_text("123470,u_5eee\n")  # 12347 is no whole token here
    found = {path.name: kinds for path, kinds in what_files_hold(tmp_path, subject).items()}
    assert found == {"events.db": ["raw id"], "model.npz": ["pseudonym"], "rejects.csv": ["raw id", "text"]}


# -- the command line ---------------------------------------------------------------------------
def test_cli_forget_export_rekey_rotate_and_status(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    store = Store.open(settings.database_url)
    store.upsert("events", _events([Pseudonymizer(settings.hmac_key).user(u) for u in ("U1", "U2")]))
    key = KeyStore(store).create("admin", name="ops")
    store.close()
    runner = CliRunner()
    d = ["--data-dir", str(data_dir)]

    refused = runner.invoke(app, ["forget", "U1", *d])
    assert refused.exit_code == 2 and "--yes" in refused.output
    unknown = runner.invoke(app, ["forget", "U404", "--yes", *d])
    assert unknown.exit_code == 2 and "no stored data of user 'U404'" in unknown.output
    exported = runner.invoke(app, ["export-user", "U1", "--out", str(tmp_path / "u1.json"), *d])
    assert exported.exit_code == 0, exported.output
    assert len(json.loads((tmp_path / "u1.json").read_text())["tables"]["events"]) == 1
    forgot = runner.invoke(app, ["forget", "U1", "--yes", "--verify", *d])
    assert forgot.exit_code == 0 and "verified" in forgot.output, forgot.output
    assert runner.invoke(app, ["export-user", "U1", *d]).exit_code == 2
    assert runner.invoke(app, ["rekey", *d]).exit_code == 2
    assert runner.invoke(app, ["rekey", "--yes", *d]).exit_code == 0
    rotated = runner.invoke(app, ["keys", "rotate", key.key.key_id, *d])
    assert rotated.exit_code == 0 and rotated.output.strip().splitlines()[-1].startswith("slm_")
    assert runner.invoke(app, ["keys", "rotate", "nope", *d]).exit_code == 2
    status = runner.invoke(app, ["privacy-status", "--json", *d])
    assert status.exit_code == 0, status.output
    actions = [e["action"] for e in json.loads(status.output)["audit"]]
    # Key administration is audited by the key store itself: creating the admin key above, and
    # the rotation's new key, revoked old key and the rotation that ties them together.
    assert actions == ["key_create", "export", "forget", "rekey", "key_create", "key_revoke", "key_rotate"]


@pytest.mark.parametrize(
    "module",
    [
        "shoplm.app.erasure",
        "shoplm.app.erasure_files",
        "shoplm.app.audit",
        "shoplm.app.rekey",
        "shoplm.store.erasure",
        "shoplm.store.audit",
    ],
)
def test_docstring_examples(module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
