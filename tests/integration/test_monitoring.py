"""Monitors on a real store (SQLite and PostgreSQL): windows from the prediction log, drift
and quality, alerts that open, de-duplicate and resolve, webhooks, the retrain loop through
the promotion gates, dry runs, the scheduler and the server's drift gauges."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from shipyard.monitoring.prediction_log import FeedbackRecord, PredictionLog, PredictionRecord

HOUR = 3_600_000
T0 = (int(time.time() * 1000) // HOUR - 6) * HOUR  # six hours ago, on the hour
DRIFTED = ["mean radius", "mean texture", "worst area"]


def _frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture
def served(sy: Any) -> tuple[Any, pd.DataFrame, Any]:
    """cancer@production trained on the first 400 rows (cancer-data@1, the reference);
    the remaining 169 rows are live traffic."""
    frame = _frame().sample(frac=1.0, random_state=0).reset_index(drop=True)  # i.i.d. halves
    reference, live = frame.iloc[:400], frame.iloc[400:].reset_index(drop=True)
    sy.data.add("cancer-data", reference)
    X, y = reference.drop(columns="target"), reference["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with sy.start_run(name="baseline") as run:
        model.fit(X, y)
        sy.log_metric("valid_accuracy", 0.95)
        sy.log_model(model, "model", signature=X)
    sy.register_model(run.run_id, "cancer")
    sy.promote_model("cancer", 1, "production")
    return sy, live, model


def _send(sy: Any, frame: pd.DataFrame, model: Any, *, at_ms: int, labels: bool = False,
          per_request: int = 10) -> None:  # fmt: skip
    """Log ``frame`` as requests of ``per_request`` rows at ``at_ms`` (and their labels)."""
    log = PredictionLog(sy.monitor_context().log_root, flush_interval=0.05)
    X = frame.drop(columns="target")
    for start in range(0, len(frame), per_request):
        rows = X.iloc[start : start + per_request].reset_index(drop=True)
        request_id = uuid.uuid4().hex
        log.submit(PredictionRecord(
            model="cancer", version=1, request_id=request_id, at_ms=at_ms + start, latency_ms=1.0,
            inputs=rows, predictions=model.predict(rows),
            probabilities=model.predict_proba(rows), classes=[0, 1],
        ))  # fmt: skip
        if labels:
            truth = frame["target"].iloc[start : start + per_request].tolist()
            log.submit(FeedbackRecord(model="cancer", request_id=request_id,
                                      at_ms=at_ms + HOUR // 2, labels=truth))  # fmt: skip
    log.close()


def _drifted(live: pd.DataFrame) -> pd.DataFrame:
    out = live.copy()
    for column in DRIFTED:
        out[column] = out[column] * 1.6 + out[column].std()
    return out


def test_a_monitor_flags_drifted_columns_opens_one_alert_and_resolves_it(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")

    _send(sy, live, model, at_ms=T0)  # the same population as the reference
    run = sy.run_monitor("cancer").run
    assert run.evaluated_window is not None
    assert run.evaluated_window.window.status == "ok"
    assert run.evaluated_window.drift.drifted_columns == []
    assert run.alerts.opened == ()

    _send(sy, _drifted(live), model, at_ms=T0 + HOUR)
    run = sy.run_monitor("cancer", ).run
    found = run.evaluated_window.drift.drifted_columns
    assert set(DRIFTED) <= set(found)
    assert len(found) <= len(DRIFTED) + 1  # at most one column swept along by correlation
    opened = {a.rule for a in run.alerts.opened}
    assert "column drifted" in opened or any("drift" in r for r in opened)
    open_ids = {a.alert_id for a in sy.monitor_context().store.list_alerts(status="active")}
    assert open_ids

    again = sy.run_monitor("cancer").run  # the same window again: nothing new opens
    assert again.alerts.opened == ()
    assert {a.alert_id for a in again.alerts.continuing} == open_ids
    assert all(a.count == 2 for a in again.alerts.continuing)

    _send(sy, live, model, at_ms=T0 + 2 * HOUR)  # back to normal
    cleared = sy.run_monitor("cancer").run
    assert {a.alert_id for a in cleared.alerts.resolved} == open_ids
    assert sy.monitor_context().store.list_alerts(status="active") == []

    store = sy.monitor_context().store
    history = store.history("cancer", names=["drift_share"])
    shares = [v for _, column, _, v in history if column == ""]
    assert len(shares) == 3 and shares[1] > 0 and shares[0] == shares[2] == 0
    actions = [e.action for e in __import__("shipyard.governance", fromlist=["audit_events"])
               .audit_events(store.db, limit=100)]  # fmt: skip
    assert "alert.open" in actions and "alert.resolve" in actions and "monitor.create" in actions


def test_no_traffic_and_too_little_traffic_are_not_enough_data(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    run = sy.run_monitor("cancer").run
    assert run.evaluated_window is None and run.alerts.opened == ()
    _send(sy, live.head(5), model, at_ms=T0)
    run = sy.run_monitor("cancer").run
    assert run.evaluated_window is None
    assert [w.window.status for w in run.windows][-1] in ("not_enough_data", "no_rows")


def test_bad_monitor_definitions_are_refused_with_the_fix(served: Any) -> None:
    sy, live, _model = served
    sy.data.add("other", live.drop(columns=["mean radius", "worst area"]))
    with pytest.raises(SchemaMismatchError, match="mean radius"):
        sy.create_monitor("bad", model="cancer", reference="other@1")
    with pytest.raises(InvalidInputError, match="duration"):
        sy.create_monitor("bad", model="cancer", reference="cancer-data@1", window="soon")
    with pytest.raises(InvalidInputError, match="cron"):
        sy.create_monitor("bad", model="cancer", reference="cancer-data@1", schedule="* * *")
    with pytest.raises(InvalidInputError, match="metric"):
        sy.create_monitor("bad", model="cancer", reference="cancer-data@1",
                          rules="rules:\n  - name: x\n    when: dirft_share > 0.1\n")  # fmt: skip
    with pytest.raises(NotFoundError):
        sy.create_monitor("bad", model="cancer", alias="staging", reference="cancer-data@1")
    assert sy.monitor_context().store.list_monitors() == []


def test_a_dry_run_stores_nothing_and_says_what_would_open(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    _send(sy, _drifted(live), model, at_ms=T0)
    result = sy.run_monitor("cancer", dry_run=True)
    assert result.run.alerts.opened and all(a.alert_id == 0 for a in result.run.alerts.opened)
    store = sy.monitor_context().store
    assert store.windows("cancer") == [] and store.list_alerts() == []


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()


def test_alerts_reach_a_webhook(served: Any, receiver: tuple[str, list[Any]]) -> None:
    sy, live, model = served
    url, received = receiver
    rules = (
        "rules:\n"
        "  - name: income drift\n    when: drifted\n    column: mean radius\n"
        "    severity: critical\n"
        f"notify:\n  - webhook: {url}\n"
    )
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      rules=rules)  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0)
    run = sy.run_monitor("cancer").run
    (alert,) = run.alerts.opened
    assert received and received[0]["event"] == "opened"
    assert received[0]["alert_id"] == alert.alert_id
    assert received[0]["column"] == "mean radius" and received[0]["severity"] == "critical"


def test_drift_with_labels_retrains_a_challenger_and_promotes_it_through_the_gates(
    served: Any,
) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain", retrain={"models": ["linear"], "cv": 3})  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0, labels=True)
    result = sy.run_monitor("cancer")
    (outcome,) = result.actions
    assert outcome.status in ("promoted", "refused"), outcome.message
    details = outcome.details
    assert details["champion"] == "cancer@1" and details["challenger"] == "cancer@2"
    assert details["dataset"] == "cancer-data@2"
    assert set(details["scores"]) == {"champion", "challenger"}
    made = sy.data.get("cancer-data@2").version
    assert made.parents == ("cancer-data@1",)
    added = made.num_rows - 400
    assert added == details["recent_rows"] - details["holdout_rows"]  # the holdout stays out
    assert int(made.tags["traffic_until_ms"]) < T0 + len(live)  # a later retrain starts after
    version = sy.get_model_version("cancer@2")
    assert version.tags["retrain_alert"] == str(outcome.alert_id)
    alert = sy.monitor_context().store.get_alert(outcome.alert_id)
    assert alert.action_status == outcome.status
    from shipyard.governance import audit_events

    events = audit_events(sy.monitor_context().store.db, limit=200)
    recorded = [e for e in events if e.action == f"alert.action.{outcome.status}"]
    assert recorded and recorded[0].after["alert"] == outcome.alert_id
    if outcome.status == "promoted":
        assert sy.get_model_version("cancer@production").version == 2
        assert sy.monitor_context().store.get_monitor("cancer").reference == "cancer-data@2"


def test_a_retrain_refused_by_the_gates_leaves_the_champion(served: Any, tmp_path: Any) -> None:
    sy, live, model = served
    sy.model_registry().set_policy("cancer", {"production": {"min_metrics": {"valid_auc": 2}}})
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain", retrain={"models": ["linear"], "cv": 3})  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0, labels=True)
    (outcome,) = sy.run_monitor("cancer").actions
    assert outcome.status == "refused"
    assert sy.get_model_version("cancer@production").version == 1
    assert sy.monitor_context().store.get_monitor("cancer").reference == "cancer-data@1"


def test_the_scheduler_runs_scheduled_monitors_and_survives_a_broken_one(served: Any) -> None:
    from shipyard.pipelines.scheduler import Scheduler
    from shipyard.pipelines.schedules import monitor_jobs

    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", schedule="@every 1s")
    sy.create_monitor("broken", model="cancer", reference="cancer-data@1", schedule="@every 1s")
    ctx = sy.monitor_context()
    _send(sy, live, model, at_ms=int(time.time() * 1000))
    broken = ctx.store.get_monitor("broken")
    ctx.store.create_monitor("broken", model="gone", alias="production",
                             reference=broken.reference, window_s=3600,
                             schedule="@every 1s", spec=broken.spec, replace=True)  # fmt: skip
    scheduler = Scheduler(lambda: monitor_jobs(ctx), refresh_s=60)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {s.name: s for s in scheduler.states()}
        if states.get("monitor:cancer") and states["monitor:cancer"].runs >= 2 and (
            states.get("monitor:broken") and states["monitor:broken"].failures >= 2
        ):
            break
        time.sleep(0.2)
    stop.set()
    thread.join(30)
    states = {s.name: s for s in scheduler.states()}
    assert states["monitor:cancer"].runs >= 2 and states["monitor:cancer"].failures == 0
    assert states["monitor:broken"].failures >= 2
    assert "gone" in states["monitor:broken"].last_error
    assert ctx.store.get_monitor("cancer").last_status == "ok"
    assert ctx.store.get_monitor("broken").last_status == "failed"


def test_the_server_exposes_drift_gauges(served: Any) -> None:
    import httpx

    from shipyard.serving.app import ServerConfig, create_app
    from shipyard.serving.server import build_server

    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    _send(sy, _drifted(live), model, at_ms=T0)
    sy.run_monitor("cancer")
    server = build_server(sy.model_registry(), ["cancer@production"], ServerConfig(),
                          log_root=None)  # fmt: skip
    app = create_app(server)

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/metrics")).text

    import asyncio

    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(asyncio.run(scrape()))
        for sample in family.samples
    }
    labels = (("model", "cancer"), ("monitor", "cancer"))
    assert samples[("shipyard_monitor_drift_share", labels)] > 0
    radius = tuple(sorted((*labels, ("column", "mean radius"))))
    assert samples[("shipyard_monitor_column_drifted", radius)] == 1.0
    assert samples[("shipyard_monitor_column_drift_distance", radius)] > 0.1
    warning = (("monitor", "cancer"), ("severity", "warning"))
    assert samples[("shipyard_monitor_alerts_open", warning)] >= 1


def test_late_labels_update_the_window_of_their_predictions(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    _send(sy, live, model, at_ms=T0)
    now = T0 + 3 * HOUR
    from shipyard.pipelines.loop import run_monitor

    ctx = sy.monitor_context()
    first = run_monitor(ctx, "cancer", now=now).run
    assert first.windows[0].window.n_labelled == 0 and first.windows[0].performance == {}
    # labels for every request arrive two hours later
    log = PredictionLog(ctx.log_root, flush_interval=0.05)
    from shipyard.monitoring import read_predictions

    predictions = read_predictions(ctx.log_root, "cancer")  # every file the writer made
    features = list(live.columns[:-1])
    for request_id, group in predictions.groupby("sy_request_id", sort=False):
        rows = group.sort_values("sy_row")  # the labels the model gave: accuracy must be 1
        labels = np.asarray(model.predict(rows[features])).tolist()
        log.submit(FeedbackRecord(model="cancer", request_id=str(request_id), at_ms=now,
                                  labels=labels))  # fmt: skip
    log.close()
    second = run_monitor(ctx, "cancer", now=now + HOUR).run
    updated = [w for w in second.windows if w.window.start_ms == T0]
    assert updated and updated[0].window.n_labelled == len(live)
    assert updated[0].performance["accuracy"] == pytest.approx(1.0)


def test_a_column_that_stopped_arriving_is_a_quality_alert_not_a_crash(served: Any) -> None:
    sy, live, _model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    broken = live.copy()
    broken["mean texture"] = np.nan  # an upstream join lost the column
    log = PredictionLog(sy.monitor_context().log_root, flush_interval=0.05)
    X = broken.drop(columns="target")
    for start in range(0, len(X), 10):
        rows = X.iloc[start : start + 10].reset_index(drop=True)
        log.submit(PredictionRecord(
            model="cancer", version=1, request_id=uuid.uuid4().hex, at_ms=T0 + start,
            latency_ms=1.0, inputs=rows, predictions=np.zeros(len(rows), dtype=int),
        ))  # fmt: skip
    log.close()
    run = sy.run_monitor("cancer").run
    window = run.evaluated_window
    assert window is not None and window.window.status == "ok"
    texture = window.drift.column("mean texture")
    assert texture.status == "all_missing" and not texture.drifted
    assert window.quality.column("mean texture").missing_rate == 1.0
    assert window.observations.columns["mean texture"]["missing_rate"] == 1.0
    rules = {(a.rule, a.column) for a in run.alerts.opened}
    assert ("missing values", "mean texture") in rules


def test_dropped_predictions_alert_while_drops_grow_and_resolve_when_they_stop(
    served: Any,
) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    ctx = sy.monitor_context()
    status = ctx.log_root / "predictions" / "_status" / "123-abc.json"

    def server_dropped(total: int) -> None:  # what a server's writer reports
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(json.dumps({"pid": 123, "dropped": total, "models": ["cancer"]}))

    _send(sy, live, model, at_ms=T0)
    server_dropped(7)
    run = sy.run_monitor("cancer").run
    assert run.evaluated_window.observations.dataset["prediction_log_drops"] == 7
    assert [a.rule for a in run.alerts.opened] == ["dropped predictions"]
    _send(sy, live, model, at_ms=T0 + HOUR)  # no new drops since
    later = sy.run_monitor("cancer").run
    assert later.evaluated_window.observations.dataset["prediction_log_drops"] == 0
    assert [a.rule for a in later.alerts.resolved] == ["dropped predictions"]


def test_a_pending_action_is_claimed_by_one_process_only(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain")  # fmt: skip
    ctx = sy.monitor_context()
    _send(sy, _drifted(live), model, at_ms=T0)
    from shipyard.monitoring.monitor import evaluate_monitor

    opened = evaluate_monitor(ctx, "cancer").alerts.opened
    first = opened[0].alert_id
    assert ctx.store.get_alert(first).action_status == "pending"
    assert ctx.store.claim_action(first) is True
    assert ctx.store.claim_action(first) is False  # the second scheduler backs off
    assert ctx.store.get_alert(first).action_status == "running"


_RETRAIN_SCRIPT = """
import os
from sklearn.linear_model import LogisticRegression
import shipyard as sy

