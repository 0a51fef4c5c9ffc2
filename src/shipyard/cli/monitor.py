"""``shipyard monitor`` (drift, quality, performance of served models), ``shipyard alerts``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag
from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.core.entities import Alert, Monitor
    from shipyard.pipelines.loop import LoopResult

monitor_app = typer.Typer(
    help="Watch served models: drift, data quality, performance, alerts, the retrain loop.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(help="Alerts monitors opened: list, acknowledge, resolve.",
                         no_args_is_help=True)  # fmt: skip


def _context() -> Any:
    import shipyard as sy

    c.open_stores()
    sy.configure(c.settings())
    return sy.monitor_context()


def _editable() -> Any:
    """The context, for a user allowed to change alerts and monitors (editor role)."""
    from shipyard.governance.identity import require_role

    ctx = _context()
    require_role(ctx.registry.identity, "editor", to="change alerts and monitors")
    return ctx


@monitor_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The monitor's name (usually the model's).")],
    reference: Annotated[str, typer.Option(help="Reference dataset version: customers@train.")],
    model: Annotated[str | None, typer.Option(help="The model (default: NAME).")] = None,
    alias: Annotated[str, typer.Option(help="The alias whose version is watched.")] = "production",
    window: Annotated[str, typer.Option(help="Window length: 15m, 1h, 1d.")] = "1h",
    schedule: Annotated[
        str | None, typer.Option(help="Cron schedule for serve-scheduler: '*/15 * * * *'.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Label column of the reference.")] = None,
    features: Annotated[
        str | None, typer.Option(help="Comma-separated columns (default: signature inputs).")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Alert rules YAML file.")] = None,
    on_drift: Annotated[str, typer.Option(help="none, or retrain: drift rules retrain.")] = "none",
    retrain_command: Annotated[
        str | None,
        typer.Option(
            help="Retrain with this command (gets SHIPYARD_RETRAIN_DATA) instead of sy.train."
        ),
    ] = None,
    retrain_models: Annotated[
        str | None, typer.Option(help="Model families for sy.train, comma-separated.")
    ] = None,
    retrain_tune: Annotated[int, typer.Option(help="Optuna trials per family.")] = 0,
    domain_classifier: Annotated[
        bool, typer.Option(help="Also run the multivariate domain-classifier check.")
    ] = False,
    min_rows: Annotated[int, typer.Option(help="Fewer rows in a window: not enough data.")] = 30,
    replace: Annotated[bool, typer.Option(help="Redefine an existing monitor.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Watch MODEL@ALIAS against a reference dataset version."""
    import shipyard as sy

    _context()
    retrain: dict[str, Any] = {}
    if retrain_command:
        retrain["command"] = retrain_command
    if retrain_models:
        retrain["models"] = [m.strip() for m in retrain_models.split(",") if m.strip()]
    if retrain_tune:
        retrain["tune"] = retrain_tune
    rules_text = None
    if rules is not None:
        if not rules.is_file():
            raise InvalidInputError(f"no rules file at {rules}; give the path of a YAML file")
        rules_text = rules.read_text()
    monitor = sy.create_monitor(
        name, model=model or name, reference=reference, alias=alias, window=window,
        schedule=schedule, target=target,
        features=[f.strip() for f in features.split(",")] if features else (),
        rules=rules_text, on_drift=on_drift, retrain=retrain,
        domain_classifier=domain_classifier, min_rows=min_rows, replace=replace,
    )  # fmt: skip
    if as_json:
        c.print_json(_monitor_dict(monitor))
        return
    spec = monitor.spec
    c.console().print(
        f"monitor {monitor.name}: {monitor.model}@{monitor.alias} against {monitor.reference}, "
        f"{_duration(monitor.window_s)} windows, {len(spec['features'])} column(s), target "
        f"{spec.get('target') or '-'}, schedule {monitor.schedule or '(by hand)'}"
    )


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _monitor_dict(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name, "model": m.model, "alias": m.alias, "reference": m.reference,
        "window_s": m.window_s, "schedule": m.schedule, "spec": dict(m.spec),
        "created_at": m.created_at, "created_by": m.created_by, "updated_at": m.updated_at,
        "last_run_at": m.last_run_at, "last_status": m.last_status, "last_error": m.last_error,
    }  # fmt: skip


