"""Alembic's environment for the store: run by :mod:`shoplm.store.migrate` on its connection.

``shoplm db upgrade`` hands over a connection inside its own transaction (``config.attributes``),
so the whole upgrade commits or rolls back as one on PostgreSQL. Given a config whose
``sqlalchemy.url`` names the database instead (:func:`shoplm.store.migrations.alembic_config`
with ``url=``), it opens its own connection, or prints the SQL in offline mode. SQLite cannot alter most of a
table in place, so its migrations run in batch mode (copy, alter, swap).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url

from shoplm.store.schema import metadata  # for autogenerate's comparisons only; revisions never import it

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    """Print the SQL instead of running it (``--sql``), for a DBA to review or apply."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=config.get_main_option("sqlalchemy.url", "").startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = make_url(config.get_main_option("sqlalchemy.url", ""))
    if url.drivername == "postgresql":  # the driver shoplm installs, not SQLAlchemy's default psycopg2
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.connect() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
