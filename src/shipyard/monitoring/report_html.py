"""A self-contained HTML report of a production model monitor: drift, quality, alerts, performance.

:func:`render_monitor_report` turns what a monitor has recorded (its evaluated
windows, the per-window history of its numbers, the latest per-column drift and
quality results, its alerts and its performance over time) into one HTML
document that needs nothing else: no network, no fonts, no scripts. Charts are
SVG drawn by :mod:`shipyard.monitoring._charts`, in the look of the data report
(:mod:`shipyard.data.report_html`): the dataset drift share over time with its
threshold, one card per column with the reference and current distributions
overlaid and a sparkline of the column's drift distance, the prediction
distribution, and each performance metric over time with its validation value
as a dashed reference line.

:func:`report_json` returns the same content as plain data for ``--json``; the
page embeds it in ``<script type="application/json" id="shipyard-monitor">``.

Every string that comes from the data or the monitor (column names, category
values, alert messages) is escaped with :func:`html.escape`, the embedded JSON
has ``<``, ``>`` and ``&`` escaped, and a Content-Security-Policy forbids
scripts and any outside resource, so a hostile column name cannot inject markup
or code. Missing inputs (no window yet, no drift result, an empty history)
render a "Not enough data yet" message in their section instead of failing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.monitoring._charts import (
    _DRIFT,
    _LINE,
    _OK,
    _SERIES,
    _floats,
    _overlay,
    _Series,
    _sparkline,
    _time_chart,
)
from shipyard.monitoring._html import (
    _CSS,
    _NOT_ENOUGH,
    _duration,
    _e,
    _empty,
    _fmt,
    _num,
    _pct,
    _severity_chip,
    _status_ok,
    _table,
    _truthy,
    _verdict_chip,
    _when,
)

__all__ = ["render_monitor_report", "report_json"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_SEVERITY_RANK = {"critical": 0, "high": 1, "error": 1, "warning": 2, "medium": 2, "low": 3}
_VERDICT_CLASS = {"drift": "drift", "no_drift": "ok"}
_DRIFT_HEAD = [
    "column",
    "kind",
    "method",
    "statistic",
    "p-value",
    "adjusted p",
    "threshold",
    "distance",
    "rows (ref / cur)",
    "verdict",
]
_QUALITY_HEAD = [
    "column",
    "rows",
    "missing",
    "ref. missing",
    "out of range",
    "unseen share",
    "unseen categories",
    "type errors",
    "status",
    "issues",
]
_PREDICTION = "prediction"
_DEFAULT_DRIFT_SHARE = 0.5
# performance columns and dataset-level history names that are not model metrics
_NOT_METRICS = frozenset(
    [
        "start",
        "end",
        "n_predictions",
        "n_labelled",
        "label_coverage",
        "status",
        "drift_share",
        "drifted_columns",
        "prediction_drift_distance",
        "n_rows",
    ]
)


# -- public API -------------------------------------------------------------------------------


def render_monitor_report(
    *,
    monitor: Monitor,
    windows: Sequence[MonitorWindow],
    history: pd.DataFrame | None,
    drift: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    reference: pd.DataFrame | None,
    current: pd.DataFrame | None,
    alerts: Sequence[Alert],
    performance: pd.DataFrame | None = None,
    validation: Mapping[str, float] | None = None,
    period: str = "",
    generated_at_ms: int | None = None,
) -> str:
    """One self-contained HTML document describing a monitor's latest results and history.

    Args:
        monitor: the monitor reported on.
        windows: its evaluated windows (any order).
        history: one row per recorded number, columns ``start`` (UTC datetime),
            ``column`` (``""`` for dataset-level values), ``name`` and ``value``.
        drift: the report period's drift test, one row per column (``column``,
            ``kind``, ``method``, ``statistic``, ``p_value``, ``adjusted_p_value``,
            ``threshold``, ``drifted``, ``distance``, ``n_reference``,
            ``n_current``, ``status``, ``detail``), or None when not computed.
        quality: the report period's data quality, one row per column, or None.
        reference: the reference feature values, for the distribution overlays;
            a ``prediction`` column, if present, is drawn in its own section.
        current: the report period's live feature values (same columns).
        alerts: the monitor's alerts; open and acknowledged ones are listed.
        performance: one row per window with ``start``, ``n_predictions``,
            ``n_labelled``, ``label_coverage``, ``status`` and one column per
            metric, or None to take the metrics from ``history``.
        validation: metric name to its value on the validation set, drawn as a
            dashed reference line in that metric's chart.
        period: the report period as text (shown in the header).
        generated_at_ms: when the report was made (epoch ms); now when None.

    Returns:
        The HTML text; write it to a ``.html`` file and open it in any browser.

    Example::

        >>> from shipyard.core.entities import Monitor
        >>> m = Monitor(name="churn", model="churn", alias="production",
        ...             reference="customers@1", window_s=3600, schedule=None, spec={},
        ...             created_at=0, created_by="me", updated_at=0)
        >>> page = render_monitor_report(monitor=m, windows=[], history=None, drift=None,
        ...                              quality=None, reference=None, current=None, alerts=[])
        >>> "Not enough data yet" in page
        True
    """
    prep = _prepare(
        monitor=monitor,
        history=history,
        drift=drift,
        quality=quality,
        performance=performance,
        reference=reference,
        current=current,
    )
    if generated_at_ms is None:
        generated_at_ms = int(time.time() * 1000)
    title = f"Monitor {monitor.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1><p>{_e(_subtitle(monitor, period))}</p></header>",
        '<nav><a href="#overview">Overview</a><a href="#alerts">Alerts</a>'
        '<a href="#drift">Drift</a><a href="#columns">Columns</a>'
        '<a href="#prediction">Prediction</a><a href="#performance">Performance</a>'
        '<a href="#quality">Quality</a></nav><main>',
        _overview(
            monitor=monitor,
            windows=windows,
            alerts=alerts,
            prep=prep,
            period=period,
            generated_at_ms=generated_at_ms,
        ),
        _alerts_section(alerts),
        _drift_section(prep),
        _columns_section(prep, reference, current),
        _prediction_section(prep, reference, current),
        _performance_section(prep, validation or {}),
        _quality_section(prep),
    ]
    payload = _payload(
        monitor=monitor,
        windows=windows,
        alerts=alerts,
        prep=prep,
        validation=validation,
        period=period,
    )
    data = json.dumps(payload, allow_nan=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    parts.append(f'</main><script type="application/json" id="shipyard-monitor">{data}</script>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def report_json(
    *,
    monitor: Monitor,
    windows: Sequence[MonitorWindow],
    history: pd.DataFrame | None,
    drift: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    alerts: Sequence[Alert],
    performance: pd.DataFrame | None = None,
    validation: Mapping[str, float] | None = None,
    period: str = "",
) -> dict[str, Any]:
    """The content of :func:`render_monitor_report` as JSON-able data (for ``--json``).

    Non-finite numbers become None and timestamps ISO 8601 text, so
    ``json.dumps(report_json(...), allow_nan=False)`` always succeeds. The
    history is grouped into one series per ``(column, name)`` with parallel
    ``start_ms`` and ``value`` lists.

    Args:
        monitor, windows, history, drift, quality, alerts, performance,
        validation, period: as for :func:`render_monitor_report`.

    Returns:
        A dict with the keys ``monitor``, ``period``, ``verdict``, ``windows``,
        ``alerts``, ``drift_share_threshold``, ``drift``, ``quality``,
        ``history``, ``performance`` and ``validation``.

    Example::

        >>> from shipyard.core.entities import Monitor
        >>> m = Monitor(name="churn", model="churn", alias="production",
        ...             reference="customers@1", window_s=3600, schedule=None, spec={},
        ...             created_at=0, created_by="me", updated_at=0)
        >>> report_json(monitor=m, windows=[], history=None, drift=None, quality=None,
        ...             alerts=[])["verdict"]["status"]
        'not_enough_data'
    """
    prep = _prepare(
        monitor=monitor,
        history=history,
        drift=drift,
        quality=quality,
        performance=performance,
        reference=None,
        current=None,
    )
    return _payload(
        monitor=monitor,
        windows=windows,
        alerts=alerts,
        prep=prep,
        validation=validation,
        period=period,
    )


# -- preparation ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Prepared:
    """The inputs turned into plain records and indexed series, shared by HTML and JSON."""

    drift: list[dict[str, Any]]  # drifted first, then by distance
    quality: list[dict[str, Any]]
    history: dict[tuple[str, str], _Series]
    performance: list[dict[str, Any]]
    metrics: dict[str, _Series]  # performance metric -> series over time
    coverage: _Series | None
    threshold: float
    cards: list[str]  # column names with a card, in display order
    kinds: dict[str, str]


def _prepare(
    *,
    monitor: Monitor,
    history: pd.DataFrame | None,
    drift: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    performance: pd.DataFrame | None,
    reference: pd.DataFrame | None,
    current: pd.DataFrame | None,
) -> _Prepared:
    drift_rows = sorted(_records(drift), key=_drift_order)
    quality_rows = _records(quality)
    series = _index_history(history)
    metrics, coverage = _performance_series(performance, series)
    kinds = {str(r.get("column")): str(r.get("kind") or "") for r in drift_rows}
    cards = _unique(
        [str(r.get("column")) for r in drift_rows]
        + [str(r.get("column")) for r in quality_rows]
        + [
            str(c)
            for frame in (reference, current)
            if frame is not None
            for c in frame.columns
            if str(c) != _PREDICTION
        ]
    )
    return _Prepared(
        drift=drift_rows,
        quality=quality_rows,
        history=series,
        performance=_records(performance),
        metrics=metrics,
        coverage=coverage,
        threshold=_drift_share_threshold(monitor.spec),
        cards=cards,
        kinds=kinds,
    )


def _drift_order(row: Mapping[str, Any]) -> tuple[bool, float, str]:
    distance = row.get("distance")
    key = -float(distance) if isinstance(distance, int | float) else math.inf
    return (not _truthy(row.get("drifted")), key, str(row.get("column")))


def _index_history(history: pd.DataFrame | None) -> dict[tuple[str, str], _Series]:
    """``history`` split into one time-sorted series per ``(column, name)``."""
    if history is None or history.empty:
        return {}
    if not {"start", "column", "name", "value"} <= set(history.columns):
        return {}
    ms = _to_ms(history["start"])
    values = _floats(history["value"])
    keep = ~np.isnan(ms)
    column = history["column"].fillna("").astype(str).to_numpy()[keep]
    name = history["name"].fillna("").astype(str).to_numpy()[keep]
    ms_kept, values = ms[keep].astype(np.int64), values[keep]
    order = np.lexsort((ms_kept, name, column))
    column, name, ms_kept, values = column[order], name[order], ms_kept[order], values[order]
    out: dict[tuple[str, str], _Series] = {}
    if not len(order):
        return out
    change = np.flatnonzero((column[1:] != column[:-1]) | (name[1:] != name[:-1])) + 1
    bounds = [0, *change.tolist(), len(order)]
    for lo, hi in itertools.pairwise(bounds):
        out[(str(column[lo]), str(name[lo]))] = (ms_kept[lo:hi], values[lo:hi])
    return out


def _performance_series(
    performance: pd.DataFrame | None, history: Mapping[tuple[str, str], _Series]
) -> tuple[dict[str, _Series], _Series | None]:
    """Metric series from ``performance``, else the dataset-level metrics in the history."""
    if performance is not None and not performance.empty and "start" in performance.columns:
        ms = _to_ms(performance["start"])
        keep = ~np.isnan(ms)
        order = np.argsort(ms[keep], kind="stable")
        xs = ms[keep].astype(np.int64)[order]

        def values(col: str) -> npt.NDArray[np.float64]:
            return _floats(performance[col])[keep][order]

        metrics = {
            str(c): (xs, values(c))
            for c in performance.columns
            if str(c) not in _NOT_METRICS and pd.api.types.is_numeric_dtype(performance[c])
        }
        coverage = (xs, values("label_coverage")) if "label_coverage" in performance else None
        return metrics, coverage
    metrics = {
        name: s for (col, name), s in history.items() if col == "" and name not in _NOT_METRICS
    }
    return dict(sorted(metrics.items())), history.get(("", "label_coverage"))


def _drift_share_threshold(spec: Mapping[str, Any]) -> float:
    """The dataset drift share that counts as drift, from the monitor's spec (default 0.5).

    Read from ``drift_share_threshold`` or ``drift_share`` in the spec, else from
    an alert rule (in ``alerts`` or ``rules``) named ``drift_share`` or
    ``dataset_drift`` that has a ``threshold``.
    """
    for key in ("drift_share_threshold", "drift_share"):
        value = spec.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    for key in ("alerts", "rules"):
        rules = spec.get(key)
        if not isinstance(rules, Sequence) or isinstance(rules, str):
            continue
        for rule in rules:
            if not isinstance(rule, Mapping):
                continue
            kind = rule.get("rule", rule.get("name", rule.get("metric")))
            value = rule.get("threshold")
            if kind in ("drift_share", "dataset_drift") and isinstance(value, int | float):
                return float(value)
    return _DEFAULT_DRIFT_SHARE


def _verdict(prep: _Prepared) -> dict[str, Any]:
    tested = [r for r in prep.drift if _truthy(r.get("drifted")) or _status_ok(r)]
    drifted = [str(r.get("column")) for r in prep.drift if _truthy(r.get("drifted"))]
    if not tested:
        status, text = "not_enough_data", f"{_NOT_ENOUGH} to test for drift"
    elif drifted:
        status = "drift"
        text = f"drift detected in {len(drifted)} of {len(prep.drift)} columns"
    else:
        status, text = "no_drift", "no drift"
    return {
        "status": status,
        "text": text,
        "n_drifted": len(drifted),
        "n_columns": len(prep.drift),
        "drifted_columns": drifted,
    }


def _payload(
    *,
    monitor: Monitor,
    windows: Sequence[MonitorWindow],
    alerts: Sequence[Alert],
    prep: _Prepared,
    validation: Mapping[str, float] | None,
    period: str,
) -> dict[str, Any]:
    return {
        "monitor": _fields(monitor),
        "period": period,
        "verdict": _verdict(prep),
        "windows": [_fields(w, skip="summary") for w in sorted(windows, key=lambda w: w.start_ms)],
        "alerts": [_fields(a) for a in _sorted_alerts(alerts)],
        "drift_share_threshold": prep.threshold,
        "drift": prep.drift,
        "quality": prep.quality,
        "history": [
            {
                "column": col,
                "name": name,
                "start_ms": xs.tolist(),
                "value": [v if math.isfinite(v) else None for v in ys.tolist()],
            }
            for (col, name), (xs, ys) in prep.history.items()
        ],
        "performance": prep.performance,
        "validation": _plain(dict(validation or {})),
    }


# -- sections ---------------------------------------------------------------------------------


def _subtitle(monitor: Monitor, period: str) -> str:
    text = f"{monitor.model}@{monitor.alias} against {monitor.reference}"
    return f"{text}; period {period}" if period else text


def _overview(
    *,
    monitor: Monitor,
    windows: Sequence[MonitorWindow],
    alerts: Sequence[Alert],
    prep: _Prepared,
    period: str,
    generated_at_ms: int,
) -> str:
    verdict = _verdict(prep)
    n_ok = sum(1 for w in windows if w.status == "ok")
    last_run = _when(monitor.last_run_at) if monitor.last_run_at is not None else "never"
    if monitor.last_status:
        last_run += f" ({monitor.last_status})"
    n_open = sum(1 for a in alerts if a.status != "resolved")
    cards = [
        ("model", f"{monitor.model}@{monitor.alias}", ""),
        ("reference", monitor.reference, ""),
        ("period", period or "-", ""),
        ("windows evaluated", f"{len(windows):,} ({n_ok:,} with enough data)", ""),
        ("window", _duration(monitor.window_s), ""),
        ("last run", last_run, ""),
        ("open alerts", f"{n_open:,}", "drift" if n_open else ""),
        ("verdict", verdict["text"], _VERDICT_CLASS.get(verdict["status"], "")),
    ]
    body = "".join(
        f'<div class="card {cls}"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v, cls in cards
    )
    banner = ""
    if not windows and not prep.history and not prep.drift:
        banner = _empty(
            "no window of this monitor has been evaluated, so there is nothing to compare "
            "with the reference. The report fills in once predictions are logged and the "
            "monitor has run."
        )
    elif windows and n_ok == 0:
        banner = _empty(
            f"none of the {len(windows):,} evaluated windows had enough rows for the tests."
        )
    return (
        f'<section id="overview"><h2>Overview</h2>{banner}<div class=cards>{body}</div>'
        f"<p class=muted>Schedule: {_e(monitor.schedule or 'manual')}. "
        f"Generated {_e(_when(generated_at_ms))}.</p></section>"
    )


def _alerts_section(alerts: Sequence[Alert]) -> str:
    active = [a for a in _sorted_alerts(alerts) if a.status != "resolved"]
    n_resolved = len(alerts) - len(active)
    head = ["severity", "rule", "column", "message", "opened", "seen", "status", "action"]
    rows = [
        [
            _severity_chip(a.severity),
            _e(a.rule),
            _e(a.column or "-"),
            _e(a.message),
            _e(_when(a.opened_at)),
            f"{a.count:,}&times;",
            _e(a.status),
            _e(f"{a.action} ({a.action_status})" if a.action_status else a.action or "-"),
        ]
        for a in active
    ]
    table = _table(head, rows) if rows else "<p class=muted>No open alerts.</p>"
    note = f"<p class=muted>{n_resolved:,} resolved alerts not shown.</p>" if n_resolved else ""
    return f'<section id="alerts"><h2>Open alerts</h2>{table}{note}</section>'


def _drift_section(prep: _Prepared) -> str:
    share = prep.history.get(("", "drift_share"))
    if share is None or not np.isfinite(share[1]).any():
        chart = _empty("no window has a dataset drift share yet.")
    else:
        chart = _time_chart(
            [("drift share", _LINE, share)],
            refs=[(f"threshold {_fmt(prep.threshold)}", prep.threshold, _DRIFT)],
            chart_id="drift-share",
            label="share of drifted columns per window",
            y_range=(0.0, 1.0),
            percent=True,
        )
    if not prep.drift:
        table = _empty("the drift test has not run on this period.")
    else:
        anchors = {name: i for i, name in enumerate(prep.cards)}
        rows = []
        classes = []
        for r in prep.drift:
            col = str(r.get("column"))
            rows.append(
                [
                    f'<a class="column-link" href="#col-{anchors[col]}">{_e(col)}</a>',
                    _e(r.get("kind") or "-"),
                    _e(r.get("method") or "-"),
                    _num(r.get("statistic")),
                    _num(r.get("p_value")),
                    _num(r.get("adjusted_p_value")),
                    _num(r.get("threshold")),
                    _num(r.get("distance")),
                    f"{_num(r.get('n_reference'))} / {_num(r.get('n_current'))}",
                    _verdict_chip(r),
                ]
            )
            classes.append("drifted" if _truthy(r.get("drifted")) else "")
        table = _table(_DRIFT_HEAD, rows, classes, table_id="drift-table")
    verdict = _verdict(prep)
    return (
        '<section id="drift"><h2>Drift</h2>'
        f"<p><b>{_e(verdict['text'][:1].upper() + verdict['text'][1:])}.</b></p>"
        f"<h3>Dataset drift share over time</h3>{chart}<h3>Columns</h3>{table}</section>"
    )


def _columns_section(
    prep: _Prepared, reference: pd.DataFrame | None, current: pd.DataFrame | None
) -> str:
    if not prep.cards:
        return (
            '<section id="columns"><h2>Columns</h2>'
            f"{_empty('no column has been tested or profiled yet.')}</section>"
        )
    drift = {str(r.get("column")): r for r in prep.drift}
    quality = {str(r.get("column")): r for r in prep.quality}
    cards = "".join(
        _column_card(
            i,
            name,
            drift=drift.get(name),
            quality=quality.get(name),
            prep=prep,
            reference=reference,
            current=current,
        )
        for i, name in enumerate(prep.cards)
    )
    return f'<section id="columns"><h2>Columns</h2><div class=grid>{cards}</div></section>'


def _column_card(
    index: int,
    name: str,
    *,
    drift: Mapping[str, Any] | None,
    quality: Mapping[str, Any] | None,
    prep: _Prepared,
    reference: pd.DataFrame | None,
    current: pd.DataFrame | None,
) -> str:
    kind = prep.kinds.get(name) or _infer_kind(_column(reference, name), _column(current, name))
    overlay = _overlay(name, kind, _column(reference, name), _column(current, name))
    distance = prep.history.get((name, "drift_distance"))
    flags = prep.history.get((name, "drifted"))
    if distance is None or not np.isfinite(distance[1]).any():
        spark = "<p class=muted>No drift distance history yet.</p>"
    else:
        spark = _sparkline(name, distance, flags)
    stats: list[tuple[str, str]] = []
    if drift is not None:
        stats += [
            ("method", _e(drift.get("method") or "-")),
            ("statistic", _num(drift.get("statistic"))),
            ("p-value", _num(drift.get("p_value"))),
            ("adjusted p", _num(drift.get("adjusted_p_value"))),
            ("threshold", _num(drift.get("threshold"))),
            ("distance", _num(drift.get("distance"))),
            (
                "rows (ref / cur)",
                f"{_num(drift.get('n_reference'))} / {_num(drift.get('n_current'))}",
            ),
        ]
        if drift.get("detail"):
            stats.append(("detail", _e(drift.get("detail"))))
    if quality is not None:
        stats += _quality_stats(quality)
    table = "".join(f"<tr><th>{_e(k)}</th><td class=num>{v}</td></tr>" for k, v in stats)
    chip = _verdict_chip(drift) if drift is not None else ""
    drifted = " drifted" if drift is not None and _truthy(drift.get("drifted")) else ""
    return (
        f'<div class="column{drifted}" id="col-{index}" data-column="{_e(name)}">'
        f"<h3>{_e(name)}<span class=kind>{_e(kind or '-')}</span>{chip}</h3>{overlay}"
        f"<h4>Drift distance per window</h4>{spark}"
        f"{f'<table>{table}</table>' if table else ''}</div>"
    )


def _quality_stats(q: Mapping[str, Any]) -> list[tuple[str, str]]:
    stats = [
        (
            "missing (cur / ref)",
            f"{_pct(q.get('missing_rate'))} / {_pct(q.get('reference_missing_rate'))}",
        ),
        ("out of range", _pct(q.get("out_of_range_share"))),
        ("unseen categories", _pct(q.get("unseen_category_share"))),
        ("type errors", _pct(q.get("type_error_share"))),
        ("quality", _e(q.get("status") or "-")),
    ]
    if q.get("unseen_categories"):
        stats.insert(3, ("new values", f"<span class=new>{_e(q['unseen_categories'])}</span>"))
    if q.get("issues"):
        stats.append(("issues", f"<span class=new>{_e(q['issues'])}</span>"))
    return stats


def _prediction_section(
    prep: _Prepared, reference: pd.DataFrame | None, current: pd.DataFrame | None
) -> str:
    ref, cur = _column(reference, _PREDICTION), _column(current, _PREDICTION)
    drift = next((r for r in prep.drift if r.get("column") == _PREDICTION), None)
    parts = []
    if ref is None and cur is None:
        parts.append(_empty("no prediction column in the reference or the current data."))
    else:
        kind = str(drift.get("kind")) if drift and drift.get("kind") else _infer_kind(ref, cur)
        parts.append(f"<div class=chart>{_overlay(_PREDICTION, kind, ref, cur)}</div>")
    series = prep.history.get(("", "prediction_drift_distance"))
    if series is not None and np.isfinite(series[1]).any():
        parts.append("<h3>Prediction drift distance over time</h3>")
        parts.append(
            _time_chart(
                [("prediction drift distance", _LINE, series)],
                refs=[],
                chart_id="prediction-drift",
                label="prediction drift distance per window",
            )
        )
    if drift is not None:
        parts.append(
            f"<p>{_verdict_chip(drift)} {_e(drift.get('method') or '')} distance "
            f"{_num(drift.get('distance'))}, p-value {_num(drift.get('p_value'))}</p>"
        )
    return f'<section id="prediction"><h2>Prediction drift</h2>{"".join(parts)}</section>'


def _performance_section(prep: _Prepared, validation: Mapping[str, float]) -> str:
    metrics = {k: s for k, s in prep.metrics.items() if np.isfinite(s[1]).any()}
    if not metrics:
        body = _empty("no window has enough labelled predictions to measure performance.")
    else:
        charts = []
        for i, (name, series) in enumerate(metrics.items()):
            refs = []
            value = validation.get(name)
            if isinstance(value, int | float) and math.isfinite(value):
                refs.append((f"validation {_fmt(float(value))}", float(value), _OK))
            chart = _time_chart(
                [(name, _SERIES[i % len(_SERIES)], series)],
                refs=refs,
                chart_id=f"metric-{i}",
                label=f"{name} per window",
            )
            charts.append(f"<div class=chart><h4>{_e(name)}</h4>{chart}</div>")
        body = f"<div class=grid>{''.join(charts)}</div>"
    if prep.coverage is not None and np.isfinite(prep.coverage[1]).any():
        coverage = _time_chart(
            [("label coverage", _LINE, prep.coverage)],
            refs=[],
            chart_id="label-coverage",
            label="share of predictions with a label per window",
            y_range=(0.0, 1.0),
            percent=True,
        )
        body += f"<h3>Label coverage</h3>{coverage}"
    return f'<section id="performance"><h2>Performance over time</h2>{body}</section>'


def _quality_section(prep: _Prepared) -> str:
    if not prep.quality:
        body = _empty("data quality has not been checked on this period.")
    else:
        anchors = {name: i for i, name in enumerate(prep.cards)}
        rows, classes = [], []
        for q in prep.quality:
            col = str(q.get("column"))
            issues = str(q.get("issues") or "")
            flagged = bool(issues) or str(q.get("status") or "ok") not in ("ok", "")
            rows.append(
                [
                    f'<a href="#col-{anchors[col]}">{_e(col)}</a>',
                    _num(q.get("n")),
                    _pct(q.get("missing_rate")),
                    _pct(q.get("reference_missing_rate")),
                    _pct(q.get("out_of_range_share")),
                    _pct(q.get("unseen_category_share")),
                    _e(q.get("unseen_categories") or ""),
                    _pct(q.get("type_error_share")),
                    _e(q.get("status") or "-"),
                    f"<b class=new>{_e(issues)}</b>" if issues else "",
                ]
            )
            classes.append("issue" if flagged else "")
        body = _table(_QUALITY_HEAD, rows, classes, table_id="quality-table")
    return f'<section id="quality"><h2>Data quality</h2>{body}</section>'


# -- data helpers -----------------------------------------------------------------------------


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """A frame's rows as dicts of plain Python values (NaN -> None, timestamps -> ISO)."""
    if frame is None or frame.empty:
        return []
    columns = [str(c) for c in frame.columns]
    return [
        {c: _plain(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _fields(entity: Any, *, skip: str = "") -> dict[str, Any]:
    """A frozen entity's fields as plain data (``skip``: one field to leave out)."""
    return {
        f.name: _plain(getattr(entity, f.name))
        for f in dataclasses.fields(entity)
        if f.name != skip
    }


def _plain(value: Any) -> Any:
    """``value`` as strict-JSON data: NumPy scalars unwrapped, NaN/NaT as None, times as text."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_plain(v) for v in value]
    return str(value)


def _to_ms(values: pd.Series) -> npt.NDArray[np.float64]:
    """Times as epoch milliseconds (NaN where missing); numbers are taken as ms already."""
    if pd.api.types.is_numeric_dtype(values):
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)
    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    delta = stamps - pd.Timestamp(0, tz="UTC")
    return np.asarray(delta / pd.Timedelta(milliseconds=1), dtype=np.float64)


def _column(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None:
        return None
    key: Any = name
    if key not in frame.columns:  # a column named by a number, say
        key = next((c for c in frame.columns if str(c) == name), None)
        if key is None:
            return None
    column = frame[key]
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def _infer_kind(ref: pd.Series | None, cur: pd.Series | None) -> str:
    for s in (ref, cur):
        if s is not None:
            numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            return "numeric" if numeric else "categorical"
    return ""


def _sorted_alerts(alerts: Sequence[Alert]) -> list[Alert]:
    return sorted(
        alerts,
        key=lambda a: (a.status == "resolved", _SEVERITY_RANK.get(a.severity, 4), -a.opened_at),
    )


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