@monitor_app.command("list")
def list_monitors(as_json: JsonFlag = False) -> None:
    """Every monitor with its last evaluation."""
    ctx = _context()
    monitors = ctx.store.list_monitors()
    if as_json:
        c.print_json([_monitor_dict(m) for m in monitors])
        return
    table = c.new_table("monitor", "model", "reference", "window", "schedule", "last run",
                        "status", "open alerts")  # fmt: skip
    for m in monitors:
        open_alerts = len(ctx.store.list_alerts(monitor=m.name, status="active"))
        table.add_row(
            c.text(m.name), c.text(f"{m.model}@{m.alias}"), c.text(m.reference),
            c.text(_duration(m.window_s)), c.text(m.schedule or "-"),
            c.text(c.fmt_time(m.last_run_at) if m.last_run_at else "never"),
            c.text(m.last_status or "-"), c.text(open_alerts),
        )  # fmt: skip
    c.console().print(table)
    if not monitors:
        c.note("no monitors yet: `shipyard monitor create NAME --reference DATASET@VERSION`")


@monitor_app.command("show")
def show(name: str, as_json: JsonFlag = False) -> None:
    """A monitor's definition and its newest window."""
    ctx = _context()
    m = ctx.store.get_monitor(name)
    latest = ctx.store.windows(name, limit=1)
    if as_json:
        c.print_json({**_monitor_dict(m), "latest_window": _window_dict(latest[0])
                      if latest else None})  # fmt: skip
        return
    con = c.console()
    con.print(f"[bold]{m.name}[/]: {m.model}@{m.alias} against {m.reference}", highlight=False)
    con.print(
        f"window {_duration(m.window_s)}, schedule {m.schedule or '(by hand)'}, "
        f"target {m.spec.get('target') or '-'}, on drift: {m.spec.get('on_drift')}"
    )
    con.print(f"columns: {', '.join(m.spec.get('features', []))}", highlight=False)
    if m.last_error:
        con.print(f"[red]last error:[/] {m.last_error}", highlight=False)
    if latest:
        _print_window(latest[0])


def _window_dict(w: Any) -> dict[str, Any]:
    return {
        "start_ms": w.start_ms,
        "end_ms": w.end_ms,
        "n_rows": w.n_rows,
        "n_labelled": w.n_labelled,
        "status": w.status,
        "summary": dict(w.summary),
    }


def _print_window(w: Any) -> None:
    con = c.console()
    obs = (w.summary.get("observations") or {}).get("dataset") or {}
    con.print(
        f"window {c.fmt_time(w.start_ms)}: {w.n_rows} rows, {w.n_labelled} labelled, {w.status}"
        + (" (partial)" if w.summary.get("partial") else "")
    )
    if w.status != "ok":
        con.print(w.summary.get("message", "not enough data"), highlight=False)
        return
    drift = w.summary.get("drift") or {}
    cols = drift.get("columns") or []
    drifted = [d for d in cols if d.get("drifted")]
    con.print(f"drift: {len(drifted)} of {len(cols)} column(s), share "
              f"{obs.get('drift_share', 0):.2f}", highlight=False)  # fmt: skip
    if drifted:
        table = c.new_table("column", "method", "statistic", "adj. p", "distance", "detail")
        for d in drifted:
            table.add_row(c.text(d["column"]), c.text(d["method"]), c.text(_f(d["statistic"])),
                          c.text(_f(d.get("adjusted_p_value"))), c.text(_f(d.get("distance"))),
                          c.text(d.get("detail", "")))  # fmt: skip
        con.print(table)
    if "prediction_drift" in obs:
        con.print(f"prediction drift: {'yes' if obs['prediction_drift'] else 'no'} "
                  f"(distance {obs.get('prediction_drift_distance', 0):.3f})")  # fmt: skip
    perf = w.summary.get("performance") or {}
    if perf:
        con.print(
            "performance: "
            + ", ".join(
                f"{k} {v:.4f}" for k, v in sorted(perf.items()) if not k.endswith("_change")
            ),
            highlight=False,
        )
    issues = (w.summary.get("quality") or {}).get("issues") or []
    for issue in issues[:10]:
        con.print(f"quality: {issue}", highlight=False)


