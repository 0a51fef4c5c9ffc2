"""The metadata database: engine setup, migrations on open, and safe write transactions.

SQLite gets WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes (so two
writers queue instead of failing with "database is locked" when a read
transaction tries to upgrade) and a retry loop around each write. Schema
creation and migration run under a lock (a file lock next to a SQLite
database, an advisory lock on PostgreSQL), so processes that open a new store
at the same moment never race.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from shipyard.core.errors import InvalidInputError, StoreUnavailableError

logger = logging.getLogger(__name__)

HEAD_REVISION = "0006"
_PG_LOCK_KEY = 0x5348_4950  # "SHIP"
_FORK_WAIT_S = 30.0
T = TypeVar("T")

_open_databases: weakref.WeakSet[Database] = weakref.WeakSet()


class _ForkGate:
    """Keeps ``fork`` out of the middle of a database connection's use.

    SQLite keeps per-process lock bookkeeping for each database file; a child forked
    while a parent thread is inside a write transaction inherits a "locked" state no
    connection of its own can clear, and its first write waits forever. Every pooled
    connection enters the gate on checkout and leaves on checkin; the before-fork hook
    closes the gate and waits until no connection is out, so the child starts clean.
    A thread that already holds a connection may take another while the gate closes.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closing = False
        self._held = threading.local()

    def enter(self) -> None:
        held = getattr(self._held, "n", 0)
        with self._cond:
            while self._closing and held == 0:
                self._cond.wait()
            self._active += 1
        self._held.n = held + 1

    def leave(self) -> None:
        self._held.n = getattr(self._held, "n", 1) - 1
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def before_fork(self) -> None:
        with self._cond:
            self._closing = True
            if getattr(self._held, "n", 0) == 0:  # never wait for our own connection
                deadline = time.monotonic() + _FORK_WAIT_S
                while self._active:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        logger.warning(
                            "forking while %d database connection(s) are in use; "
                            "a forked child may then wait on SQLite locks",
                            self._active,
                        )
                        break
                    self._cond.wait(left)

    def after_fork_in_parent(self) -> None:
        with self._cond:
            self._closing = False
            self._cond.notify_all()


_gate = _ForkGate()


def _after_fork_in_child() -> None:
    global _gate
    _gate = _ForkGate()
    for db in list(_open_databases):
        db.engine.dispose(close=False)


def _before_fork() -> None:
    _gate.before_fork()


def _after_fork_in_parent() -> None:
    _gate.after_fork_in_parent()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def now_ms() -> int:
    """Milliseconds since the epoch: every stored timestamp."""
    return time.time_ns() // 1_000_000


def _is_locked_error(exc: BaseException) -> bool:
    text_ = str(exc).lower()
    return (
        "database is locked" in text_
        or "database table is locked" in text_
        or ("deadlock detected" in text_)
        or "could not serialize" in text_
    )


_shared: dict[tuple[str, float], Database] = {}
_shared_lock = threading.Lock()


def shared_database(url: str, *, busy_timeout: float = 60.0) -> Database:
    """One :class:`Database` per URL in this process (tracking and data share its pool)."""
    key = (url, busy_timeout)
    with _shared_lock:
        db = _shared.get(key)
        if db is None:
            db = _shared[key] = Database(url, busy_timeout=busy_timeout)
        return db


