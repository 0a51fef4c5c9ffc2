"""The self-contained HTML evaluation report and its atomic writer."""

from __future__ import annotations

import dataclasses
import doctest
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.training import report
from shipyard.training.plots import Plot, plots_for, residuals_plot
from shipyard.training.report import render_evaluation_report, write_report

HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    """What a reader of the page sees: sections, tables, scripts, links."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.tables: dict[str, list[tuple[dict[str, str | None], list[str]]]] = {}
        self.text: list[str] = []
        self.meta: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._script: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "action") and v]
        if tag == "meta":
            self.meta.append(a)
        if tag == "section":
            self.sections.append(str(a.get("id")))
        if tag == "script":
            self._script = []
        if tag == "table":
            self._table = str(a.get("id"))
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self.tables[self._table].append((a, []))
        if tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1][1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> list[list[str]]:
        return [cells for _, cells in self.tables[table]]


def classification_plots() -> list[Plot]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    proba = np.clip(0.5 * y + rng.uniform(0, 0.5, size=300), 0, 1)
    return plots_for("binary", y, (proba > 0.5).astype(int), proba)


@pytest.fixture(scope="module")
def inputs() -> dict[str, Any]:
    per_class = pd.DataFrame(
        {"precision": [0.91, 0.62], "recall": [0.88, 0.7], "support": [180, 120]},
        index=pd.Index(["stay", "churn"], name="class"),
    )
    slices = pd.DataFrame({"region": ["north", HOSTILE], HOSTILE: [0.8, 0.75], "rows": [150, 150]})
    leaderboard = pd.DataFrame(
        {"model": ["lightgbm", "random_forest", "logistic"], "roc_auc": [0.93, 0.91, 0.87]}
    )
    return {
        "title": f"Evaluation {HOSTILE}",
        "metrics": {"accuracy": 0.91234, "roc_auc": 0.95, "log_loss": 0.23},
        "confidence_intervals": {"accuracy": (0.88, 0.93), "roc_auc": (0.93, 0.97)},
        "per_class": per_class,
        "slices": slices,
        "leaderboard": leaderboard,
        "plots": classification_plots(),
        "warnings": ["Target leakage suspected in column <b>id</b>", "Only 300 test rows"],
        "context": {
            "run id": "run-7f3a",
            "model": "lightgbm",
            "dataset": "customers@3",
            HOSTILE: "x",
        },
    }


@pytest.fixture(scope="module")
def page_text(inputs: dict[str, Any]) -> str:
    return render_evaluation_report(**inputs)


@pytest.fixture(scope="module")
def page(page_text: str) -> Page:
    return Page(page_text)


def test_sections_come_in_order(page: Page) -> None:
    assert page.sections == [
        "context", "warnings", "metrics", "per-class", "slices", "leaderboard", "plots"
    ]  # fmt: skip
    nav = [u for u in page.urls if u.startswith("#")]
    assert nav[1:] == [f"#{s}" for s in page.sections]  # nav[0] is the warning badge


def test_the_page_loads_nothing_from_outside(page: Page, page_text: str) -> None:
    assert page.urls and all(u.startswith("#") for u in page.urls)
    assert not any(re.match(r"(https?:)?//", u) for u in page.urls)
    assert "link" not in page.tags and "iframe" not in page.tags
    csp = next(m for m in page.meta if m.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in str(csp["content"])
    assert page_text.startswith("<!DOCTYPE html>")


def test_plotly_is_inlined_once_with_one_small_script_per_plot(
    page: Page, inputs: dict[str, Any]
) -> None:
    plots = inputs["plots"]
    assert len(page.scripts) == 1 + len(plots)
    bundles = [s for s in page.scripts if len(s) > 1_000_000]
    assert len(bundles) == 1 and page.scripts[0] is bundles[0]  # in <head>, before the plots
    assert all(len(s) < 100_000 and "Plotly.newPlot" in s for s in page.scripts[1:])
    for plot in plots:
        assert plot.div_id in page.ids


def test_metrics_show_values_and_confidence_intervals(page: Page) -> None:
    rows = {r[0]: r[1:] for r in page.rows("metrics-table")[1:]}
    assert rows["accuracy"] == ["0.9123", "0.8800", "0.9300"]
    assert rows["roc_auc"] == ["0.9500", "0.9300", "0.9700"]
    assert rows["log_loss"] == ["0.2300", "\u2014", "\u2014"]
    cells = [a for a, _ in page.tables["metrics-table"]]
    assert len(cells) == 4


def test_exact_values_are_kept_in_data_attributes(page_text: str) -> None:
    assert 'data-value="0.91234"' in page_text


def test_tables_show_per_class_slices_and_the_best_model(page: Page) -> None:
    assert page.rows("per-class-table") == [
        ["class", "precision", "recall", "support"],
        ["stay", "0.9100", "0.8800", "180"],
        ["churn", "0.6200", "0.7000", "120"],
    ]
    assert page.rows("slices-table")[0] == ["region", HOSTILE, "rows"]  # the index is not shown
    board = page.tables["leaderboard-table"]
    assert [cells for _, cells in board][1] == ["lightgbm", "0.9300"]
    highlighted = [cells[0] for attrs, cells in board if attrs.get("class") == "best"]
    assert highlighted == ["lightgbm"]


def test_context_and_warnings_are_shown(page: Page) -> None:
    context = dict(r for r in page.rows("context-table") if len(r) == 2)
    assert context["run id"] == "run-7f3a" and context["dataset"] == "customers@3"
    text = "".join(page.text)
    assert "Target leakage suspected in column <b>id</b>" in text  # as text, not bold
    assert "Warnings (2)" in text and "2 warnings" in text


def test_hostile_strings_are_escaped_everywhere(page: Page, page_text: str) -> None:
    assert HOSTILE not in page_text
    assert "<b>id</b>" not in page_text
    text = "".join(page.text)
    assert text.count(HOSTILE) >= 5  # title, h1, slices header and cell, context key
    assert page.rows("slices-table")[2][0] == HOSTILE
    assert "b" not in page.tags


def test_sections_without_input_are_left_out_and_no_plots_means_no_script() -> None:
    text = render_evaluation_report(title="t", metrics={"rmse": 1234.5678})
    page = Page(text)
    assert page.sections == ["context", "warnings", "metrics"]
    assert page.scripts == [] and "Plotly" not in text
    assert page.rows("metrics-table")[1] == ["rmse", "1,234.6", "\u2014", "\u2014"]
    assert "No warnings." in "".join(page.text)


def test_long_tables_are_cut_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_TABLE_ROWS", 5)
    slices = pd.DataFrame({"segment": [f"s{i}" for i in range(12)], "mae": np.arange(12) / 7})
    page = Page(render_evaluation_report(title="t", metrics={}, slices=slices))
    assert len(page.rows("slices-table")) == 1 + 5
    assert "First 5 of 12 rows shown." in "".join(page.text)


def test_bad_inputs_are_refused_with_the_reason() -> None:
    plot = residuals_plot([1.0, 2.0], [1.5, 2.5])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"metrics": {"acc": "high"}}, "metric 'acc' must be a number"),
        ({"metrics": {"acc": 0.9}, "confidence_intervals": {"acc": (0.95, 0.85)}}, "low 0.95"),
        ({"metrics": {}, "confidence_intervals": {"acc": 0.9}}, r"\(low, high\) pair"),
        ({"metrics": {}, "per_class": [[1, 2]]}, "per_class must be a pandas DataFrame"),
        ({"metrics": {}, "plots": [plot, plot]}, r"two plots are named 'residuals'.*replace"),
        ({"metrics": {}, "warnings": "one warning"}, "warnings must be a sequence"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            render_evaluation_report(title="t", **kwargs)
    renamed = dataclasses.replace(plot, name="residuals_2")
    assert (
        len(Page(render_evaluation_report(title="t", metrics={}, plots=[plot, renamed])).scripts)
        == 3
    )


def test_plots_without_plotly_name_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    plot = residuals_plot([1.0, 2.0], [1.5, 2.5])
    for key in [k for k in sys.modules if k == "plotly" or k.startswith("plotly.")]:
        monkeypatch.setitem(sys.modules, key, None)
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(InvalidStateError, match=re.escape("pip install 'shipyard[plots]'")):
        render_evaluation_report(title="t", metrics={}, plots=[plot])
    assert "<table" in render_evaluation_report(title="t", metrics={"a": 1.0})


def test_write_report_replaces_the_file_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "reports" / "eval.html"
    assert write_report(target, "<p>one</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>one</p>"
    write_report(target, "<p>two \u2713</p>")
    assert target.read_text(encoding="utf-8") == "<p>two \u2713</p>"

    def broken_replace(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, "<p>three</p>")
    assert target.read_text(encoding="utf-8") == "<p>two \u2713</p>"
    assert os.listdir(target.parent) == ["eval.html"]  # no temporary file left behind
    with pytest.raises(InvalidInputError, match="is a folder"):
        write_report(tmp_path, "<p/>")


def test_written_report_round_trips(tmp_path: Path, page_text: str) -> None:
    path = write_report(tmp_path / "eval.html", page_text)
    assert path.read_text(encoding="utf-8") == page_text


def test_docstring_examples_run() -> None:
    result = doctest.testmod(report, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0