data = sy.data.get(os.environ["SHIPYARD_RETRAIN_DATA"])
frame = data.to_pandas()
target = os.environ["SHIPYARD_RETRAIN_TARGET"]
X, y = frame.drop(columns=[target]), frame[target]
with sy.start_run(name="my retrain") as run:
    sy.log_input(data, context="training")
    sy.log_model(LogisticRegression(max_iter=5000).fit(X, y), "model", signature=X)
sy.register_model(run.run_id, os.environ["SHIPYARD_RETRAIN_MODEL"])
"""


def test_a_retrain_command_of_your_own_makes_the_challenger(
    served: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    sy, live, model = served
    settings = sy.settings()
    monkeypatch.setenv("SHIPYARD_HOME", settings.home)  # the command's store is ours
    monkeypatch.setenv("SHIPYARD_DB_URL", settings.db_url)
    script = tmp_path / "retrain.py"
    script.write_text(_RETRAIN_SCRIPT)
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain",
                      retrain={"command": f"{sys.executable} {script}"})  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0, labels=True)
    (outcome,) = sy.run_monitor("cancer").actions
    assert outcome.status in ("promoted", "refused"), outcome.message
    assert outcome.details["challenger"] == "cancer@2"
    run_id = sy.get_model_version("cancer@2").run_id
    assert [v.ref for v, _ in sy.get_run_inputs(run_id)] == ["cancer-data@2"]


def test_a_failing_retrain_command_is_recorded_on_the_alert(served: Any, tmp_path: Any) -> None:
    import sys

    sy, live, model = served
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('no GPU here')\n")
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain",
                      retrain={"command": f"{sys.executable} {broken}"})  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0, labels=True)
    (outcome,) = sy.run_monitor("cancer").actions
    assert outcome.status == "failed" and "no GPU here" in outcome.message
    alert = sy.monitor_context().store.get_alert(outcome.alert_id)
    assert alert.action_status == "failed"
    assert sy.get_model_version("cancer@production").version == 1


def test_redefining_the_window_length_starts_a_fresh_history(served: Any) -> None:
    sy, live, model = served
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h")
    _send(sy, live, model, at_ms=T0)
    sy.run_monitor("cancer")
    store = sy.monitor_context().store
    assert len(store.windows("cancer")) == 1
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      target="target", replace=True)  # same windows: history kept  # fmt: skip
    assert len(store.windows("cancer")) == 1
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="30m",
                      replace=True)  # fmt: skip
    assert store.windows("cancer") == []  # 1 h windows do not line up with 30 min ones


RETRAIN_PIPELINE = """
pipeline: retrain
steps:
  train:
    uses: shipyard.train
    dataset: cancer-data@latest
    register: cancer
    with: {target: target, models: [linear], cv: 3}
"""


def test_the_retrain_action_can_run_a_pipeline(served: Any, tmp_path: Any) -> None:
    sy, live, model = served
    spec = tmp_path / "retrain" / "shipyard.yaml"
    spec.parent.mkdir()
    spec.write_text(RETRAIN_PIPELINE)
    sy.create_monitor("cancer", model="cancer", reference="cancer-data@1", window="1h",
                      on_drift="retrain", retrain={"pipeline": str(spec)})  # fmt: skip
    _send(sy, _drifted(live), model, at_ms=T0, labels=True)
    (outcome,) = sy.run_monitor("cancer").actions
    assert outcome.status in ("promoted", "refused"), outcome.message
    assert outcome.details["challenger"] == "cancer@2"
    pipeline_run = sy.get_run(outcome.details["pipeline_run"])
    assert pipeline_run.tags["sy.pipeline"] == "retrain"
    # the pipeline's train step read the new dataset version the loop made
    train_run = sy.get_run(sy.get_model_version("cancer@2").run_id).parent_run_id
    assert [v.ref for v, _ in sy.get_run_inputs(train_run)] == ["cancer-data@2"]
