"""What every command shares: the settings, the opened store, output helpers and run ids.

Heavy modules (SQLAlchemy, the store, Rich) are imported inside the functions
that need them, so that importing the command modules, and ``shipyard --help``,
stays fast.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.core.plain import jsonable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from shipyard.core.config import Settings
    from shipyard.registry import ModelRegistry
    from shipyard.store.objects import ObjectStore
    from shipyard.store.tracking_store import SqlTrackingStore

MIN_RUN_ID_PREFIX = 6
RUN_ID_LENGTH = 32
SHORT_ID = 12
_HEX_RE = re.compile(r"^[0-9a-f]+$")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]


class View(enum.StrEnum):
    """Which lifecycle stage a listing shows."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"


ViewOption = Annotated[View, typer.Option("--view", help="Show active, deleted or all.")]


@functools.cache
def settings() -> Settings:
    """The settings of this invocation, read once from the environment and ``shipyard.toml``."""
    from shipyard.core.config import load_settings

    return load_settings(os.environ, cwd=Path.cwd())


@dataclass(frozen=True)
class Stores:
    """The metadata store and the object store named by the settings."""

    store: SqlTrackingStore
    objects: ObjectStore


def _sqlite_file(db_url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def open_stores(*, create: bool = False) -> Stores:
    """Open the store of :func:`settings`.

    Args:
        create: create an embedded store that does not exist yet; without it a
            missing SQLite file is an error (so a command run in the wrong folder
            says so instead of creating an empty store there).

    Raises:
        NotFoundError: no store at the configured place and ``create`` is False.
    """
    from shipyard.core.errors import NotFoundError
    from shipyard.store.db import Database
    from shipyard.store.objects import open_object_store
    from shipyard.store.tracking_store import SqlTrackingStore

    cfg = settings()
    db_file = _sqlite_file(cfg.db_url)
    if not create and db_file is not None and not db_file.exists():
        raise NotFoundError(
            f"no shipyard store at {db_file} (nothing has been tracked there yet); set "
            "SHIPYARD_HOME or SHIPYARD_DB_URL to the store to use, or run the command in "
            "the folder that holds .shipyard/"
        )
    db = Database(cfg.db_url, busy_timeout=cfg.busy_timeout)
    objects = open_object_store(cfg.artifact_uri, s3_endpoint_url=cfg.s3_endpoint_url)
    return Stores(SqlTrackingStore(db, actor=cfg.actor), objects)


def open_registry() -> ModelRegistry:
    """The model registry of the store here (an error if there is none)."""
    import shipyard as sy

    open_stores()
    sy.configure(settings())
    return sy.model_registry()


def resolve_run_id(store: SqlTrackingStore, text: str) -> str:
    """The full run id for ``text``: a whole id, or a unique prefix of at least 6 characters.

    Raises:
        InvalidInputError: the prefix is too short or matches several runs.
        NotFoundError: no run id starts with ``text``.
    """
    from sqlalchemy import select

    from shipyard.core.errors import InvalidInputError, NotFoundError
    from shipyard.store.schema import runs

    value = text.strip().lower()
    if len(value) == RUN_ID_LENGTH:
        return value
    if len(value) < MIN_RUN_ID_PREFIX:
        raise InvalidInputError(
            f"run id {text!r} is too short: give the whole id or at least "
            f"{MIN_RUN_ID_PREFIX} of its first characters"
        )
    found: list[str] = []
    if _HEX_RE.match(value):
        with store.db.read() as conn:
            found = [
                r[0]
                for r in conn.execute(
                    select(runs.c.run_id)
                    .where(runs.c.run_id.startswith(value, autoescape=True))
                    .order_by(runs.c.run_id)
                    .limit(5)
                )
            ]
    if not found:
        raise NotFoundError(
            f"no run id starts with {text!r}; `shipyard runs list` shows the runs there are"
        )
    if len(found) > 1:
        raise InvalidInputError(
            f"run id prefix {text!r} matches several runs ({', '.join(found)}"
            f"{', ...' if len(found) == 5 else ''}); give more characters"
        )
    return found[0]


# -- output ---------------------------------------------------------------------------


def console() -> Console:
    """A Rich console on stdout."""
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Console:
    """A Rich console on stderr (notes, progress, errors)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (NaN and infinities become null)."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def text(value: object, style: str = "") -> Text:
    """A table cell that shows ``value`` literally (no Rich markup is interpreted)."""
    from rich.text import Text

    return Text(fmt_value(value), style=style)


def new_table(
    *columns: str,
    title: str | None = None,
    no_wrap: Iterable[str] = (),
    min_width: Mapping[str, int] | None = None,
) -> Table:
    """A table with a header rule; long cells fold, except in the ``no_wrap`` columns."""
    from rich import box
    from rich.table import Table

    keep = set(no_wrap)
    widths = min_width or {}
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in keep, min_width=widths.get(name))
    return table


def key_value_table(rows: Iterable[tuple[str, object]], *, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold"
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, text(value))
    return table


def fmt_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if abs(value) < 1e16 else f"{value:.6g}"
    return str(value)


def fmt_short(value: object) -> str:
    """Like :func:`fmt_value`, with floats cut to 6 significant digits (for wide listings)."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return fmt_value(value)


def fmt_time(ms: int | None, *, seconds: bool = True) -> str:
    """Local time of ``ms`` milliseconds since the epoch."""
    if ms is None:
        return "-"
    when = dt.datetime.fromtimestamp(ms / 1000)
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def note(message: str) -> None:
    """A dim remark on stderr (never on stdout, so it cannot spoil piped output)."""
    from rich.text import Text

    err_console().print(Text(message, style="dim"))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``, so a
    reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
