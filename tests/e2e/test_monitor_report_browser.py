"""The monitor report opened in headless Chromium: no errors, no network, charts and links work.

Needs the ``playwright`` Python package and Debian's ``chromium`` at
``/usr/bin/chromium`` (Playwright's own browser download is not used); the test
skips, saying which is missing, when either is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.monitoring.report_html import render_monitor_report

HOSTILE = "<script>alert(1)</script>"
START = pd.Timestamp("2024-05-01", tz="UTC")
HOUR_MS = 3_600_000
START_MS = int(START.timestamp() * 1000)


def report_inputs(n: int = 1500, n_windows: int = 24) -> dict[str, Any]:
    """A monitor whose ``age`` drifted and whose ``plan`` gained a value, over 24 windows."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            HOSTILE: rng.normal(size=n),
            "prediction": rng.beta(2, 5, n),
        }
    )
    current = pd.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro", "team", "enterprise"], n, p=[0.4, 0.3, 0.1, 0.2]),
            HOSTILE: rng.normal(size=n),
            "prediction": rng.beta(3, 4, n),
        }
    )
    tests = [  # column, kind, method, drifted, distance, p-value
        ("age", "numeric", "ks", True, 0.38, 1e-40),
        ("income", "numeric", "ks", False, 0.02, 0.7),
        ("plan", "categorical", "chi2", True, 0.2, 1e-25),
        (HOSTILE, "numeric", "ks", False, 0.03, 0.4),
    ]
    drift = pd.DataFrame(
        [
            {
                "column": col,
                "kind": kind,
                "method": method,
                "statistic": distance,
                "p_value": p,
                "adjusted_p_value": min(1.0, 4 * p),
                "threshold": 0.05,
                "drifted": drifted,
                "distance": distance,
                "n_reference": n,
                "n_current": n,
                "status": "ok",
                "detail": "",
            }
            for col, kind, method, drifted, distance, p in tests
        ]
    )
    quality = pd.DataFrame(
        [
            {
                "column": col,
                "n": n,
                "missing_rate": 0.0,
                "reference_missing_rate": 0.0,
                "out_of_range_share": np.nan if kind == "categorical" else 0.0,
                "unseen_category_share": 0.2 if col == "plan" else np.nan,
                "unseen_categories": "enterprise" if col == "plan" else "",
                "type_error_share": 0.0,
                "status": "warning" if col == "plan" else "ok",
                "issues": "new categories: enterprise" if col == "plan" else "",
            }
            for col, kind, *_ in tests
        ]
    )
    starts = START + pd.to_timedelta(np.arange(n_windows), unit="h")
    rows = []
    for i, start in enumerate(starts):
        late = i >= n_windows // 2
        rows += [
            (start, "", "drift_share", 0.5 if late else 0.0),
            (start, "", "prediction_drift_distance", 0.12 if late else 0.02),
            (start, "", "accuracy", 0.8 if late else 0.86),
        ]
        for col, _, _, drifted, distance, _ in tests:
            d = drifted and late
            rows += [
                (start, col, "drifted", float(d)),
                (start, col, "drift_distance", distance if d else 0.02),
            ]
    history = pd.DataFrame(rows, columns=["start", "column", "name", "value"])
    windows = [
        MonitorWindow(
            monitor="churn-prod",
            start_ms=START_MS + i * HOUR_MS,
            end_ms=START_MS + (i + 1) * HOUR_MS,
            computed_at=START_MS + (i + 1) * HOUR_MS,
            n_rows=100,
            n_labelled=80,
            status="ok",
            summary={},
        )
        for i in range(n_windows)
    ]
    alert = Alert(
        alert_id=1,
        monitor="churn-prod",
        model="churn",
        rule="column_drift",
        column="age",
        fingerprint="column_drift:age",
        severity="critical",
        status="open",
        message="age drifted",
        value=0.38,
        opened_at=START_MS + 12 * HOUR_MS,
        last_seen_at=START_MS + 23 * HOUR_MS,
        resolved_at=None,
        count=12,
        window_start_ms=START_MS + 23 * HOUR_MS,
        action="retrain",
        action_status="pending",
    )
    monitor = Monitor(
        name="churn-prod",
        model="churn",
        alias="production",
        reference="customers@3",
        window_s=3600,
        schedule="0 * * * *",
        spec={},
        created_at=START_MS,
        created_by="tester",
        updated_at=START_MS,
        last_run_at=START_MS + n_windows * HOUR_MS,
        last_status="ok",
    )
    return {
        "monitor": monitor,
        "windows": windows,
        "history": history,
        "drift": drift,
        "quality": quality,
        "reference": reference,
        "current": current,
        "alerts": [alert],
        "validation": {"accuracy": 0.87},
        "period": "2024-05-01",
        "generated_at_ms": START_MS + 25 * HOUR_MS,
    }


def test_monitor_report_renders_in_headless_chromium(
    tmp_path: Path, open_in_chromium: Callable[[Path], tuple[Any, Any]]
) -> None:
    page_path = tmp_path / "monitor_report.html"
    page_path.write_text(render_monitor_report(**report_inputs()), encoding="utf-8")

    page, events = open_in_chromium(page_path)
    errors, dialogs, requests = events.errors, events.dialogs, events.requests

    assert page.title() == "Monitor churn-prod"
    assert "drift detected in 2 of 4 columns" in page.locator("#overview").inner_text()
    # the charts: drift share with its threshold, one overlay and sparkline per column
    assert page.locator("#drift-share polyline.series").count() == 1
    assert page.locator("#drift-share line.ref-line").count() == 1
    overlays = page.eval_on_selector_all(
        "#columns svg.overlay", "els => els.map(e => e.dataset.column)"
    )
    assert sorted(overlays) == sorted(["age", "income", "plan", HOSTILE])
    assert page.locator("#columns svg.sparkline").count() == 4
    assert page.locator("#prediction svg.overlay").count() == 1
    assert page.locator("#metric-0 line.ref-line").count() == 1  # validation accuracy
    age_bars = page.locator('#columns svg.overlay[data-column="age"] rect.bar')
    assert age_bars.count() == 40  # reference and current on the same 20 bins
    box = page.locator("#drift-share").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    # the hostile column name shows as text and runs nothing
    assert HOSTILE in page.locator("#drift-table").inner_text()

    # each row of the drift table links to its column's card
    links = page.locator("#drift-table a.column-link")
    assert links.count() == 4
    names = [links.nth(i).inner_text() for i in range(4)]
    assert names[:2] == ["age", "plan"]  # drifted first
    for i, name in enumerate(names):
        href = links.nth(i).get_attribute("href")
        assert href is not None and href.startswith("#col-")
        page.evaluate("window.scrollTo(0, 0)")
        links.nth(i).click()
        page.wait_for_function("h => location.hash === h", arg=href)
        target = page.locator(href)
        assert target.get_attribute("data-column") == name
        assert target.locator("h3").inner_text().startswith(name)
        top = page.evaluate("h => document.querySelector(h).getBoundingClientRect().top", href)
        assert abs(top) < 5 or page.evaluate(
            "innerHeight + scrollY >= document.body.scrollHeight - 2"
        ), f"{name}'s card is not scrolled into view (top {top})"
    page.screenshot(path=str(tmp_path / "monitor_report.png"), full_page=True)

    assert errors == []
    assert dialogs == []
    assert all(url.startswith("file://") for url in requests), requests
    assert (tmp_path / "monitor_report.png").stat().st_size > 10_000
