"""The end-to-end demo behind ``make demo``: train, track, search and compare, on bundled data.

Uses scikit-learn's bundled breast-cancer data set (no download) and writes to
the store in ``./.shipyard`` (or wherever ``SHIPYARD_*`` settings point), so
``shipyard runs list --experiment shipyard-demo`` shows the runs afterwards.
"""

from __future__ import annotations

import time
from typing import Any

EXPERIMENT = "shipyard-demo"


def _candidates() -> list[tuple[str, Any, dict[str, Any]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        (
            "logreg",
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)),
            {"model": "logreg", "C": 1.0},
        ),
        (
            "rf-shallow",
            RandomForestClassifier(n_estimators=100, max_depth=4, random_state=0),
            {"model": "rf", "n_estimators": 100, "max_depth": 4},
        ),
        (
            "rf-deep",
            RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0),
            {"model": "rf", "n_estimators": 200, "max_depth": 12},
        ),
        (
            "hgb",
            HistGradientBoostingClassifier(
                max_iter=150,
                learning_rate=0.1,
                early_stopping=True,
                validation_fraction=0.15,
                random_state=0,
            ),
            {"model": "hgb", "max_iter": 150, "learning_rate": 0.1},
        ),
    ]


def _data_steps(console: Any, frame: Any) -> tuple[Any, ...]:
    """Version, validate, relate and split the data; return the split and its versions."""
    from pathlib import Path

    import shipyard as sy

    version = sy.data.add("breast-cancer", frame, description="sklearn's bundled data set")
    report = sy.data.validate(version.ref, expectations="breast-cancer")
    console.print(
        f"[bold]data[/]: {version.ref} ({version.num_rows} rows x {version.num_columns} columns,"
        f" digest {version.digest[:12]}); validation "
        f"{'passed' if report.passed else 'FAILED'} ({len(report.results)} checks)"
    )
    graph = sy.data.graph(version.ref, target="target")
    ranked = sorted(
        (n for n in graph.nodes if n.mutual_information is not None),
        key=lambda n: -(n.mutual_information or 0.0),
    )[:5]
    console.print(
        "  strongest features by mutual information with the target: "
        + ", ".join(f"{n.name} ({n.mutual_information:.2f})" for n in ranked)
    )
    console.print(
        f"  {len(graph.redundant)} redundant feature pairs (e.g. "
        f"{', '.join(f'{r.drop} ~ {r.keep}' for r in graph.redundant[:3])}); "
        f"{len(graph.leakage_suspects)} leakage suspects"
    )
    report_path = Path(sy.settings().home) / "reports" / "breast-cancer.html"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(sy.data.catalog().report_html(version.ref, target="target"))
    console.print(f"  profile and relationship graph: {report_path}")
    made, leakage = sy.data.split(
        version.ref, method="stratified", target="target", test=0.25, seed=42
    )
    console.print(
        f"  split: {', '.join(f'{p}={v.ref} ({v.num_rows} rows)' for p, v in made.items())}; "
        f"leakage check {'ok' if leakage.ok else 'FAILED'}"
    )
    train = sy.data.get(made["train"].ref).to_pandas()
    test = sy.data.get(made["test"].ref).to_pandas()
    features = [c for c in train.columns if c != "target"]
    return (
        train[features],
        test[features],
        train["target"],
        test["target"],
        made["train"],
        made["test"],
    )


def _folder_steps(console: Any) -> None:
    """Version a folder of files (sklearn's bundled digits as 8x8 PGM images), change it,
    see the change, and version it again."""
    from pathlib import Path

    from sklearn.datasets import load_digits

    import shipyard as sy

    digits = load_digits()
    root = Path(sy.settings().home) / "digits"
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = root / str(label) / f"{i:04d}.pgm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"P5 8 8 16\n" + image.astype("uint8").tobytes())
    first = sy.data.add("digits", root, description="sklearn's bundled digits, one PGM each")
    (root / "0" / "0000.pgm").write_bytes(b"P5 8 8 16\n" + bytes(64))  # blank one image
    (root / "extra").mkdir(exist_ok=True)
    (root / "extra" / "note.txt").write_text("relabelled by hand\n")
    changes = sy.data.status("digits", root)
    second = sy.data.add("digits", root, description="one image blanked, a note added")
    console.print(
        f"[bold]folders[/]: {first.ref} holds {first.num_files} files (small files are packed "
        f"into a few objects); then status: {len(changes.modified)} modified "
        f"({', '.join(changes.modified)}), {len(changes.added)} added; {second.ref} stores "
        "only their bytes anew"
    )


