"""Schema migrations: a 486498a database, with data, upgraded to today's schema; new databases; the start-up check.

Runs on SQLite and on PostgreSQL (``postgres_url``). The schema comparison after each upgrade is
also the guard against a table or column added to ``shoplm/store/schema.py`` without a
migration: it fails, saying so.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Boolean, Float, Integer, String, create_engine, insert, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.config import DatabaseSettings
from shoplm.errors import InputError, ShoplmError
from shoplm.store import Store, make_store_engine
from shoplm.store import schema as todays_schema
from shoplm.store.migrate import (
    SchemaOutOfDateError,
    check_schema_current,
    current_revision,
    head_revision,
    schema_differences,
    schema_status,
    upgrade,
)
from tests.store.fixtures import schema_486498a

MISSING_MIGRATION = (
    "the migrated schema differs from shoplm/store/schema.py: a table, column or index was added or "
    "changed without a migration. Add a revision in src/shoplm/store/migrations/versions/ that makes "
    "exactly this change (README, 'PostgreSQL in production'). Differences:\n"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shop.sqlite'}"
    return request.getfixturevalue("postgres_url")


def _engine(url: str):  # a plain engine, as a 486498a shoplm would have had
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def _value(column, row: int):
    """A value for ``column`` in row ``row``; key columns of the same name agree across tables (foreign keys)."""
    if isinstance(column.type, Boolean):
        return row % 2 == 0
    if isinstance(column.type, Integer | BigInteger):
        return 1_700_000_000_000 + row if column.name.endswith("_ms") else row + 1
    if isinstance(column.type, Float):
        return row + 0.25
    text_value = f"{column.name[:3]}{row}-é"  # non-ASCII survives the copy too
    length = getattr(column.type, "length", None)
    return text_value[:length] if length else f"{column.name} of row {row}, 中文"


def _old_rows(rows_per_table: int = 3) -> dict[str, list[dict]]:
    return {
        table.name: [{column.name: _value(column, row) for column in table.columns} for row in range(rows_per_table)]
        for table in schema_486498a.metadata.sorted_tables
    }


def build_486498a_database(url: str, *, extra_tables: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """A database exactly as shoplm at 486498a made it (no revision recorded), with rows in every table."""
    rows = _old_rows()
    engine = _engine(url)
    with engine.begin() as connection:
        schema_486498a.metadata.create_all(connection)
        for table in schema_486498a.metadata.sorted_tables:
            connection.execute(insert(table), rows[table.name])
        for name in extra_tables:  # a database made between 486498a and migrations
            todays_schema.metadata.tables[name].create(connection)
    engine.dispose()
    return rows


def _assert_schema_is_todays(store: Store) -> None:
    differences = schema_differences(store.engine)
    assert not differences, MISSING_MIGRATION + "\n".join(map(str, differences))


def test_an_upgrade_from_486498a_keeps_every_row(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    rows = build_486498a_database(database_url)
    with caplog.at_level("WARNING", logger="shoplm.store.database"):
        store = Store.open(database_url)  # opening leaves a database with tables to the migrations
    assert "lacks the tables alerts, analytics_reports" in caplog.text and "shoplm db upgrade" in caplog.text
    try:
        assert schema_status(store.engine).state == "unmigrated"
        assert "alerts" not in inspect(store.engine).get_table_names()
        with pytest.raises(SchemaOutOfDateError, match="shoplm db upgrade"):
            check_schema_current(store.engine)

        assert upgrade(database_url) == (None, head_revision())

        check_schema_current(store.engine)
        _assert_schema_is_todays(store)
        for name, inserted in rows.items():
            key = [c.name for c in todays_schema.TABLES[name].primary_key.columns]
            stored = store.frame(name, list(inserted[0]), order_by=key)
            assert stored.to_dict("records") == inserted, name
        # ... and through the repositories that serve them
        assert store.orders.get("ord0-é")["status"] == "sta0-é"
        assert [line["quantity"] for line in store.orders.lines("ord0-é")] == [1]
        assert [m["text"] for m in store.conversations.messages("con1-é")] == ["text of row 1, 中文"]
        assert store.api_keys.get("key2-é") is not None
        # the tables added since take rows
        store.upsert("analytics_reports", pd.DataFrame({"name": ["segments"], "body": ["{}"], "computed_ms": [1]}))
        assert store.count("analytics_reports") == 1
        # the audit log is append-only after a migration as in a new database
        store.audit.append(actor="cli", action="export", at_ms=1)
        with pytest.raises(Exception, match="append-only"), store.transaction() as connection:
            connection.execute(text("DELETE FROM audit_log"))
        assert store.count("audit_log") == 1
    finally:
        store.close()


def test_an_upgrade_runs_once(database_url: str) -> None:
    build_486498a_database(database_url)
    head = head_revision()
    assert upgrade(database_url) == (None, head)
    assert upgrade(database_url) == (head, head)
    assert current_revision(database_url) == head


def test_a_database_made_between_486498a_and_migrations_is_upgraded(database_url: str) -> None:
    # analytics_reports and user_scores (with its index) came before migrations did
    build_486498a_database(database_url, extra_tables=("analytics_reports", "user_scores"))
    upgrade(database_url)
    with Store.open(database_url) as store:
        _assert_schema_is_todays(store)


def test_a_new_database_is_created_at_the_newest_revision(database_url: str) -> None:
    with Store.open(database_url) as store:
        assert schema_status(store.engine).current == head_revision()
        _assert_schema_is_todays(store)
    with Store.open(database_url) as again:  # reopening changes nothing
        assert schema_status(again.engine).current == head_revision()


def test_another_applications_tables_do_not_make_a_database_shoplms(database_url: str) -> None:
    engine = _engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE crm_contacts (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert schema_status(database_url).state == "empty"
    with Store.open(database_url) as store:
        assert schema_status(store.engine).state == "current"
        assert "crm_contacts" in inspect(store.engine).get_table_names()


def test_the_revisions_alone_build_todays_schema(database_url: str) -> None:
    assert upgrade(database_url) == (None, head_revision())
    with Store.open(database_url) as store:
        _assert_schema_is_todays(store)


def test_the_baseline_revision_is_the_486498a_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'baseline.sqlite'}"
    upgrade(url, "0001")
    engine = _engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema_486498a.metadata)
    engine.dispose()
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == "alembic_version")] == []


def test_a_database_behind_or_unknown_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0001")
    with pytest.raises(SchemaOutOfDateError, match=r"at schema revision 0001, this shoplm needs .*shoplm db upgrade"):
        check_schema_current(url)
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDateError, match=r"f00d, which this shoplm .* does not know"):
        check_schema_current(url)
    with pytest.raises(SchemaOutOfDateError, match="does not know"):
        upgrade(url)
    with pytest.raises(InputError, match="cannot migrate to revision 'nosuch'"):
        upgrade(f"sqlite:///{tmp_path / 'other.sqlite'}", "nosuch")


def test_a_failing_revision_changes_nothing_and_says_why(database_url: str) -> None:
    # a newer table left behind (a PostgreSQL restore of an older dump keeps it) under an older revision
    upgrade(database_url)
    engine = _engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()
    with pytest.raises(ShoplmError, match=r"migration from revision 0002 failed .*job_runs"):
        upgrade(database_url)
    assert current_revision(database_url) == "0002"
    result = CliRunner().invoke(app, ["db", "upgrade"], env={"SHOPLM_DATABASE_URL": database_url})
    assert result.exit_code == 1 and "job_runs" in result.output and "Traceback" not in result.output


def test_serve_and_the_scheduler_refuse_an_unmigrated_database_naming_the_command(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_486498a_database(database_url)
    monkeypatch.setenv("SHOPLM_DATABASE_URL", database_url)
    started = []
    monkeypatch.setattr("shoplm.serve.workers.run_workers", lambda *a, **k: started.append(a))
    runner = CliRunner()

    refused = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "data"), "--workers", "1"])
    assert refused.exit_code == 2, refused.output
    assert "no schema revision" in refused.output and "shoplm db upgrade" in refused.output
    assert "Traceback" not in refused.output and not started
    scheduled = runner.invoke(app, ["scheduler", "--once", "--data-dir", str(tmp_path / "data")])
    assert scheduled.exit_code == 2 and "shoplm db upgrade" in " ".join(scheduled.output.split()), scheduled.output

    assert runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path / "data")]).exit_code == 0
    served = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "data"), "--workers", "1"])
    assert served.exit_code == 0, served.output
    assert len(started) == 1


def test_db_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    build_486498a_database(url)
    monkeypatch.setenv("SHOPLM_DATABASE_URL", url)
    runner = CliRunner()
    head = head_revision()

    shown = runner.invoke(app, ["db", "current"])
    assert shown.exit_code == 0 and f"revision (none), newest {head}" in shown.output
    checked = runner.invoke(app, ["db", "current", "--check"])
    assert checked.exit_code == 2 and "shoplm db upgrade" in checked.output

    bad = runner.invoke(app, ["db", "upgrade", "--revision", "nosuch"])
    assert bad.exit_code == 2 and "cannot migrate to revision 'nosuch'" in bad.output
    assert current_revision(url) is None  # the failed upgrade changed nothing

    migrated = runner.invoke(app, ["db", "upgrade"])
    assert migrated.exit_code == 0 and f"from revision (none) to {head}" in migrated.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert runner.invoke(app, ["db", "current", "--check"]).exit_code == 0


@pytest.mark.postgres
def test_servers_starting_together_on_a_new_postgres_database_create_it_once(postgres_url: str) -> None:
    failures: list[BaseException] = []

    def start() -> None:
        try:
            Store.open(postgres_url).close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    engine = _engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()


@pytest.mark.postgres
def test_two_upgrades_at_once_migrate_once(postgres_url: str) -> None:
    build_486498a_database(postgres_url)
    results: list[tuple[str | None, str]] = []
    threads = [threading.Thread(target=lambda: results.append(upgrade(postgres_url))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    head = head_revision()
    assert set(results) == {(None, head), (head, head)}  # the second waited, then found it done


@pytest.mark.postgres
def test_the_pool_settings_bound_the_connections(postgres_url: str) -> None:
    engine = make_store_engine(
        postgres_url, pool=DatabaseSettings(pool_size=1, max_overflow=1, pool_timeout_seconds=0.3)
    )
    try:
        first, second = engine.connect(), engine.connect()  # the pool, then its one overflow
        started = time.perf_counter()
        with pytest.raises(PoolTimeoutError, match="QueuePool limit of size 1 overflow 1 reached"):
            engine.connect()
        assert 0.25 < time.perf_counter() - started < 5
        first.close()
        engine.connect().close()  # a connection handed back serves the next
        second.close()
    finally:
        engine.dispose()


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoplm.config import Settings

    monkeypatch.setenv("SHOPLM_DATABASE__POOL_SIZE", "20")
    monkeypatch.setenv("SHOPLM_DATABASE__POOL_RECYCLE_SECONDS", "600")
    settings = Settings()
    assert (settings.database.pool_size, settings.database.pool_recycle_seconds) == (20, 600)
    monkeypatch.setenv("SHOPLM_DATABASE__POOL_SIZE", "0")
    with pytest.raises(ValueError, match="pool_size"):
        Settings()


def test_the_old_schema_fixture_is_not_todays() -> None:
    # the upgrade test would prove nothing if the frozen copy had drifted to today's schema
    assert set(schema_486498a.metadata.tables) < set(todays_schema.metadata.tables)
    assert isinstance(schema_486498a.metadata.tables["items"].c.item_id.type, String)
