"""``shipyard train`` and ``shipyard eval`` as a user runs them: subprocesses in a project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SHIPYARD_CACHE_DIR": str(cwd / ".cache")})
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame  # 3 classes
    frame.to_csv(tmp_path / "wine.csv", index=False)
    _ok(_run(tmp_path, "data", "add", "wine", "wine.csv"))
    _ok(_run(tmp_path, "data", "split", "wine@1", "--target", "target", "--stratify"))
    return tmp_path


def test_train_then_eval_from_the_command_line(
    project: Path, external_links: Callable[[str], list[str]]
) -> None:
    out = json.loads(
        _ok(
            _run(
                project,
                "train",
                "wine@train",
                "--target",
                "target",
                "--models",
                "linear,random_forest",
                "--cv",
                "3",
                "--valid",
                "wine@test",
                "--json",
            )
        )
    )
    assert out["task"] == "multiclass"
    board = out["leaderboard"]
    assert [row["rank"] for row in board] == [1, 2]
    assert {row["model"] for row in board} == {"linear", "random_forest"}
    metric = out["metric"]
    assert board[0][f"{metric}_mean"] >= board[1][f"{metric}_mean"]
    assert out["evaluation"]["rows"] == 36

    shown = _ok(
        _run(project, "train", "wine@train", "--target", "target", "--models", "knn", "--cv", "3")
    )
    assert "leaderboard" in shown and "knn" in shown

    evaluated = json.loads(
        _ok(
            _run(
                project,
                "eval",
                out["best_run_id"],
                "--data",
                "wine@test",
                "--json",
                "--html",
                "report.html",
            )
        )
    )
    assert evaluated["rows"] == 36
    assert evaluated["metrics"]["accuracy"] == pytest.approx(
        out["evaluation"]["metrics"]["accuracy"]
    ), "the logged model is the refitted best"
    html = (project / "report.html").read_text()
    assert "<html" in html.lower()
    assert external_links(html) == [], "works offline: no src or href leaves the page"

    runs = json.loads(_ok(_run(project, "runs", "list", "--json")))
    assert any(r["name"].startswith("best:") for r in runs)
    assert any(r["name"].startswith("eval on wine@test") for r in runs)


def test_train_refuses_bad_input_with_a_clear_message(project: Path) -> None:
    for args, needle in [
        (("--target", "nope"), "'nope' is not a column"),
        (("--target", "target", "--models", "linear,deep_magic"), "deep_magic"),
        (("--target", "target", "--task", "regression", "--metric", "roc_auc"), "roc_auc"),
    ]:
        result = _run(project, "train", "wine@train", *args)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr
    missing = _run(project, "train", "wine@42", "--target", "target")
    assert missing.returncode == 1 and "no version" in missing.stderr