def _training_steps(console: Any, train_v: Any, test_v: Any) -> Any:
    """Cross-validate and tune two model families with sy.train; print the leaderboard."""
    from rich.table import Table

    import shipyard as sy

    sy.set_experiment("shipyard-demo-tuning")
    started = time.perf_counter()
    result = sy.train(
        train_v, "target", models=["linear", "hist_gradient_boosting"], tune=6, cv=3,
        valid=test_v, seed=42,
    )  # fmt: skip
    board = result.leaderboard
    table = Table(
        title=f"sy.train leaderboard: {len(board)} families, 6 Optuna trials each, 3-fold CV "
        f"({time.perf_counter() - started:.1f} s)"
    )
    for column in ("rank", "model", f"CV {result.metric}", "std", "trials", "pruned"):
        table.add_column(column)
    for row in board.to_dict(orient="records"):
        table.add_row(
            str(row["rank"]), row["model"], f"{row[f'{result.metric}_mean']:.4f}",
            f"{row[f'{result.metric}_std']:.4f}", str(row["trials"]), str(row["pruned"]),
        )  # fmt: skip
    console.print(table)
    ev = result.evaluation
    if ev is not None:
        low, high = ev.confidence_intervals.get(result.metric, (float("nan"),) * 2)
        console.print(
            f"  best ({result.best.family}) refitted and evaluated once on {ev.data}: "
            f"{result.metric} {ev.metrics[result.metric]:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"accuracy {ev.metrics['accuracy']:.4f}; report: run {result.best_run_id[:8]}, "
            "evaluation/valid_report.html"
        )
    for warning in result.warnings:
        console.print(f"  warning: {warning}")
    return result


POLICY = """\
production:
  min_metrics: {{valid_roc_auc: 0.95}}
  beat_champion: {{data: {test}, metric: roc_auc, target: target, margin: 0.0}}
  validate_data: {{data: {test}}}
  signature_compatible: true
  approval: {{approvers: 1}}
"""


def _registry_steps(console: Any, train_v: Any, result: Any, test_v: Any) -> None:
    """A baseline in production; the tuned model must pass the gates to replace it."""
    from dataclasses import replace
    from pathlib import Path

    from rich.markup import escape

    import shipyard as sy
    from shipyard.governance import verify_audit_log
    from shipyard.registry import build_card

    def gates_line(gates: list[dict[str, Any]]) -> str:
        return "; ".join(
            f"{g['gate']} {'pass' if g['passed'] else 'FAIL'} ({g['detail']})" for g in gates
        )

    from sklearn.tree import DecisionTreeClassifier

    registry = sy.model_registry()
    train = sy.data.get(train_v.ref).to_pandas()
    X, y = train.drop(columns="target"), train["target"]
    with sy.start_run(name="baseline: one split") as run:
        sy.log_input(train_v, context="training")
        sy.log_param("target", "target")
        baseline = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
        sy.log_model(baseline, "model", input_example=X.head(5))
    first = sy.register_model(run.run_id, "breast-cancer", description="one-split baseline")
    sy.promote_model("breast-cancer", first.version, "production")
    columns = len((first.signature or {}).get("inputs", []))
    console.print(
        f"[bold]registry[/]: {first.ref} ({first.flavor}, {columns} input columns in its "
        "signature) registered and promoted to production (no policy yet)"
    )
    registry.set_policy("breast-cancer", POLICY.format(test=test_v.ref))
    challenger = sy.register_model(
        result.best_run_id, "breast-cancer", description=f"sy.train best: {result.best.family}"
    )
    console.print(f"  policy set; {challenger.ref} registered from the tuning job's best run")
    try:
        sy.promote_model("breast-cancer", challenger.version, "production")
    except sy.ShipyardError as exc:
        gates = exc.details.get("gates", [])
        console.print(f"  promote {challenger.ref} refused by the gates: {gates_line(gates)}")
    registry.set_role("reviewer", "approver")
    settings = sy.settings()
    sy.configure(replace(settings, user="reviewer"))
    sy.model_registry().approve(
        "breast-cancer", challenger.version, "production", comment="demo review"
    )
    sy.configure(settings)
    done = sy.promote_model("breast-cancer", challenger.version, "production")
    console.print(
        f"  reviewer approved; promote passed every gate: {gates_line(done.gates)}\n"
        f"  breast-cancer@production -> {done.version.version} (was {done.previous})"
    )
    loaded = sy.load_model("breast-cancer@production")
    example = loaded.input_example()
    console.print(
        f"  sy.load_model('breast-cancer@production'): hashes checked, "
        f"predicts {escape(str(loaded.predict(example).tolist()))} on its input example"
    )
    card_path = Path(sy.settings().home) / "reports" / "breast-cancer-card.html"
    card_path.write_text(build_card(registry, "breast-cancer@production").html)

    verified = verify_audit_log(sy.tracker().db)
    console.print(
        f"  model card: {card_path}; audit log: {verified.events} events, chain "
        f"{'intact' if verified.ok else 'BROKEN'}"
    )


