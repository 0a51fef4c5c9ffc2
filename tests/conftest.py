"""Shared fixtures: a fresh store per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.core.config import Settings, load_settings

PG_URL = os.environ.get("SHIPYARD_TEST_PG_URL", "")
# pytest-xdist runs one worker per core: OpenMP libraries (HistGradientBoosting, LightGBM)
# that also start one thread per core then spin against each other, and a 0.15 s fit
# takes seconds. One thread each (subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _pg_database(base_url: str) -> Iterator[str]:
    """Create a throwaway database on the PostgreSQL server of ``base_url``; drop it after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"shipyard_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty store: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'shipyard.db'}"
        return
    if not PG_URL:
        pytest.skip("SHIPYARD_TEST_PG_URL is not set: PostgreSQL store tests skipped")
    yield from _pg_database(PG_URL)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Factory: settings for a store under tmp_path (``db_url`` overrides the database)."""

    def make(db_url: str | None = None, **env: str) -> Settings:
        environ = {"SHIPYARD_HOME": str(tmp_path / "store"), "SHIPYARD_FLUSH_INTERVAL": "0.05"}
        if db_url:
            environ["SHIPYARD_DB_URL"] = db_url
        environ.update(env)
        return load_settings(environ, cwd=tmp_path)

    return make


@pytest.fixture
def sy(db_url: str, make_settings: Callable[..., Settings]) -> Iterator[object]:
    """The public API, configured on a fresh store (SQLite and PostgreSQL)."""
    import shipyard
    from shipyard import client

    client.configure(make_settings(db_url))
    yield shipyard
    tracker = client.tracker()
    while tracker.active_run() is not None:
        tracker.end_run()
    tracker.flush()
    tracker.db.dispose()


@pytest.fixture
def external_links() -> Callable[[str], list[str]]:
    """A function: every src/href attribute of an HTML page that points to another host."""
    from html.parser import HTMLParser

    def find(html: str) -> list[str]:
        found: list[str] = []

        class Links(HTMLParser):
            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                found.extend(
                    v for k, v in attrs if k in ("src", "href") and v and "//" in v.split("#")[0]
                )

        Links().feed(html)
        return found

    return find
