"""``shipyard models export-onnx``: a registered scikit-learn version becomes an ONNX version
whose outputs match, logged in a child run of the original."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SETUP = """
import shipyard as sy
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns="target"), frame["target"]
with sy.start_run() as run:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    sy.log_param("target", "target")
    sy.log_model(model, "model", input_example=X.head(5))
sy.register_model(run.run_id, "cancer")
"""


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SHIPYARD_HOME": str(cwd / ".shipyard")})
    return env


def test_export_onnx_registers_a_matching_onnx_version(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([sys.executable, "-c", SETUP], cwd=tmp_path, env=env, check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "models", "export-onnx", "cancer@1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outputs match" in result.stdout and "registered cancer@2 (onnx)" in result.stdout

    from sklearn.datasets import load_breast_cancer

    import shipyard as sy
    from shipyard.core.config import load_settings

    sy.configure(load_settings(env, cwd=tmp_path))
    X = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    onnx_model, original = sy.load_model("cancer@2"), sy.load_model("cancer@1")
    assert onnx_model.flavor == "onnx"
    np.testing.assert_array_equal(onnx_model.predict(X), original.predict(X))
    np.testing.assert_allclose(onnx_model.predict_proba(X), original.predict_proba(X), atol=1e-4)
    run = sy.get_run(sy.get_model_version("cancer@2").run_id)
    assert run.parent_run_id == sy.get_model_version("cancer@1").run_id
    sy.configure()