def main() -> None:
    from rich.console import Console
    from rich.table import Table
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

    import shipyard as sy

    console = Console()
    frame = load_breast_cancer(as_frame=True).frame  # 30 features and "target"
    x_train, x_test, y_train, y_test, train_v, test_v = _data_steps(console, frame)
    _folder_steps(console)
    console.print(
        f"[bold]shipyard demo[/] - breast-cancer data: {len(x_train)} train rows, "
        f"{len(x_test)} test rows; store: {sy.settings().db_url}"
    )
    sy.set_experiment(EXPERIMENT)
    started = time.perf_counter()
    run_ids = []
    for name, model, params in _candidates():
        with sy.start_run(name=name, tags={"dataset": "sklearn/breast_cancer"}) as run:
            sy.log_input(train_v, context="training")
            sy.log_input(test_v, context="evaluation")
            sy.log_params({**params, "train_rows": len(x_train)})
            model.fit(x_train, y_train)
            # learning curves, one point per boosting iteration where the model exposes them
            for step, score in enumerate(getattr(model, "validation_score_", [])):
                sy.log_metric("valid_neg_log_loss", float(score), step=step)
            proba = model.predict_proba(x_test)[:, 1]
            pred = (proba >= 0.5).astype(int)
            sy.log_metrics(
                {
                    "accuracy": accuracy_score(y_test, pred),
                    "f1": f1_score(y_test, pred),
                    "roc_auc": roc_auc_score(y_test, proba),
                }
            )
            sy.log_dict(
                {
                    "labels": ["malignant", "benign"],
                    "matrix": confusion_matrix(y_test, pred).tolist(),
                },
                "confusion_matrix.json",
            )
            run_ids.append(run.run_id)

    # autolog: a plain fit is recorded without any logging code
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sy.autolog()
    auto_model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    auto_model.fit(x_train, y_train)
    auto_model.score(x_test, y_test)  # held-out score, logged to the run that trained it
    sy.autolog(disable=True)
    elapsed = time.perf_counter() - started

    best = sy.search_runs(
        "metrics.roc_auc > 0.9",
        experiment_names=[EXPERIMENT],
        order_by=["metrics.roc_auc DESC"],
        output_format="list",
    )
    table = Table(title=f"runs with roc_auc > 0.9, best first ({elapsed:.1f} s to train and log)")
    for column in ("run", "model", "accuracy", "f1", "roc_auc", "run id"):
        table.add_column(column)
    for r in best:
        assert not isinstance(r, str)
        table.add_row(
            r.name,
            r.params.get("model", ""),
            f"{r.metrics['accuracy']:.4f}",
            f"{r.metrics['f1']:.4f}",
            f"{r.metrics['roc_auc']:.4f}",
            r.run_id,
        )
    console.print(table)
    if len(best) >= 2 and not isinstance(best[0], str) and not isinstance(best[1], str):
        diff = sy.compare_runs(best[0].run_id, best[1].run_id, only_differences=True)
        console.print("[bold]best two runs, fields that differ:[/]")
        console.print(diff.to_string())
    autologged = sy.search_runs(
        "tags.estimator_name = 'Pipeline'", experiment_names=[EXPERIMENT], output_format="list"
    )
    for r in autologged:
        assert not isinstance(r, str)
        artifacts = [a.path for a in sy.list_artifacts(r.run_id)]
        console.print(
            f"autolog recorded run [bold]{r.name}[/] without logging code: "
            f"{len(r.params)} params, training_f1_score={r.metrics['training_f1_score']:.4f}, "
            f"held-out score_x_test={r.metrics['score_x_test']:.4f}, artifacts {artifacts}"
        )
    result = _training_steps(console, train_v, test_v)
    _registry_steps(console, train_v, result, test_v)
    _serving_steps(console, train_v, test_v)
    _pipeline_steps(console)
    console.print(
        "next: [cyan].venv/bin/shipyard models show breast-cancer@production[/], "
        "[cyan].venv/bin/shipyard lineage breast-cancer@production[/], "
        "[cyan].venv/bin/shipyard serve breast-cancer@production[/]"
    )


