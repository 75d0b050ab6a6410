"""A store fixture over every backend: SQLite always, PostgreSQL when a server is given.

PostgreSQL runs where SHOPLM_TEST_POSTGRES_URL names a server (``.ci/run`` installs and
starts one on loopback). In CI its absence is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shoplm.config import Settings
from shoplm.store import Store
from tests.conftest import require_in_ci

POSTGRES_URL = os.environ.get("SHOPLM_TEST_POSTGRES_URL", "")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        require_in_ci("no PostgreSQL server: set SHOPLM_TEST_POSTGRES_URL (.ci/run starts one)")
    admin_url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"shoplm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    url = settings.database_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = Store.open(url)
    yield opened
    opened.close()
