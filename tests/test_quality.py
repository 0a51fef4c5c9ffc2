"""House rules a machine can check: lint, types, layering, and the public namespace."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT.parent / "shared" / "tools" / "layers.py"


def _tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not LAYERS.is_file(), reason="../shared/tools/layers.py is not beside the repo")
def test_imports_point_down_the_layers_and_modules_stay_small() -> None:
    result = subprocess.run(
        [sys.executable, str(LAYERS), "src/shipyard"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_public_namespace_is_exactly_the_intended_one() -> None:
    import shipyard

    assert set(shipyard.__all__) == {
        "ActiveRun",
        "Metric",
        "Run",
        "RunStatus",
        "ShipyardError",
        "active_run",
        "autolog",
        "compare_runs",
        "configure",
        "create_experiment",
        "delete_experiment",
        "delete_run",
        "download_artifacts",
        "end_run",
        "flush",
        "get_experiment",
        "get_metric_history",
        "get_run",
        "get_run_inputs",
        "list_artifacts",
        "list_experiments",
        "load_artifact",
        "log_artifact",
        "log_artifacts",
        "log_batch",
        "log_dict",
        "log_figure",
        "log_input",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_table",
        "log_text",
        "rename_experiment",
        "restore_experiment",
        "restore_run",
        "search_runs",
        "set_description",
        "set_experiment",
        "set_tag",
        "set_tags",
        "settings",
        "start_run",
        "tracker",
        "get_model_version",
        "load_model",
        "log_model",
        "model_registry",
        "promote_model",
        "register_model",
        "rollback_model",
        "train",
        "evaluate",
        "monitor_context",
        "create_monitor",
        "run_monitor",
        "pipeline_context",
        "run_pipeline",
    }
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None


def test_import_shipyard_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, shipyard; heavy = {'sqlalchemy', 'pandas', 'sklearn', 'numpy'} "
        "& set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