def _serving_steps(console: Any, train_v: Any, test_v: Any) -> None:
    """Serve the production model on 127.0.0.1, send it a few hundred requests, report;
    then watch it: drifted traffic, an alert, a retrained challenger, a hot swap."""
    import http.client
    import socket
    import statistics
    import threading

    import orjson
    import uvicorn

    import shipyard as sy
    from shipyard.monitoring import read_predictions
    from shipyard.serving import ServerConfig, build_server, create_app
    from shipyard.serving.server import log_root_of

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_root = log_root_of(sy.settings())
    server = build_server(sy.model_registry(), ["breast-cancer@production"],
                          ServerConfig(poll_interval=0.5), log_root=log_root)  # fmt: skip
    web = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port,
                                        log_level="warning", access_log=False))  # fmt: skip
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    while not web.started:
        time.sleep(0.05)
    rows = sy.data.get(test_v.ref).to_pandas().drop(columns="target")
    records = orjson.loads(rows.to_json(orient="records"))
    latencies, versions = [], set()
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # keep-alive

    def post(path: str, body: Any) -> tuple[int, Any]:
        client.request("POST", path, body=orjson.dumps(body),
                       headers={"Content-Type": "application/json"})  # fmt: skip
        reply = client.getresponse()
        return reply.status, orjson.loads(reply.read())

    for i in range(300):
        started = time.perf_counter()
        status, answer = post("/predict", {"records": [records[i % len(records)]]})
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"the server answered {status}: {answer}")
        versions.add(answer["model_version"])
    bad_status, bad = post("/predict", {"records": [{"mean radius": "big"}]})
    if server.prediction_log is not None:
        server.prediction_log.flush()
    cuts = statistics.quantiles(latencies, n=100)
    logged = read_predictions(log_root, "breast-cancer")
    console.print(
        f"[bold]serving[/]: breast-cancer@production (version {sorted(versions)}) on "
        f"127.0.0.1:{port}: 300 single-row requests, latency p50 {cuts[49]:.2f} ms, "
        f"p95 {cuts[94]:.2f} ms, p99 {cuts[98]:.2f} ms; a malformed request got "
        f"{bad_status} ({bad['error']['code']}); {len(logged)} rows in the "
        "prediction log"
    )
    try:
        _monitoring_steps(console, post, server, train_v, test_v)
    finally:
        client.close()
        web.should_exit = True
        thread.join(timeout=30)  # the app's shutdown flushes the prediction log


AUTO_POLICY = """\
production:
  min_metrics: {cv_roc_auc: 0.95}
  signature_compatible: true
"""
DRIFTED = ("worst area", "worst radius", "worst perimeter", "mean area", "mean radius",
           "area error")  # fmt: skip


