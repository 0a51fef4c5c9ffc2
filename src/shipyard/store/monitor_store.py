"""Monitors, their evaluated windows and the alerts their rules open, in the metadata database.

A window is stored once per ``(monitor, start)`` and replaced when it is evaluated
again (labels that arrive late change its performance figures). Its numbers are also
kept one per row in ``monitor_values`` so history is a plain query.

Alerts are de-duplicated by fingerprint (rule and column): :meth:`SqlMonitorStore.sync_alerts`
opens an alert for a condition that holds and has no open alert, bumps the open one
while it keeps holding, and resolves it once the condition is evaluated and clears, all
in one transaction that also appends the audit events. A lease on the monitor row keeps
two schedulers (or a scheduler and a person) from evaluating one monitor at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.core.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from shipyard.core.plain import jsonable
from shipyard.core.validation import check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import alerts, monitor_values, monitor_windows, monitors

ALERT_STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")


@dataclass(frozen=True, slots=True)
class AlertCondition:
    """A rule's condition that holds in the window just evaluated."""

    fingerprint: str
    rule: str
    column: str
    severity: str
    message: str
    value: float | None
    action: str = "none"


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """What :meth:`SqlMonitorStore.sync_alerts` did."""

    opened: tuple[Alert, ...]
    continuing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _dumps(data: Any) -> str:
    return json.dumps(jsonable(data), sort_keys=True, allow_nan=False)


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row.name, model=row.model, alias=row.alias, reference=row.reference,
        window_s=int(row.window_s), schedule=row.schedule, spec=json.loads(row.spec_json),
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
        last_run_at=row.last_run_at, last_status=row.last_status or "",
        last_error=row.last_error or "",
    )  # fmt: skip


def _window(row: Any) -> MonitorWindow:
    return MonitorWindow(
        monitor=row.monitor, start_ms=row.start_ms, end_ms=row.end_ms,
        computed_at=row.computed_at, n_rows=row.n_rows, n_labelled=row.n_labelled,
        status=row.status, summary=json.loads(row.summary_json),
    )  # fmt: skip


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.pk, monitor=row.monitor, model=row.model, rule=row.rule,
        column=row.column, fingerprint=row.fingerprint, severity=row.severity,
        status=row.status, message=row.message, value=row.value, opened_at=row.opened_at,
        last_seen_at=row.last_seen_at, resolved_at=row.resolved_at, count=row.count,
        window_start_ms=row.window_start_ms, action=row.action,
        action_status=row.action_status, action_details=json.loads(row.action_json or "{}"),
    )  # fmt: skip


