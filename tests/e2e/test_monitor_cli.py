"""``shipyard monitor`` and ``shipyard alerts`` as a user runs them, each a subprocess.

A setup script versions the breast-cancer data (a shuffled reference half), logs and
promotes a model, then writes a prediction log the way a server does: one window of
traffic like the reference, then one with three columns drifted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

_SETUP = textwrap.dedent("""
    import time, uuid
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import shipyard as sy
    from shipyard.monitoring.prediction_log import PredictionLog, PredictionRecord

    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    reference, live = frame.iloc[:400], frame.iloc[400:].reset_index(drop=True)
    sy.data.add("cancer-data", reference)
    X, y = reference.drop(columns="target"), reference["target"]
    with sy.start_run() as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
        sy.log_model(model, "model", signature=X)
    sy.register_model(run.run_id, "cancer")
    sy.promote_model("cancer", 1, "production")
    hour = 3_600_000
    start = (int(time.time() * 1000) // hour - 3) * hour
    log = PredictionLog(sy.monitor_context().log_root, flush_interval=0.05)
    drifted = live.copy()
    for column in ["mean radius", "mean texture", "worst area"]:
        drifted[column] = drifted[column] * 1.6 + drifted[column].std()
    for at, part in ((start, live), (start + hour, drifted)):
        rows = part.drop(columns="target")
        for i in range(0, len(rows), 10):
            chunk = rows.iloc[i : i + 10].reset_index(drop=True)
            log.submit(PredictionRecord(model="cancer", version=1, request_id=uuid.uuid4().hex,
                                        at_ms=at + i, latency_ms=1.0, inputs=chunk,
                                        predictions=model.predict(chunk)))
    log.close()
""")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_HOME": str(home), "SHIPYARD_CAPTURE_ENV": "false",
                "COLUMNS": "200"})  # fmt: skip
    return env


def _cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args], cwd=home.parent, env=_env(home),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("monitor-cli") / ".shipyard"
    done = subprocess.run(
        [sys.executable, "-c", _SETUP], cwd=folder.parent, env=_env(folder),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


def test_create_run_history_report_and_alerts(home: Path, tmp_path: Path) -> None:
    created = _cli(home, "monitor", "create", "cancer", "--reference", "cancer-data@1",
                   "--window", "1h", "--schedule", "*/15 * * * *")  # fmt: skip
    assert "cancer@production against cancer-data@1" in created.stdout
    assert "30 column(s)" in created.stdout

    dry = json.loads(_cli(home, "monitor", "run", "cancer", "--dry-run", "--json").stdout)
    assert dry["alerts"]["opened"] and all(a["alert_id"] == 0 for a in dry["alerts"]["opened"])
    assert json.loads(_cli(home, "alerts", "list", "--json").stdout) == []

    ran = json.loads(_cli(home, "monitor", "run", "cancer", "--json").stdout)
    assert len(ran["windows"]) == 2
    assert {"mean radius", "mean texture", "worst area"} <= set(ran["drifted_columns"])
    opened = ran["alerts"]["opened"]
    assert opened and "column drifted" in {a["rule"] for a in opened}

    listed = _cli(home, "monitor", "list").stdout
    assert "cancer@production" in listed and "*/15 * * * *" in listed
    history = _cli(home, "monitor", "history", "cancer", "--last", "1d").stdout
    assert history.count(" ok ") >= 2 or history.count("ok") >= 2
    one = json.loads(_cli(home, "monitor", "history", "cancer", "--json").stdout)
    shares = [v["value"] for v in one["values"] if v["name"] == "drift_share"]
    assert len(shares) == 2 and shares[0] == 0 and shares[1] > 0

    page = tmp_path / "report.html"
    out = tmp_path / "report.json"
    _cli(home, "monitor", "report", "cancer", "--html", str(page), "--json-out", str(out))
    html = page.read_text()
    assert "mean radius" in html and "<svg" in html and "https://" not in html
    data: dict[str, Any] = json.loads(out.read_text())
    assert data

    open_alerts = json.loads(_cli(home, "alerts", "list", "--open", "--json").stdout)
    first = open_alerts[0]["alert_id"]
    assert "acknowledged" in _cli(home, "alerts", "ack", str(first), "--note", "looking").stdout
    assert "resolved" in _cli(home, "alerts", "resolve", str(first)).stdout
    again = _cli(home, "alerts", "resolve", str(first), ok=False)
    assert again.returncode != 0 and "resolved already" in again.stderr
    shown = json.loads(_cli(home, "alerts", "show", str(first), "--json").stdout)
    assert shown["status"] == "resolved"

    audit = _cli(home, "audit", "log", "--limit", "200").stdout
    assert "alert.open" in audit and "alert.acknowledge" in audit and "monitor.create" in audit


def test_bad_input_names_the_problem(home: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: x\n    when: drift_shar > 0.3\n")
    bad = _cli(home, "monitor", "create", "m1", "--model", "cancer", "--reference",
               "cancer-data@1", "--rules", str(rules), ok=False)  # fmt: skip
    assert bad.returncode != 0 and "drift_share" in bad.stderr and "Traceback" not in bad.stderr
    cron = _cli(home, "monitor", "create", "m2", "--model", "cancer", "--reference",
                "cancer-data@1", "--schedule", "every day", ok=False)  # fmt: skip
    assert cron.returncode != 0 and "cron" in cron.stderr
    missing = _cli(home, "monitor", "run", "nope", ok=False)
    assert missing.returncode != 0 and "monitor create" in missing.stderr


def test_the_scheduler_runs_and_stops_on_sigterm(home: Path, tmp_path: Path) -> None:
    _cli(home, "monitor", "create", "ticking", "--model", "cancer", "--reference",
         "cancer-data@1", "--schedule", "@every 1s")  # fmt: skip
    log = tmp_path / "scheduler.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli.main", "monitor", "serve-scheduler",
             "--refresh", "1"], cwd=home.parent, env=_env(home), stdout=sink, stderr=sink,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                shown = json.loads(_cli(home, "monitor", "show", "ticking", "--json").stdout)
                if shown["last_run_at"]:
                    break
                time.sleep(0.5)
            assert shown["last_run_at"], log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()
    assert "scheduler stopped" in log.read_text()
