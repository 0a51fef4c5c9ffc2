"""``predict`` and ``deploy manifests`` as a user types them, on a store in a temporary folder.

The commands are mounted on a small Typer app here (the ``shipyard`` app wires them
itself), and run in-process with Typer's runner against a store made through the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from shipyard.cli import _common as c
from shipyard.cli.batch import deploy_manifests, predict
from shipyard.core.errors import SchemaMismatchError


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("predict")(predict)
    deploy = typer.Typer()
    deploy.command("manifests")(deploy_manifests)
    app.add_typer(deploy, name="deploy")
    return app


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pd.DataFrame]:
    """A store under tmp_path with cancer@1 (also cancer@production); yields the features."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shipyard as sy

    for key in ("SHIPYARD_CONFIG", "SHIPYARD_DB_URL", "SHIPYARD_ARTIFACT_URI", "SHIPYARD_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    c.settings.cache_clear()
    sy.configure(c.settings())
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with sy.start_run() as run:
        sy.log_model(model, "model", input_example=X.head(5))
    sy.register_model(run.run_id, "cancer")
    sy.promote_model("cancer", 1, "production")
    yield X
    tracker = sy.tracker()
    tracker.flush()
    tracker.db.dispose()
    c.settings.cache_clear()


def test_predict_scores_a_file(app: typer.Typer, store: pd.DataFrame, tmp_path: Path) -> None:
    store.to_parquet(tmp_path / "in.parquet", index=False)
    runner = CliRunner()

    result = runner.invoke(app, ["predict", "cancer@production", "--input", "in.parquet",
                                 "--output", "out/scores.csv", "--chunk-rows", "200"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 569 rows with cancer@1" in result.stdout and "rows/s" in result.stdout
    out = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert list(out.columns) == ["row", "prediction", "proba_0", "proba_1", "model",
                                 "model_version"]  # fmt: skip
    assert len(out) == 569 and set(out["model"]) == {"cancer@1"}

    result = runner.invoke(app, ["predict", "cancer@1", "-i", "in.parquet", "-o", "out.parquet",
                                 "--no-proba", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["rows"] == 569 and report["chunks"] == 1 and report["version"] == 1
    assert report["columns"] == ["row", "prediction", "model", "model_version"]


def test_predict_refuses_a_file_without_the_models_columns(
    app: typer.Typer, store: pd.DataFrame, tmp_path: Path
) -> None:
    store.drop(columns=["worst area"]).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(app, ["predict", "cancer@1", "-i", "in.csv", "-o", "out.csv"])
    assert isinstance(result.exception, SchemaMismatchError)
    assert "'worst area'" in result.exception.message
    assert not (tmp_path / "out.csv").exists()


def test_deploy_manifests(app: typer.Typer, store: pd.DataFrame, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["deploy", "manifests", "cancer@1", "--out", "deploy",
                                 "--replicas", "1", "--extra", "postgres"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote deploy/k8s/hpa.yaml" in result.stdout
    dockerfile = (tmp_path / "deploy" / "Dockerfile").read_text()
    assert '"cancer@production"' in dockerfile, "the alias the version holds is served"
    requirements = (tmp_path / "deploy" / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("shipyard[postgres]==")
    assert any(line.startswith("scikit-learn==") for line in requirements)
    hpa = yaml.safe_load((tmp_path / "deploy" / "k8s" / "hpa.yaml").read_text())
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cancer-production"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)

    again = runner.invoke(app, ["deploy", "manifests", "cancer@production", "--out", "deploy"])
    assert again.exit_code != 0 and "overwrite" in str(again.exception)
    again = runner.invoke(app, ["deploy", "manifests", "cancer@production", "--out", "deploy",
                                "--overwrite", "--json"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["version"] == "cancer@1"


def test_the_shipyard_command_has_predict_and_deploy_manifests() -> None:
    import subprocess
    import sys

    for args in (["predict", "--help"], ["deploy", "manifests", "--help"], ["serve", "--help"]):
        done = subprocess.run([sys.executable, "-m", "shipyard.cli.main", *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Usage" in done.stdout