class SqlMonitorStore:
    """The monitors, monitor_windows, monitor_values and alerts tables.

    Args:
        db: the database.
        actor: the name every audit event records.
    """

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    # -- monitors --------------------------------------------------------------------

    def create_monitor(
        self,
        name: str,
        *,
        model: str,
        alias: str,
        reference: str,
        window_s: int,
        schedule: str | None,
        spec: Mapping[str, Any],
        replace: bool = False,
    ) -> Monitor:
        """Store a new monitor (or, with ``replace``, redefine one, keeping its history)."""
        check_name(name, what="monitor name")
        if window_s <= 0:
            raise InvalidInputError(f"a monitor's window must be positive, got {window_s} s")
        ts = now_ms()
        values = {
            "model": model, "alias": alias, "reference": reference, "window_s": int(window_s),
            "schedule": schedule, "spec_json": _dumps(spec), "updated_at": ts,
        }  # fmt: skip

        def tx(conn: Connection) -> Monitor:
            found = conn.execute(select(monitors).where(monitors.c.name == name)).first()
            if found is not None and not replace:
                raise AlreadyExistsError(
                    f"monitor {name!r} exists already (watching {found.model}@{found.alias}); "
                    "pick another name, or pass --replace to redefine it"
                )
            if found is None:
                conn.execute(
                    insert(monitors).values(
                        name=name, created_at=ts, created_by=self.actor, last_status="",
                        last_error="", **values,
                    )
                )  # fmt: skip
            else:
                conn.execute(update(monitors).where(monitors.c.name == name).values(**values))
                if found.window_s != int(window_s):  # old windows no longer line up: drop them
                    pks = select(monitor_windows.c.pk).where(monitor_windows.c.monitor == name)
                    conn.execute(delete(monitor_values).where(monitor_values.c.window_pk.in_(pks)))
                    conn.execute(delete(monitor_windows).where(monitor_windows.c.monitor == name))
            append_event(
                conn, actor=self.actor,
                action="monitor.create" if found is None else "monitor.update",
                entity_type="monitor", entity=name,
                before=None if found is None else {"model": found.model, "alias": found.alias,
                                                   "reference": found.reference},
                after={"model": model, "alias": alias, "reference": reference,
                       "window_s": window_s, "schedule": schedule},
            )  # fmt: skip
            row = conn.execute(select(monitors).where(monitors.c.name == name)).one()
            return _monitor(row)

        return self.db.write(tx)

    def get_monitor(self, name: str) -> Monitor:
        with self.db.read() as conn:
            row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no monitor named {name!r}; `shipyard monitor list` shows them and "
                "`shipyard monitor create` makes one"
            )
        return _monitor(row)

    def list_monitors(self) -> list[Monitor]:
        with self.db.read() as conn:
            rows = conn.execute(select(monitors).order_by(monitors.c.name)).all()
        return [_monitor(r) for r in rows]

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor with its windows and alerts."""

        def tx(conn: Connection) -> None:
            found = conn.execute(select(monitors).where(monitors.c.name == name)).first()
            if found is None:
                raise NotFoundError(f"no monitor named {name!r}; nothing was deleted")
            pks = select(monitor_windows.c.pk).where(monitor_windows.c.monitor == name)
            conn.execute(delete(monitor_values).where(monitor_values.c.window_pk.in_(pks)))
            conn.execute(delete(monitor_windows).where(monitor_windows.c.monitor == name))
            conn.execute(delete(alerts).where(alerts.c.monitor == name))
            conn.execute(delete(monitors).where(monitors.c.name == name))
            append_event(
                conn, actor=self.actor, action="monitor.delete", entity_type="monitor",
                entity=name, before={"model": found.model, "alias": found.alias},
            )  # fmt: skip

        self.db.write(tx)

    # -- leases ----------------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, *, ttl_ms: int) -> bool:
        """Take the monitor's evaluation lease unless someone else holds a live one."""
        ts = now_ms()

        def tx(conn: Connection) -> bool:
            result = conn.execute(
                update(monitors)
                .where(
                    and_(
                        monitors.c.name == name,
                        or_(
                            monitors.c.lease_until.is_(None),
                            monitors.c.lease_until < ts,
                            monitors.c.lease_owner == owner,
                        ),
                    )
                )
                .values(lease_owner=owner, lease_until=ts + ttl_ms)
            )
            return bool(result.rowcount)

        return self.db.write(tx)

    def release_lease(self, name: str, owner: str, *, status: str, error: str = "") -> None:
        """Give the lease back and record how the evaluation ended."""

        def tx(conn: Connection) -> None:
            conn.execute(
                update(monitors)
                .where(and_(monitors.c.name == name, monitors.c.lease_owner == owner))
                .values(
                    lease_owner=None, lease_until=None, last_run_at=now_ms(),
                    last_status=status, last_error=error[:4000],
                )
            )  # fmt: skip

        self.db.write(tx)

    # -- windows ---------------------------------------------------------------------

    def save_window(
        self,
        window: MonitorWindow,
        values: Mapping[tuple[str, str], float | None],
    ) -> None:
        """Store (or replace) one window and its ``{(column, name): value}`` numbers."""
        rows = [
            {"column": column, "name": key, "value": _finite(v)}
            for (column, key), v in values.items()
        ]

        def tx(conn: Connection) -> None:
            old = conn.execute(
                select(monitor_windows.c.pk).where(
                    and_(
                        monitor_windows.c.monitor == window.monitor,
                        monitor_windows.c.start_ms == window.start_ms,
                    )
                )
            ).first()
            if old is not None:
                conn.execute(delete(monitor_values).where(monitor_values.c.window_pk == old.pk))
                conn.execute(delete(monitor_windows).where(monitor_windows.c.pk == old.pk))
            pk = conn.execute(
                insert(monitor_windows).values(
                    monitor=window.monitor, start_ms=window.start_ms, end_ms=window.end_ms,
                    computed_at=window.computed_at, n_rows=window.n_rows,
                    n_labelled=window.n_labelled, status=window.status,
                    summary_json=_dumps(window.summary),
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            if rows:
                conn.execute(insert(monitor_values), [{"window_pk": pk, **r} for r in rows])

        self.db.write(tx)

    def windows(
        self,
        monitor: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[MonitorWindow]:
        """A monitor's windows, oldest first (``limit``: the newest ``limit``)."""
        t = monitor_windows
        query = select(t).where(t.c.monitor == monitor)
        if since_ms is not None:
            query = query.where(t.c.start_ms >= since_ms)
        if until_ms is not None:
            query = query.where(t.c.start_ms < until_ms)
        query = query.order_by(t.c.start_ms.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_window(r) for r in reversed(rows)]

    def history(
        self,
        monitor: str,
        *,
        since_ms: int | None = None,
        names: Sequence[str] | None = None,
    ) -> list[tuple[int, str, str, float | None]]:
        """``(window start, column, name, value)`` rows, oldest window first."""
        w, v = monitor_windows, monitor_values
        query = (
            select(w.c.start_ms, v.c.column, v.c.name, v.c.value)
            .join(v, v.c.window_pk == w.c.pk)
            .where(w.c.monitor == monitor)
        )
        if since_ms is not None:
            query = query.where(w.c.start_ms >= since_ms)
        if names:
            query = query.where(v.c.name.in_(list(names)))
        query = query.order_by(w.c.start_ms, v.c.column, v.c.name)
        with self.db.read() as conn:
            return [(r[0], r[1], r[2], r[3]) for r in conn.execute(query).all()]

    # -- alerts ----------------------------------------------------------------------

    def sync_alerts(
        self,
        monitor: str,
        model: str,
        *,
        holding: Iterable[AlertCondition],
        cleared: Iterable[str],
        window_start_ms: int | None,
    ) -> AlertChanges:
        """Open, continue and resolve the monitor's alerts from one evaluation."""
        holding = list(holding)
        cleared_set = set(cleared) - {c.fingerprint for c in holding}
        ts = now_ms()

        def tx(conn: Connection) -> AlertChanges:
            rows = conn.execute(
                select(alerts).where(and_(alerts.c.monitor == monitor, alerts.c.status.in_(ACTIVE)))
            ).all()
            active = {r.fingerprint: r for r in rows}
            opened, continuing, resolved = [], [], []
            for cond in holding:
                row = active.get(cond.fingerprint)
                if row is not None:
                    conn.execute(
                        update(alerts)
                        .where(alerts.c.pk == row.pk)
                        .values(
                            last_seen_at=ts, count=alerts.c.count + 1, value=cond.value,
                            message=cond.message, window_start_ms=window_start_ms,
                        )
                    )  # fmt: skip
                    continuing.append(row.pk)
                    continue
                pk = conn.execute(
                    insert(alerts).values(
                        monitor=monitor, model=model, rule=cond.rule, column=cond.column,
                        fingerprint=cond.fingerprint, severity=cond.severity, status="open",
                        message=cond.message, value=cond.value, opened_at=ts,
                        last_seen_at=ts, resolved_at=None, count=1,
                        window_start_ms=window_start_ms, action=cond.action,
                        action_status="pending" if cond.action != "none" else "",
                        action_json="{}",
                    )
                ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
                append_event(
                    conn, actor=self.actor, action="alert.open", entity_type="alert",
                    entity=f"{monitor}/{pk}",
                    after={"rule": cond.rule, "column": cond.column,
                           "severity": cond.severity, "message": cond.message,
                           "action": cond.action},
                )  # fmt: skip
                opened.append(pk)
            for fingerprint in cleared_set:
                row = active.get(fingerprint)
                if row is None:
                    continue
                conn.execute(
                    update(alerts)
                    .where(alerts.c.pk == row.pk)
                    .values(status="resolved", resolved_at=ts)
                )
                append_event(
                    conn, actor=self.actor, action="alert.resolve", entity_type="alert",
                    entity=f"{monitor}/{row.pk}", before={"status": row.status},
                    after={"status": "resolved", "reason": "condition cleared"},
                )  # fmt: skip
                resolved.append(row.pk)

            def load(pks: list[int]) -> tuple[Alert, ...]:
                if not pks:
                    return ()
                found = conn.execute(select(alerts).where(alerts.c.pk.in_(pks))).all()
                by_pk = {r.pk: _alert(r) for r in found}
                return tuple(by_pk[p] for p in pks)

            return AlertChanges(load(opened), load(continuing), load(resolved))

        return self.db.write(tx)

    def list_alerts(
        self, *, monitor: str | None = None, status: str | Sequence[str] | None = None
    ) -> list[Alert]:
        """Alerts, newest first (``status="active"`` means open or acknowledged)."""
        query = select(alerts)
        if monitor is not None:
            query = query.where(alerts.c.monitor == monitor)
        if status is not None:
            wanted = ACTIVE if status == "active" else ((status,) if isinstance(status, str)
                                                        else tuple(status))  # fmt: skip
            unknown = set(wanted) - set(ALERT_STATUSES)
            if unknown:
                raise InvalidInputError(
                    f"alert status is one of {', '.join(ALERT_STATUSES)} or active, "
                    f"got {', '.join(sorted(unknown))}"
                )
            query = query.where(alerts.c.status.in_(list(wanted)))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(alerts.c.pk.desc())).all()
        return [_alert(r) for r in rows]

    def get_alert(self, alert_id: int) -> Alert:
        with self.db.read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.pk == alert_id)).first()
        if row is None:
            raise NotFoundError(f"no alert with id {alert_id}; `shipyard alerts list` shows them")
        return _alert(row)

    def set_alert_status(self, alert_id: int, status: str, *, note: str = "") -> Alert:
        """Acknowledge or resolve an alert by hand."""
        if status not in ("acknowledged", "resolved"):
            raise InvalidInputError(
                f"an alert can be set to acknowledged or resolved, got {status!r}"
            )

        def tx(conn: Connection) -> Alert:
            row = conn.execute(select(alerts).where(alerts.c.pk == alert_id)).first()
            if row is None:
                raise NotFoundError(
                    f"no alert with id {alert_id}; `shipyard alerts list` shows them"
                )
            if row.status == "resolved":
                raise InvalidInputError(f"alert {alert_id} is resolved already")
            values: dict[str, Any] = {"status": status}
            if status == "resolved":
                values["resolved_at"] = now_ms()
            conn.execute(update(alerts).where(alerts.c.pk == alert_id).values(**values))
            append_event(
                conn, actor=self.actor,
                action="alert.resolve" if status == "resolved" else "alert.acknowledge",
                entity_type="alert", entity=f"{row.monitor}/{alert_id}",
                before={"status": row.status}, after={"status": status, "note": note},
            )  # fmt: skip
            return _alert(conn.execute(select(alerts).where(alerts.c.pk == alert_id)).one())

        return self.db.write(tx)

    def claim_action(self, alert_id: int) -> bool:
        """Take a pending action for this process: False when another one took it first."""

        def tx(conn: Connection) -> bool:
            result = conn.execute(
                update(alerts)
                .where(and_(alerts.c.pk == alert_id, alerts.c.action_status == "pending"))
                .values(action_status="running")
            )
            return bool(result.rowcount)

        return self.db.write(tx)

    def record_action(self, alert_id: int, *, status: str, details: Mapping[str, Any]) -> Alert:
        """Record what the alert's action did (audited with the alert it answers)."""

        def tx(conn: Connection) -> Alert:
            row = conn.execute(select(alerts).where(alerts.c.pk == alert_id)).first()
            if row is None:
                raise NotFoundError(f"no alert with id {alert_id}")
            conn.execute(
                update(alerts)
                .where(alerts.c.pk == alert_id)
                .values(action_status=status, action_json=_dumps(details))
            )
            append_event(
                conn, actor=self.actor, action=f"alert.action.{status}", entity_type="alert",
                entity=f"{row.monitor}/{alert_id}", before={"action_status": row.action_status},
                after={"action": row.action, "action_status": status, **jsonable(details)},
            )  # fmt: skip
            return _alert(conn.execute(select(alerts).where(alerts.c.pk == alert_id)).one())

        return self.db.write(tx)