def _monitoring_steps(
    console: Any, post: Any, server: Any, train_v: Any, test_v: Any
) -> None:  # fmt: skip
    """A monitor on the served model: clean traffic, then drifted traffic with labels, an
    alert, a challenger retrained and promoted through the gates, the server swapping."""
    import logging
    from pathlib import Path

    import orjson
    from rich.markup import escape

    import shipyard as sy
    from shipyard.monitoring.reporting import build_report

    logging.getLogger("shipyard.alerts").addHandler(logging.NullHandler())  # printed below

    sy.model_registry().set_policy("breast-cancer", AUTO_POLICY)
    sy.create_monitor(
        "breast-cancer", model="breast-cancer", reference=train_v.ref, window="1h",
        on_drift="retrain", retrain={"models": ["linear"], "cv": 3, "metric": "accuracy"},
    )  # fmt: skip
    first = sy.run_monitor("breast-cancer").run
    drift = first.evaluated_window.drift if first.evaluated_window else None
    watched = len(drift.columns) if drift is not None else 0
    drifted_now = drift.drifted_columns if drift is not None else []
    console.print(
        f"[bold]monitoring[/]: monitor breast-cancer watches {watched} columns against "
        f"{train_v.ref}; the 300 requests so far: {len(drifted_now)} drifted column(s), "
        f"{len(first.alerts.opened)} alert(s)"
    )
    # the world changes: the lab's new scanner reports sizes 40% larger
    test = sy.data.get(test_v.ref).to_pandas()
    sent = 0
    for start in range(0, len(test), 10):  # each held-out row once, in requests of ten
        chunk = test.iloc[start : start + 10].copy()
        for column in DRIFTED:
            chunk[column] = chunk[column] * 1.4
        body = orjson.loads(chunk.drop(columns="target").to_json(orient="records"))
        status, answer = post("/predict", {"records": body})
        if status != 200:
            raise RuntimeError(f"the server answered {status}: {answer}")
        post("/feedback", {"request_id": answer["request_id"],
                           "labels": chunk["target"].tolist()})  # fmt: skip
        sent += len(chunk)
    if server.prediction_log is not None:
        server.prediction_log.flush()
    result = sy.run_monitor("breast-cancer")
    window = result.run.evaluated_window
    found = window.drift.drifted_columns if window is not None and window.drift else []
    console.print(
        f"  {sent} rows with six size columns 40% larger (a new scanner) sent with their "
        f"labels; drift found in {len(found)} column(s): {', '.join(found)}"
    )
    opened = result.run.alerts.opened
    if opened:
        rules = sorted({f"{a.rule} ({a.severity})" for a in opened})
        console.print(f"  {len(opened)} alert(s) opened: {escape(', '.join(rules))}; "
                      "`shipyard alerts list --open` shows them")  # fmt: skip
    for outcome in result.actions:
        scores = outcome.details.get("scores", {})
        console.print(
            f"  retrain for alert {outcome.alert_id}: {outcome.status}: {outcome.message}"
            + (f" (holdout {outcome.details.get('metric')}: champion "
               f"{scores['champion']:.3f}, challenger {scores['challenger']:.3f})"
               if scores else "")
        )  # fmt: skip
    deadline = time.monotonic() + 15
    served = server.slot(None).current.version.version
    target = sy.get_model_version("breast-cancer@production").version
    while served != target and time.monotonic() < deadline:
        time.sleep(0.2)
        served = server.slot(None).current.version.version
    status, answer = post("/predict", {"records": [orjson.loads(
        test.drop(columns="target").head(1).to_json(orient="records"))[0]]})  # fmt: skip
    console.print(
        f"  the server now answers with breast-cancer version {answer['model_version']} "
        "(hot-swapped, no restart)"
    )
    report_path = Path(sy.settings().home) / "reports" / "breast-cancer-monitor.html"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(build_report(sy.monitor_context(), "breast-cancer").html())
    console.print(f"  monitor report: {report_path}")


PIPELINE = """\
pipeline: cancer
params: {test_size: 0.25}
steps:
  ingest:
    run: "python ingest.py"
    deps: [ingest.py]
    outs: [data/cancer.csv]
    dataset: cancer-raw
  split:
    uses: shipyard.split
    dataset: cancer-raw@latest
    params: [test_size]
    with: {target: target, method: stratified}
  train:
    uses: shipyard.train
    dataset: cancer-raw@train
    needs: [split]
    register: cancer-pipeline
    with: {target: target, models: [linear], cv: 3}
  report:
    run: "python report.py ${steps.train.run_id}"
    deps: [report.py]
    needs: [train]
    outs: [report.txt]
"""
INGEST = """\
from pathlib import Path
from sklearn.datasets import load_breast_cancer
Path("data").mkdir(exist_ok=True)
load_breast_cancer(as_frame=True).frame.to_csv("data/cancer.csv", index=False)
"""
REPORT = """\
import sys
import shipyard as sy
run = sy.get_run(sys.argv[1])
best = {k: round(v, 4) for k, v in run.metrics.items() if k.startswith("best_cv_")}
open("report.txt", "w").write(f"training run {run.run_id}: {best}\\n")
print(f"report: {best}")
"""


def _pipeline_steps(console: Any) -> None:
    """The same lifecycle as a declared pipeline: run it, then run it again (all cached)."""
    from pathlib import Path

    import shipyard as sy

    project = Path(sy.settings().home) / "pipeline-demo"
    project.mkdir(parents=True, exist_ok=True)
    (project / "shipyard.yaml").write_text(PIPELINE)
    (project / "ingest.py").write_text(INGEST)
    (project / "report.py").write_text(REPORT)
    for attempt in ("first run", "second run"):
        started = time.perf_counter()
        result = sy.run_pipeline(project / "shipyard.yaml")
        states = ", ".join(f"{s.name} {s.status}" for s in result.steps)
        console.print(
            f"[bold]pipeline[/] cancer, {attempt}: {result.status} in "
            f"{time.perf_counter() - started:.1f} s ({states})"
        )
    console.print(f"  in {project}: `shipyard pipeline status`, `dag`, `history` show it")


if __name__ == "__main__":
    main()
