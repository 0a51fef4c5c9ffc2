"""The data report opened in headless Chromium: no errors, no network, the plots all there.

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

from shipyard.data.profiling import profile
from shipyard.data.relationships import relationship_graph
from shipyard.data.report_html import render_report

HOSTILE = "<script>alert(1)</script>"


def report_frame(n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=n)
    y = x1 + 0.7 * rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "x1": x1,
            "x2": 2 * x1 + rng.normal(scale=1e-3, size=n),
            "income": rng.lognormal(10, 1, size=n),
            "noise": rng.normal(size=n),
            "leak": y + rng.normal(scale=0.01, size=n),
            "color": color,
            "active": rng.random(n) > 0.4,
            "signup": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D"),
            HOSTILE: np.where(x1 > 0, "<b>big</b>", "small"),
            "y": y,
        }
    )


def test_report_renders_in_headless_chromium(
    tmp_path: Path, open_in_chromium: Callable[[Path], tuple[Any, Any]]
) -> None:
    df = report_frame()
    prof = profile(df)
    graph = relationship_graph(df, target="y")
    page_path = tmp_path / "data_report.html"
    page_path.write_text(render_report(prof, graph, title="customers report"), encoding="utf-8")
    numeric = [c.name for c in prof.columns if c.kind == "numeric"]

    page, events = open_in_chromium(page_path)
    errors, dialogs, requests = events.errors, events.dialogs, events.requests

    assert page.title() == "customers report"
    nodes = page.eval_on_selector_all(
        "#relationship-graph g.node", "els => els.map(e => e.dataset.name)"
    )
    assert sorted(nodes) == sorted(df.columns)
    histograms = page.eval_on_selector_all("svg.histogram", "els => els.map(e => e.dataset.column)")
    assert set(numeric) <= set(histograms)
    assert "signup" in histograms  # the datetime column has one over time
    for name in numeric:
        bars = page.eval_on_selector_all(
            "svg.histogram",
            "(els, n) => els.filter(e => e.dataset.column === n)[0]"
            ".querySelectorAll('rect.bar').length",
            name,
        )
        assert bars == prof.bins
    bar_charts = page.eval_on_selector_all("svg.bars", "els => els.length")
    assert bar_charts == sum(1 for c in prof.columns if c.top)
    assert page.locator("#association-heatmap rect.cell").count() > 0
    edges = page.locator("#relationship-graph g.edge").count()
    assert edges == len(graph.strong_edges(0.5))
    # the hostile column name shows as text and runs nothing
    assert HOSTILE in page.locator(f"#col-{df.columns.get_loc(HOSTILE)} h3").inner_text()
    embedded = page.evaluate("JSON.parse(document.getElementById('shipyard-data').textContent)")
    assert embedded["profile"]["n_rows"] == len(df)
    assert embedded["graph"]["target"] == "y"
    assert embedded["graph"] == graph.to_dict()  # JS turns 0.0 into 0: compare values
    page.screenshot(path=str(tmp_path / "data_report.png"), full_page=True)

    assert errors == []
    assert dialogs == []
    assert all(url.startswith("file://") for url in requests), requests
    assert (tmp_path / "data_report.png").stat().st_size > 10_000
