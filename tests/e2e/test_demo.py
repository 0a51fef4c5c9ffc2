"""`make demo` runs `python -m shipyard.demo`: it must work in an empty folder and show results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_trains_tracks_and_prints_the_results_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["COLUMNS"] = "120"
    result = subprocess.run(
        [sys.executable, "-m", "shipyard.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "roc_auc > 0.9" in out
    for name in ("logreg", "rf-deep", "rf-shallow", "hgb"):
        assert name in out
    assert "autolog recorded run Pipeline" in out and "model/model.skops" in out
    assert "digits@1 holds 1797 files" in " ".join(out.split())
    assert "1 modified (0/0000.pgm), 1 added" in " ".join(out.split())
    flat = " ".join(out.split())
    assert "sy.train leaderboard: 2 families" in flat
    assert "linear" in flat and "hist_gradient_boosting" in flat
    assert "refitted and evaluated once on breast-cancer@" in flat
    # registry: the tuned model is refused until approved, then replaces the baseline
    assert "breast-cancer@1 (sklearn, 30 input columns" in flat
    assert "refused by the gates:" in flat and "approval FAIL (0 of 1" in flat
    assert "breast-cancer@production -> 2 (was 1)" in flat
    assert "audit log:" in flat and "chain intact" in flat
    assert "300 single-row requests, latency p50" in flat
    assert "a malformed request got 422" in flat and "300 rows in the prediction log" in flat
    card = tmp_path / ".shipyard" / "reports" / "breast-cancer-card.html"
    assert "breast-cancer" in card.read_text() and "<script" not in card.read_text()
    log = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "data", "log", "digits", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert [(v["ref"], v["num_files"]) for v in json.loads(log.stdout)] == [
        ("digits@2", 1798),
        ("digits@1", 1797),
    ]

    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "runs",
            "list",
            "--experiment",
            "shipyard-demo",
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count('"run_id"') == 5
