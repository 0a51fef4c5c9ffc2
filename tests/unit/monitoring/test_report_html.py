"""The monitor report: verdict, drifted columns first, no outside resources, escaping, empties."""

from __future__ import annotations

import doctest
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.monitoring import report_html
from shipyard.monitoring.report_html import render_monitor_report, report_json

HOSTILE = "<script>alert(1)</script>"
START = pd.Timestamp("2024-05-01", tz="UTC")
HOUR_MS = 3_600_000
GENERATED = int(START.timestamp() * 1000) + 30 * HOUR_MS


@dataclass(frozen=True)
class Inputs:
    """Everything :func:`render_monitor_report` takes, as keyword arguments."""

    monitor: Monitor
    windows: list[MonitorWindow]
    history: pd.DataFrame
    drift: pd.DataFrame | None
    quality: pd.DataFrame | None
    reference: pd.DataFrame | None
    current: pd.DataFrame | None
    alerts: list[Alert]
    performance: pd.DataFrame | None
    validation: dict[str, float] | None

    def html(self, *, period: str = "last 24 h", **changes: Any) -> str:
        args = {**self.__dict__, **changes}
        return render_monitor_report(**args, period=period, generated_at_ms=GENERATED)

    def json(self, **changes: Any) -> dict[str, Any]:
        args = {**self.__dict__, **changes}
        del args["reference"], args["current"]
        return report_json(**args, period="last 24 h")


def make_monitor(name: str = "churn-prod", **changes: Any) -> Monitor:
    fields: dict[str, Any] = {
        "name": name,
        "model": "churn",
        "alias": "production",
        "reference": "customers@3",
        "window_s": 3600,
        "schedule": "0 * * * *",
        "spec": {"target": "churned", "prediction": "prediction"},
        "created_at": 0,
        "created_by": "tester",
        "updated_at": 0,
        "last_run_at": GENERATED - 60_000,
        "last_status": "ok",
    }
    fields.update(changes)
    return Monitor(**fields)


def make_alert(alert_id: int, *, severity: str, status: str = "open", **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": alert_id,
        "monitor": "churn-prod",
        "model": "churn",
        "rule": "column_drift",
        "column": "age",
        "fingerprint": f"column_drift:age:{alert_id}",
        "severity": severity,
        "status": status,
        "message": "age drifted: distance 0.41 above 0.1",
        "value": 0.41,
        "opened_at": GENERATED - 5 * HOUR_MS,
        "last_seen_at": GENERATED - HOUR_MS,
        "resolved_at": GENERATED if status == "resolved" else None,
        "count": 5,
        "window_start_ms": None,
        "action": "retrain",
        "action_status": "dry_run",
    }
    fields.update(changes)
    return Alert(**fields)


