"""Metric points: packed chunk encoding, batch writes and history reads.

A flush groups points by run and key and writes one ``metric_chunks`` row per
group (three little-endian arrays) plus an upsert of ``latest_metrics`` that
only moves forward in (step, timestamp).
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shipyard.core.entities import Metric
from shipyard.store.schema import latest_metrics, metric_chunks, runs

# One point as queued by the writer: (run_pk, key, value, step, timestamp_ms).
Point = tuple[int, str, float, int, int]
_LITTLE = sys.byteorder == "little"


def pack(kind: str, values: Sequence[float] | Sequence[int]) -> bytes:
    arr = array(kind, values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return arr.tobytes()


def unpack(kind: str, data: bytes) -> array[Any]:
    arr = array(kind)
    arr.frombytes(data)
    if not _LITTLE:  # pragma: no cover
        arr.byteswap()
    return arr


def group_points(
    points: Iterable[Point],
) -> dict[tuple[int, str], tuple[list[int], list[int], list[float]]]:
    groups: dict[tuple[int, str], tuple[list[int], list[int], list[float]]] = {}
    for run_pk, key, value, step, ts in points:
        g = groups.get((run_pk, key))
        if g is None:
            g = groups[(run_pk, key)] = ([], [], [])
        g[0].append(step)
        g[1].append(ts)
        g[2].append(value)
    return groups


_UPSERTS: dict[str, Any] = {}


def _upsert(conn: Connection) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE that only moves forward in (step, timestamp)."""
    name = conn.dialect.name
    if name in _UPSERTS:
        return _UPSERTS[name]
    stmt: Any
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(latest_metrics)
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(latest_metrics)
    else:  # pragma: no cover - other databases use the portable path
        return None
    ex = stmt.excluded
    cur = latest_metrics.c
    _UPSERTS[name] = stmt.on_conflict_do_update(
        index_elements=[cur.run_pk, cur.key],
        set_={"value": ex.value, "is_nan": ex.is_nan, "step": ex.step, "timestamp": ex.timestamp},
        where=(ex.step > cur.step) | ((ex.step == cur.step) & (ex.timestamp >= cur.timestamp)),
    )
    return _UPSERTS[name]


def write_points(conn: Connection, points: Iterable[Point], *, now_ms: int) -> int:
    """Write points in one transaction (the caller's). Returns how many were written."""
    groups = group_points(points)
    if not groups:
        return 0
    chunk_rows: list[dict[str, Any]] = []
    latest_rows: list[dict[str, Any]] = []
    total = 0
    for (run_pk, key), (steps, stamps, values) in groups.items():
        n = len(steps)
        total += n
        chunk_rows.append(
            {
                "run_pk": run_pk,
                "key": key,
                "count": n,
                "steps": pack("q", steps),
                "timestamps": pack("q", stamps),
                "metric_values": pack("d", values),
            }
        )
        best_step, best_ts, best_i = max(zip(steps, stamps, range(n), strict=True))
        value = values[best_i]
        is_nan = math.isnan(value)
        latest_rows.append(
            {
                "run_pk": run_pk,
                "key": key,
                "value": None if is_nan else value,
                "is_nan": is_nan,
                "step": best_step,
                "timestamp": best_ts,
            }
        )
    conn.execute(insert(metric_chunks), chunk_rows)
    upsert = _upsert(conn)
    if upsert is not None:
        conn.execute(upsert, latest_rows)
    else:  # pragma: no cover
        _portable_latest(conn, latest_rows)
    run_pks = sorted({int(r["run_pk"]) for r in latest_rows})
    conn.execute(update(runs).where(runs.c.pk.in_(run_pks)).values(heartbeat=now_ms))
    return total


def _portable_latest(conn: Connection, rows: list[dict[str, Any]]) -> None:  # pragma: no cover
    c = latest_metrics.c
    for row in rows:
        cur = conn.execute(
            select(c.step, c.timestamp).where((c.run_pk == row["run_pk"]) & (c.key == row["key"]))
        ).first()
        if cur is None:
            conn.execute(insert(latest_metrics), row)
        elif (row["step"], row["timestamp"]) >= (cur.step, cur.timestamp):
            conn.execute(
                update(latest_metrics)
                .where((c.run_pk == row["run_pk"]) & (c.key == row["key"]))
                .values(
                    value=row["value"],
                    is_nan=row["is_nan"],
                    step=row["step"],
                    timestamp=row["timestamp"],
                )
            )


def read_history(conn: Connection, run_pk: int, key: str) -> list[Metric]:
    """Every point of one metric, sorted by step then timestamp (ties in logging order)."""
    rows = conn.execute(
        select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c.metric_values)
        .where((metric_chunks.c.run_pk == run_pk) & (metric_chunks.c.key == key))
        .order_by(metric_chunks.c.chunk_id)
    ).all()
    points: list[tuple[int, int, float]] = []
    for steps_b, stamps_b, values_b in rows:
        points.extend(
            zip(unpack("q", steps_b), unpack("q", stamps_b), unpack("d", values_b), strict=True)
        )
    points.sort(key=lambda p: (p[0], p[1]))
    return [Metric(key, v, s, t) for s, t, v in points]


def metric_keys(conn: Connection, run_pk: int) -> list[str]:
    rows = conn.execute(
        select(latest_metrics.c.key)
        .where(latest_metrics.c.run_pk == run_pk)
        .order_by(latest_metrics.c.key)
    ).all()
    return [r[0] for r in rows]