def _f(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@monitor_app.command("run")
def run(
    name: str,
    dry_run: Annotated[
        bool, typer.Option(help="Evaluate and show what would happen; store and send nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate the monitor now (what the schedule runs) and carry out alert actions."""
    from shipyard.pipelines.loop import run_monitor

    ctx = _context()
    progress = None if as_json else c.note
    result = run_monitor(ctx, name, dry_run=dry_run, progress=progress)
    if as_json:
        c.print_json(_loop_dict(result))
        return
    _print_loop(result, dry_run=dry_run)


def _loop_dict(result: LoopResult) -> dict[str, Any]:
    run = result.run
    return {
        "monitor": run.monitor.name,
        "windows": [_window_dict(w.window) for w in run.windows],
        "evaluated_window": run.evaluated_window.window.start_ms if run.evaluated_window else None,
        "drifted_columns": run.evaluated_window.drift.drifted_columns
        if run.evaluated_window and run.evaluated_window.drift else [],
        "alerts": {"opened": [_alert_dict(a) for a in run.alerts.opened],
                   "continuing": [_alert_dict(a) for a in run.alerts.continuing],
                   "resolved": [_alert_dict(a) for a in run.alerts.resolved]},
        "actions": [{"alert_id": o.alert_id, "status": o.status, "message": o.message,
                     "details": dict(o.details)} for o in result.actions],
    }  # fmt: skip


def _print_loop(result: LoopResult, *, dry_run: bool) -> None:
    con = c.console()
    run = result.run
    prefix = "[dry run] " if dry_run else ""
    con.print(f"{prefix}{run.monitor.name}: {len(run.windows)} window(s) evaluated",
              highlight=False)  # fmt: skip
    if run.evaluated_window is None:
        con.print("not enough data yet: no window has enough rows for drift "
                  f"(at least {run.monitor.spec.get('min_rows', 30)})")  # fmt: skip
    else:
        _print_window(run.evaluated_window.window)
    verb = "would open" if dry_run else "opened"
    for a in run.alerts.opened:
        con.print(f"[bold]alert {verb}[/] [{a.severity}] {a.rule}: {a.message}", highlight=False)
    for a in run.alerts.resolved:
        con.print(f"alert {'would resolve' if dry_run else 'resolved'} #{a.alert_id} {a.rule}",
                  highlight=False)  # fmt: skip
    for o in result.actions:
        con.print(f"action for alert {o.alert_id}: {o.status}: {o.message}", highlight=False)


@monitor_app.command("history")
def history(
    name: str,
    last: Annotated[str, typer.Option(help="How far back: 24h, 7d.")] = "7d",
    column: Annotated[str | None, typer.Option(help="One column's figures.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Each window's figures over time (drift share, drifted columns, performance)."""
    from shipyard.monitoring.monitor import parse_duration
    from shipyard.store.db import now_ms

    ctx = _context()
    ctx.store.get_monitor(name)
    since = now_ms() - parse_duration(last, what="--last") * 1000
    windows = ctx.store.windows(name, since_ms=since)
    rows = ctx.store.history(name, since_ms=since)
    if as_json:
        c.print_json({"windows": [_window_dict(w) | {"summary": None} for w in windows],
                      "values": [{"start_ms": s, "column": col, "name": n, "value": v}
                                 for s, col, n, v in rows]})  # fmt: skip
        return
    values: dict[int, dict[tuple[str, str], float | None]] = {}
    for s, col, n, v in rows:
        values.setdefault(s, {})[(col, n)] = v
    perf_names = sorted({n for _, col, n, _ in rows if col == "" and n in _PERF})
    if column:
        head = ["window", "rows", "drifted", "distance", "p-value", "missing"]
    else:
        head = ["window", "rows", "labelled", "status", "drift share", "drifted", "pred. drift",
                *perf_names]  # fmt: skip
    table = c.new_table(*head)
    for w in windows:
        v = values.get(w.start_ms, {})
        if column:
            table.add_row(c.text(c.fmt_time(w.start_ms)), c.text(w.n_rows),
                          c.text(_f(v.get((column, "drifted")))),
                          c.text(_f(v.get((column, "drift_distance")))),
                          c.text(_f(v.get((column, "p_value")))),
                          c.text(_f(v.get((column, "missing_rate")))))  # fmt: skip
        else:
            table.add_row(c.text(c.fmt_time(w.start_ms)), c.text(w.n_rows), c.text(w.n_labelled),
                          c.text(w.status), c.text(_f(v.get(("", "drift_share")))),
                          c.text(_f(v.get(("", "drifted_columns")))),
                          c.text(_f(v.get(("", "prediction_drift")))),
                          *[c.text(_f(v.get(("", p)))) for p in perf_names])  # fmt: skip
    c.console().print(table)
    if not windows:
        c.note(f"no windows in the last {last}: `shipyard monitor run {name}` evaluates one")


_PERF = frozenset({"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                   "log_loss", "rmse", "mae", "r2", "mape"})  # fmt: skip


@monitor_app.command("report")
def report(
    name: str,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    out_json: Annotated[Path | None, typer.Option("--json-out", help="Write JSON here.")] = None,
    last: Annotated[str, typer.Option(help="The period: 24h, 7d.")] = "7d",
) -> None:
    """A self-contained HTML (and/or JSON) report of the period: drift per column with
    distribution overlays, figures over time, quality, performance and alerts."""
    from shipyard.monitoring.reporting import build_report

    if html is None and out_json is None:
        raise InvalidInputError("say where to write: --html FILE and/or --json-out FILE")
    ctx = _context()
    made = build_report(ctx, name, last=last)
    if html is not None:
        c.write_text_atomic(html, made.html())
        c.console().print(f"wrote {html}")
    if out_json is not None:
        import json

        c.write_text_atomic(out_json, json.dumps(made.json(), indent=2, allow_nan=False))
        c.console().print(f"wrote {out_json}")


@monitor_app.command("delete")
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a monitor with its history and alerts."""
    ctx = _editable()
    if not yes:
        typer.confirm(f"delete monitor {name} with its history and alerts?", abort=True)
    ctx.store.delete_monitor(name)
    c.console().print(f"deleted monitor {name}")


@monitor_app.command("serve-scheduler")
def serve_scheduler(
    max_workers: Annotated[int, typer.Option(help="Monitors evaluated at once at most.")] = 2,
    refresh: Annotated[float, typer.Option(help="Seconds between re-reading monitors.")] = 30.0,
) -> None:
    """Run every scheduled monitor and pipeline until stopped (Ctrl-C, SIGTERM)."""
    import signal
    import threading

    from shipyard.cli.pipeline import context as pipeline_context
    from shipyard.pipelines.scheduler import Scheduler
    from shipyard.pipelines.schedules import monitor_jobs, pipeline_jobs

    ctx = _context()
    pipelines = pipeline_context()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    def jobs() -> list[Any]:
        return [*monitor_jobs(ctx), *pipeline_jobs(pipelines)]

    scheduler = Scheduler(jobs, max_workers=max_workers, refresh_s=refresh)
    c.note(f"scheduler started: {len(jobs())} job(s) (monitors and pipelines); Ctrl-C stops")
    started = time.monotonic()
    scheduler.run_forever(stop)
    c.note(f"scheduler stopped after {time.monotonic() - started:.0f} s")


# -- alerts ------------------------------------------------------------------------------


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id, "monitor": a.monitor, "model": a.model, "rule": a.rule,
        "column": a.column or None, "severity": a.severity, "status": a.status,
        "message": a.message, "value": a.value, "opened_at": a.opened_at,
        "last_seen_at": a.last_seen_at, "resolved_at": a.resolved_at, "count": a.count,
        "action": a.action, "action_status": a.action_status,
        "action_details": dict(a.action_details),
    }  # fmt: skip


@alerts_app.command("list")
def list_alerts(
    open_only: Annotated[bool, typer.Option("--open", help="Only open or acknowledged.")] = False,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Alerts, newest first."""
    ctx = _context()
    found = ctx.store.list_alerts(monitor=monitor, status="active" if open_only else None)
    if as_json:
        c.print_json([_alert_dict(a) for a in found])
        return
    table = c.new_table("id", "monitor", "severity", "status", "rule", "message", "opened",
                        "seen", "action")  # fmt: skip
    for a in found:
        style = {"critical": "bold red", "warning": "yellow"}.get(a.severity, "")
        action = f"{a.action}: {a.action_status}" if a.action != "none" else "-"
        table.add_row(c.text(a.alert_id), c.text(a.monitor), c.text(a.severity, style),
                      c.text(a.status), c.text(a.rule), c.text(a.message),
                      c.text(c.fmt_time(a.opened_at)), c.text(f"{a.count}x"),
                      c.text(action))  # fmt: skip
    c.console().print(table)
    if not found:
        c.note("no open alerts" if open_only else "no alerts")


@alerts_app.command("show")
def show_alert(alert_id: int, as_json: JsonFlag = False) -> None:
    """One alert with what its action did."""
    alert = _context().store.get_alert(alert_id)
    if as_json:
        c.print_json(_alert_dict(alert))
        return
    import json

    con = c.console()
    con.print(f"alert {alert.alert_id} [{alert.severity}] {alert.status}: {alert.rule}",
              highlight=False)  # fmt: skip
    con.print(alert.message, highlight=False)
    if alert.action != "none":
        con.print(f"action {alert.action}: {alert.action_status}", highlight=False)
        con.print(json.dumps(dict(alert.action_details), indent=2, default=str), highlight=False)


@alerts_app.command("ack")
def ack(alert_id: int, note: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Acknowledge an alert (it stays open until its condition clears)."""
    alert = _editable().store.set_alert_status(alert_id, "acknowledged", note=note)
    c.console().print(f"alert {alert.alert_id} acknowledged")


@alerts_app.command("resolve")
def resolve(alert_id: int, note: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Resolve an alert by hand."""
    alert = _editable().store.set_alert_status(alert_id, "resolved", note=note)
    c.console().print(f"alert {alert.alert_id} resolved")