class Database:
    """One metadata database. Thread-safe; safe to keep across ``fork`` (the child reconnects).

    Args:
        url: any SQLAlchemy URL; ``sqlite:///path`` creates the folder.
        busy_timeout: seconds a writer waits for a lock before giving up.

    Raises:
        InvalidInputError: the URL does not parse.
        StoreUnavailableError: the database cannot be opened or migrated.
    """

    def __init__(self, url: str, *, busy_timeout: float = 60.0) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InvalidInputError(
                f"database URL {url!r} does not parse ({exc}); expected for example "
                "sqlite:///path/shipyard.db or postgresql+psycopg://user@host/db"
            ) from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        self.busy_timeout = busy_timeout
        self._lock_path: Path | None = None
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                path = Path(database).expanduser().absolute()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_path = path.with_name(path.name + ".lock")
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise StoreUnavailableError(
                f"cannot create an engine for {parsed.render_as_string(hide_password=True)}: "
                f"{exc}. Install the driver (pip install 'shipyard[postgres]' for PostgreSQL)."
            ) from exc
        if self.dialect == "sqlite":
            self._install_sqlite_hooks()
        event.listen(self.engine, "checkout", lambda *_: _gate.enter())
        event.listen(self.engine, "checkin", lambda *_: _gate.leave())
        self._migrated = False
        self._migrate_lock = threading.Lock()
        _open_databases.add(self)

    # -- setup -----------------------------------------------------------------

    def _install_sqlite_hooks(self) -> None:
        busy_ms = int(self.busy_timeout * 1000)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA case_sensitive_like = ON")  # LIKE as in PostgreSQL
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("shipyard_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    def current_revision(self) -> str | None:
        """The schema revision stored in the database, or None for an empty database."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except (OperationalError, DBAPIError):
            return None
        return str(row[0]) if row else None

    def ensure_schema(self) -> None:
        """Create or migrate the schema to head, once per process, under a cross-process lock."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            try:
                if self.current_revision() != HEAD_REVISION:
                    with self._cross_process_lock():
                        if self.current_revision() != HEAD_REVISION:
                            self._run_migrations()
            except OperationalError as exc:
                raise StoreUnavailableError(
                    f"cannot open the metadata database {self.safe_url}: {exc.orig}. "
                    "Check SHIPYARD_DB_URL and that the database server is running."
                ) from exc
            self._migrated = True

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def _cross_process_lock(self) -> Iterator[None]:
        if self._lock_path is not None:
            with open(self._lock_path, "a+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        elif self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
        else:
            yield

    def _run_migrations(self) -> None:
        logger.info("migrating %s to revision %s", self.safe_url, HEAD_REVISION)
        if self.dialect == "sqlite":
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
            finally:
                raw.close()
        if self._is_empty():
            # Alembic's recipe for a new database: create the current schema, stamp head.
            # Same result as replaying every migration (a test compares the two), faster.
            from shipyard.store.schema import metadata

            with self.engine.begin() as conn:
                metadata.create_all(conn)
                conn.execute(
                    text(
                        "CREATE TABLE alembic_version (version_num VARCHAR(32) "
                        "NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY "
                        "(version_num))"
                    )
                )
                conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": HEAD_REVISION})
            return
        self.upgrade_with_alembic()

    def _is_empty(self) -> bool:
        from sqlalchemy import inspect

        with self.engine.connect() as conn:
            return not inspect(conn).get_table_names()

    def upgrade_with_alembic(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision`` (the lock is the caller's)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()

    # -- transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (a deferred transaction, rolled back at the end)."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    def write(self, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying when the database is locked.

        ``fn`` may run more than once, so it must not have side effects outside the
        transaction.
        """
        self.ensure_schema()
        delay = 0.02
        for attempt in range(1, attempts + 1):
            try:
                with (
                    self.engine.connect().execution_options(shipyard_write=True) as conn,
                    conn.begin(),
                ):
                    return fn(conn)
            except OperationalError as exc:
                if not _is_locked_error(exc) or attempt == attempts:
                    raise StoreUnavailableError(
                        f"write to {self.safe_url} failed: {exc.orig}. "
                        "Another process may hold a long lock; raise SHIPYARD_BUSY_TIMEOUT "
                        "or retry."
                    ) from exc
            except DBAPIError as exc:
                if not _is_locked_error(exc) or attempt == attempts:
                    raise
            logger.debug("database busy, retry %d", attempt)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        self.engine.dispose()