def make_inputs(
    *,
    columns: Sequence[str] = ("age", "income", "plan"),
    n_windows: int = 24,
    n_rows: int = 2000,
    seed: int = 0,
) -> Inputs:
    """Realistic monitor output: ``age`` drifted upward, ``plan`` gained an ``enterprise`` value.

    Column names other than age, income and plan are stable numeric columns.
    """
    rng = np.random.default_rng(seed)
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    drift_rows, quality_rows = [], []
    for col in columns:
        if col == "plan":
            reference[col] = rng.choice(["basic", "pro", "team"], n_rows, p=[0.6, 0.3, 0.1])
            current[col] = rng.choice(
                ["basic", "pro", "team", "enterprise"], n_rows // 2, p=[0.4, 0.3, 0.1, 0.2]
            )
            kind, method, distance, p, drifted = "categorical", "chi2", 0.21, 1e-30, True
        else:
            shift = 8.0 if col == "age" else 0.0
            reference[col] = rng.normal(40, 10, n_rows)
            current[col] = rng.normal(40 + shift, 10, n_rows // 2)
            drifted = col == "age"
            kind, method = "numeric", "ks"
            distance, p = (0.35, 1e-40) if drifted else (0.02, 0.6)
        drift_rows.append(
            {
                "column": col,
                "kind": kind,
                "method": method,
                "statistic": distance * 1.1,
                "p_value": p,
                "adjusted_p_value": min(1.0, p * len(columns)),
                "threshold": 0.05,
                "drifted": drifted,
                "distance": distance,
                "n_reference": n_rows,
                "n_current": n_rows // 2,
                "status": "ok",
                "detail": "",
            }
        )
        new = col == "plan"
        quality_rows.append(
            {
                "column": col,
                "n": n_rows // 2,
                "missing_rate": 0.08 if col == "income" else 0.0,
                "reference_missing_rate": 0.01 if col == "income" else 0.0,
                "out_of_range_share": np.nan if new else 0.001,
                "unseen_category_share": 0.2 if new else np.nan,
                "unseen_categories": "enterprise" if new else "",
                "type_error_share": 0.0,
                "status": "warning" if col in ("plan", "income") else "ok",
                "issues": "new categories: enterprise"
                if new
                else ("missing rate up" if col == "income" else ""),
            }
        )
    reference["prediction"] = rng.beta(2, 5, n_rows)
    current["prediction"] = rng.beta(3, 4, n_rows // 2)

    starts = START + pd.to_timedelta(np.arange(n_windows), unit="h")
    rows: list[tuple[pd.Timestamp, str, str, float]] = []
    for i, start in enumerate(starts):
        late = i >= n_windows // 2
        n_drifted = sum(1 for r in drift_rows if r["drifted"]) if late else 0
        dataset = {
            "drift_share": n_drifted / len(columns),
            "drifted_columns": float(n_drifted),
            "prediction_drift_distance": 0.15 if late else 0.03,
            "n_rows": 100.0,
            "label_coverage": 0.0 if i == 0 else 0.8,
            "accuracy": np.nan if i == 0 else 0.85 - (0.05 if late else 0.0),
            "roc_auc": np.nan if i == 0 else 0.9 - (0.04 if late else 0.0),
        }
        rows += [(start, "", name, value) for name, value in dataset.items()]
        for r in drift_rows:
            d = bool(r["drifted"]) and late
            column = {
                "drifted": float(d),
                "drift_distance": r["distance"] if d else 0.02 + 0.001 * i,
                "p_value": r["p_value"] if d else 0.5,
                "missing_rate": 0.0,
            }
            rows += [(start, str(r["column"]), name, value) for name, value in column.items()]
    history = pd.DataFrame(rows, columns=["start", "column", "name", "value"])

    windows = [
        MonitorWindow(
            monitor="churn-prod",
            start_ms=int(s.timestamp() * 1000),
            end_ms=int(s.timestamp() * 1000) + HOUR_MS,
            computed_at=int(s.timestamp() * 1000) + HOUR_MS,
            n_rows=100,
            n_labelled=0 if i == 0 else 80,
            status="not_enough_data" if i == 0 else "ok",
            summary={},
        )
        for i, s in enumerate(starts)
    ]
    performance = pd.DataFrame(
        {
            "start": starts,
            "n_predictions": 100,
            "n_labelled": [0] + [80] * (n_windows - 1),
            "label_coverage": [0.0] + [0.8] * (n_windows - 1),
            "status": ["not_enough_data"] + ["ok"] * (n_windows - 1),
            "accuracy": history.query("name == 'accuracy'")["value"].to_numpy(),
            "roc_auc": history.query("name == 'roc_auc'")["value"].to_numpy(),
        }
    )
    alerts = [
        make_alert(1, severity="critical"),
        make_alert(2, severity="warning", rule="quality", column="plan", message="new values"),
        make_alert(3, severity="warning", status="resolved", message="an old resolved alert"),
    ]
    return Inputs(
        monitor=make_monitor(),
        windows=windows,
        history=history,
        drift=pd.DataFrame(drift_rows),
        quality=pd.DataFrame(quality_rows),
        reference=pd.DataFrame(reference),
        current=pd.DataFrame(current),
        alerts=alerts,
        performance=performance,
        validation={"accuracy": 0.86, "roc_auc": 0.91},
    )


class Links(HTMLParser):
    """The ids, the URLs (href, src, action) and the tags of a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids.update(str(v) for k, v in attrs if k == "id" and v)
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "action", "xlink:href")]


def card(page: str, column: str) -> str:
    """The HTML of one column card (found by its escaped ``data-column``)."""
    from html import escape

    start = page.index(f'data-column="{escape(column)}"', page.index('id="columns"'))
    start = page.rindex("<div", 0, start)
    return page[start : page.index("</div>", start)]


# -- content ----------------------------------------------------------------------------------


def test_report_states_the_verdict_and_lists_drifted_columns_first() -> None:
    page = make_inputs().html()
    assert page.startswith("<!DOCTYPE html>")
    assert "drift detected in 2 of 3 columns" in page
    assert "<title>Monitor churn-prod</title>" in page
    assert "churn@production" in page and "customers@3" in page and "last 24 h" in page
    assert "24 (23 with enough data)" in page
    table = page[page.index('id="drift-table"') :]
    table = table[: table.index("</table>")]
    order = re.findall(r'class="column-link" href="#col-(\d+)">([^<]*)</a>', table)
    assert [name for _, name in order] == ["age", "plan", "income"]  # drifted, by distance
    assert table.count('<tr class="drifted">') == 2
    for anchor, name in order:  # every row links to its card
        assert f'id="col-{anchor}" data-column="{name}"' in page


def test_column_cards_overlay_reference_and_current() -> None:
    page = make_inputs().html()
    age = card(page, "age")
    assert 'class="overlay numeric"' in age
    assert age.count('class="bar ref"') == age.count('class="bar cur"') == 20  # shared bins
    assert "reference" in age and "current" in age  # the legend
    plan = card(page, "plan")
    assert 'class="overlay categorical"' in plan
    assert "enterprise (new)" in plan
    assert "basic (new)" not in plan
    assert "new categories: enterprise" in plan  # its quality figures
    assert page.count('<svg class="sparkline"') == 3
    assert page.count('class="drifted" cx=') == 2 * 12  # age and plan drifted in 12 windows


def test_categorical_overlay_keeps_the_top_ten_and_folds_the_rest() -> None:
    inputs = make_inputs(columns=("plan",))
    rng = np.random.default_rng(1)
    values = [f"v{i:02d}" for i in range(25)]
    reference = pd.DataFrame({"plan": rng.choice(values, 3000)})
    page = inputs.html(reference=reference, current=reference.iloc[:1000])
    plan = card(page, "plan")
    assert plan.count('class="bar ref"') == 11  # ten values and "other"
    assert "(other)" in plan and "15 other values" in plan
    assert "(new)" not in plan


def test_charts_show_drift_share_threshold_and_validation_lines() -> None:
    inputs = make_inputs()
    page = inputs.html()
    share = page[
        page.index('id="drift-share"') : page.index("</svg>", page.index('id="drift-share"'))
    ]
    assert "threshold 0.5" in share and 'class="ref-line"' in share
    assert share.count("<circle") == 24
    assert page.count('class="timechart"') >= 4  # share, prediction, 2 metrics, coverage
    assert "validation 0.86" in page and "validation 0.91" in page
    assert 'id="prediction-drift"' in page
    assert 'class="overlay numeric" data-column="prediction"' in page
    threshold = replace(inputs.monitor, spec={"drift_share_threshold": 0.3})
    assert "threshold 0.3" in inputs.html(monitor=threshold)


def test_performance_falls_back_to_the_history_metrics() -> None:
    page = make_inputs().html(performance=None)
    assert 'id="metric-0"' in page and 'id="metric-1"' in page
    assert "validation 0.86" in page
    assert 'id="label-coverage"' in page


def test_alerts_table_lists_open_alerts_by_severity() -> None:
    page = make_inputs().html()
    section = page[page.index('id="alerts"') : page.index('id="drift"')]
    assert section.index(">critical<") < section.index(">warning<")
    assert "an old resolved alert" not in section
    assert "1 resolved alerts not shown" in section
    assert "#7f1d1d" in section  # the critical chip's colour
    assert "retrain (dry_run)" in section


def test_quality_table_highlights_issues() -> None:
    page = make_inputs().html()
    table = page[page.index('id="quality-table"') :]
    table = table[: table.index("</table>")]
    assert table.count('<tr class="issue">') == 2
    assert "missing rate up" in table and "8.0%" in table


# -- safety -----------------------------------------------------------------------------------


def test_report_needs_nothing_from_outside() -> None:
    page = make_inputs().html()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script(?![^>]*application/json)", page)
    assert "<link" not in page and "<img" not in page and "@import" not in page
    assert "default-src 'none'" in page


def test_every_link_is_an_anchor_on_the_page() -> None:
    page = Links(make_inputs().html())
    assert page.urls and all(url.startswith("#") for url in page.urls)
    assert {url[1:] for url in page.urls} <= page.ids
    assert page.tags.count("script") == 1 and "link" not in page.tags and "img" not in page.tags


def test_hostile_names_are_escaped_everywhere() -> None:
    inputs = make_inputs(columns=("age", HOSTILE, "plan"))
    hostile_alert = make_alert(4, severity="<b>sev</b>", column=HOSTILE, message=HOSTILE)
    page = inputs.html(
        monitor=make_monitor(name=HOSTILE, last_status=HOSTILE),
        alerts=[*inputs.alerts, hostile_alert],
        validation={HOSTILE: 1.0},
        period=HOSTILE,
    )
    assert HOSTILE not in page
    assert "<b>sev</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1  # only the JSON data block
    embedded = re.search(r'id="shipyard-monitor">(.*)</script>', page)
    assert embedded is not None and "<" not in embedded.group(1)
    assert HOSTILE in [r["column"] for r in json.loads(embedded.group(1))["drift"]]
    assert 'data-column="&lt;script&gt;alert(1)&lt;/script&gt;"' in page


# -- empty inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("frames", ["none", "empty"])
def test_empty_inputs_say_not_enough_data(frames: str) -> None:
    empty = frames == "empty"
    history = pd.DataFrame(columns=["start", "column", "name", "value"]) if empty else None
    page = render_monitor_report(
        monitor=make_monitor(last_run_at=None, last_status=""),
        windows=[],
        history=history,
        drift=pd.DataFrame() if empty else None,
        quality=pd.DataFrame() if empty else None,
        reference=pd.DataFrame() if empty else None,
        current=pd.DataFrame() if empty else None,
        alerts=[],
        performance=pd.DataFrame() if empty else None,
        validation={},
        generated_at_ms=GENERATED,
    )
    assert page.count("Not enough data yet") >= 5
    assert "no window of this monitor has been evaluated" in page
    assert "No open alerts." in page
    assert "never" in page
    assert "<svg" not in page


def test_windows_without_enough_rows_say_so() -> None:
    inputs = make_inputs()
    windows = [replace(w, status="not_enough_data") for w in inputs.windows]
    empty_history = inputs.history.iloc[:0]
    page = inputs.html(windows=windows, history=empty_history, drift=None, performance=None)
    assert "none of the 24 evaluated windows had enough rows" in page
    assert "Not enough data yet</b>: no window has a dataset drift share yet." in page
    assert "Not enough data yet</b>: the drift test has not run" in page
    assert "Not enough data yet to test for drift" in page
    assert 'class="overlay numeric" data-column="age"' in page  # the live data is still drawn


def test_columns_that_were_not_tested_say_so_in_the_verdict() -> None:
    inputs = make_inputs()
    assert inputs.drift is not None
    untested = inputs.drift.assign(drifted=False, status="not_enough_data")
    page = inputs.html(drift=untested)
    assert "Not enough data yet to test for drift" in page
    assert '<span class="chip na">not_enough_data</span>' in page


# -- JSON -------------------------------------------------------------------------------------


def test_report_json_is_strict_json_with_the_same_content() -> None:
    inputs = make_inputs()
    data = inputs.json()
    text = json.dumps(data, allow_nan=False)  # NaN in quality, history and performance
    assert "NaN" not in text
    assert data["verdict"] == {
        "status": "drift",
        "text": "drift detected in 2 of 3 columns",
        "n_drifted": 2,
        "n_columns": 3,
        "drifted_columns": ["age", "plan"],
    }
    assert [r["column"] for r in data["drift"]] == ["age", "plan", "income"]
    assert data["drift"][0]["drifted"] is True
    assert data["quality"][2]["out_of_range_share"] is None
    assert len(data["windows"]) == 24 and data["windows"][0]["status"] == "not_enough_data"
    assert [a["alert_id"] for a in data["alerts"]] == [1, 2, 3]
    assert data["drift_share_threshold"] == 0.5
    series = {(s["column"], s["name"]): s for s in data["history"]}
    assert len(series) == 7 + 3 * 4
    assert series[("", "accuracy")]["value"][0] is None
    assert len(series[("age", "drift_distance")]["start_ms"]) == 24
    assert data["performance"][0]["start"] == "2024-05-01T00:00:00+00:00"
    assert data["validation"] == {"accuracy": 0.86, "roc_auc": 0.91}
    page = inputs.html()
    embedded = re.search(r'id="shipyard-monitor">(.*)</script>', page)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == json.loads(text)


def test_report_json_of_nothing() -> None:
    data = report_json(
        monitor=make_monitor(), windows=[], history=None, drift=None, quality=None, alerts=[]
    )
    json.dumps(data, allow_nan=False)
    assert data["verdict"]["status"] == "not_enough_data"
    assert data["history"] == [] and data["drift"] == [] and data["performance"] == []


# -- speed ------------------------------------------------------------------------------------


def test_fifty_columns_over_two_hundred_windows_render_quickly() -> None:
    columns = ["age", "plan", *(f"f{i:02d}" for i in range(48))]
    inputs = make_inputs(columns=columns, n_windows=200, n_rows=5000)
    assert len(inputs.history) == 200 * (7 + 4 * 50)
    began = time.perf_counter()
    page = inputs.html()
    elapsed = time.perf_counter() - began
    assert page.count('<svg class="sparkline"') == 50
    assert elapsed < 1.0, f"rendering took {elapsed:.2f} s"  # ~0.15 s on one core


def test_docstring_examples_run() -> None:
    result = doctest.testmod(report_html, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0
