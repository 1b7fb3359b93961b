"""Engine, schema base and migrations. The only place that knows which database is in use.

SQLite (WAL) or PostgreSQL (psycopg 3), named by the URL the caller gives; the default
(``$XDG_DATA_HOME/certwarden/inventory.db``) is chosen at the edge (``certwarden.settings``).
The schema is owned by Alembic: every opener runs ``upgrade heads`` (several packages add
their own migration branches).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

from certwarden.errors import UsageError

MIGRATIONS = Path(__file__).parent / "migrations"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime}


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with the schema migrated to the newest. The URL is always
    given: which database (``--db``, the environment, the default file) is the edge's
    decision (``certwarden.settings.database_url``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UsageError(f"database URL is not a SQLAlchemy URL: {_redact(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            try:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot open database {parsed.render_as_string()}: "
                                 f"{exc.strerror or exc}") from None
    try:
        engine = create_engine(parsed, future=True, pool_pre_ping=True)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise UsageError(f"unsupported database URL {parsed.render_as_string()}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except DBAPIError as exc:
        # OperationalError (cannot connect) and DatabaseError ("file is not a database") alike:
        # one line, and the file is left as it was (nothing is written before this fails).
        raise UsageError(f"cannot open database {parsed.render_as_string()}: "
                         f"{str(exc.orig).strip().splitlines()[0]}") from None
    return engine


def _redact(url: str) -> str:
    """The URL without its password, for an error message (it could not be parsed, so by hand)."""
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)  # greedy: an unescaped @ in it too


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


# Any fixed number: the advisory lock that serialises migrations on one PostgreSQL database.
_MIGRATION_LOCK = 0x63657274  # "cert"


def migrate(engine: Engine) -> None:
    """Upgrade to the newest schema, one process at a time.

    Commands started together on a fresh inventory all migrate; unserialised, the losers
    failed with "table ... already exists". The winner migrates while the others wait for
    the lock, then find the schema in place and do nothing: on PostgreSQL an advisory lock
    held for the migration's transaction, on SQLite an exclusive ``flock`` on a file beside
    the database (SQLite's own locks do not cover DDL run outside a transaction)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    try:
        fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a read-only directory: nobody can migrate there anyway
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
