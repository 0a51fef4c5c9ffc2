"""``shipyard data ...`` as a user runs it: a subprocess in a project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SHIPYARD_CACHE_DIR": str(cwd / ".cache")})
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "data", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "region": rng.choice(["north", "south"], n),
            "income": rng.normal(50, 10, n).round(3),
            "churn": (rng.random(n) < 0.3).astype(int),
        }
    )
    df.to_csv(tmp_path / "customers.csv", index=False)
    return tmp_path


def test_add_log_validate_profile_graph_split_diff(project: Path) -> None:
    added = json.loads(_ok(_run(project, "add", "customers", "customers.csv", "--json")))
    assert added["ref"] == "customers@1" and added["created"] is True
    again = json.loads(_ok(_run(project, "add", "customers", "customers.csv", "--json")))
    assert again["ref"] == "customers@1" and again["created"] is False
    assert (project / "expectations" / "customers.yaml").is_file()

    log = json.loads(_ok(_run(project, "log", "customers", "--json")))
    assert [v["ref"] for v in log] == ["customers@1"]
    assert "passed" in _ok(_run(project, "validate", "customers@1"))

    bad = pd.read_csv(project / "customers.csv")
    bad.loc[[1, 2, 3], "region"] = "mars"
    bad.to_csv(project / "bad.csv", index=False)
    failed = _run(project, "validate", "bad.csv", "--expectations", "customers", "--json")
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    region = [r for r in report["results"] if r["column"] == "region" and not r["passed"]]
    assert region and region[0]["bad_count"] == 3

    shown = _ok(_run(project, "profile", "customers@1", "--html", "profile.html"))
    income_row = next(line for line in shown.splitlines() if "income" in line)
    median = pd.read_csv(project / "customers.csv")["income"].median()
    assert f"{median:.4g}"[:4] in income_row, "the Median column shows the median"
    html = (project / "profile.html").read_text()
    assert "<svg" in html and "https://" not in html
    graph = json.loads(_ok(_run(project, "graph", "customers@1", "--target", "churn", "--json")))
    assert any("customer_id" in json.dumps(s) for s in graph["leakage_suspects"])

    split = json.loads(
        _ok(
            _run(
                project,
                "split",
                "customers@1",
                "--target",
                "churn",
                "--stratify",
                "--test",
                "0.2",
                "--valid",
                "0.1",
                "--json",
            )
        )
    )
    assert set(split["versions"]) == {"train", "valid", "test"}
    assert split["leakage"]["ok"] is True
    shown_latest = json.loads(_ok(_run(project, "show", "customers@latest", "--json")))
    assert shown_latest["ref"] == "customers@1", "the split parts do not take over @latest"
    d = json.loads(_ok(_run(project, "diff", "customers@1", "customers@train", "--json")))
    assert d["old_rows"] == 300 and d["new_rows"] < 300
    shown_diff = _ok(_run(project, "diff", "customers@1", "customers@train"))
    assert "0 of 4 shared columns changed" in shown_diff, "a random sample is not a change"
    listing = json.loads(_ok(_run(project, "list", "--json")))
    assert listing[0]["name"] == "customers"


def test_folder_add_and_status(project: Path) -> None:
    root = project / "images"
    root.mkdir()
    for i in range(5):
        (root / f"{i}.bin").write_bytes(bytes([i]) * 64)
    _ok(_run(project, "add", "images", "images"))
    assert "matches" in _ok(_run(project, "status", "images", "images"))
    (root / "0.bin").write_bytes(b"changed")
    changes = json.loads(_ok(_run(project, "status", "images", "images", "--json")))
    assert changes == {"added": [], "modified": ["0.bin"], "deleted": []}

    (root / "big.bin").write_bytes(os.urandom(300_000))
    added = json.loads(_ok(_run(project, "add", "images", "images", "--link", "--json")))
    assert (added["version"], added["num_files"]) == (2, 6)
    assert (root / "big.bin").stat().st_nlink == 2, "--link stored it without a copy"
    _ok(_run(project, "checkout", "images@2", "back"))
    assert (project / "back" / "big.bin").read_bytes() == (root / "big.bin").read_bytes()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no such file"), ("", "empty"), ('a,b\n1,2\n3,"4\n5,6,7\n', "well-formed")],
)
def test_bad_files_exit_non_zero_with_a_clear_message(
    project: Path, content: str | None, needle: str
) -> None:
    if content is not None:
        (project / "input.csv").write_text(content)
    result = _run(project, "add", "broken", "input.csv")
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    if content is None:
        assert not (project / ".shipyard").exists(), "no store made for a file that is not there"


def test_runs_show_lists_the_dataset_versions_a_run_read(project: Path) -> None:
    _ok(_run(project, "add", "customers", "customers.csv"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_CACHE_DIR"] = str(project / ".cache")
    script = (
        "import shipyard as sy\n"
        "with sy.start_run() as run:\n"
        "    sy.log_input(sy.data.get('customers@1').version, context='training')\n"
        "print(run.run_id)\n"
    )
    made = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    run_id = made.stdout.strip()
    shown = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "runs", "show", run_id, "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    inputs = json.loads(shown.stdout)["inputs"]
    assert [(i["dataset"], i["context"]) for i in inputs] == [("customers@1", "training")]


def test_every_data_command_offers_json() -> None:
    from typer.main import get_command

    from shipyard.cli.data import app

    group = get_command(app)
    missing = [
        name
        for name, command in group.commands.items()  # type: ignore[attr-defined]
        if "--json" not in {opt for p in command.params for opt in p.opts}
    ]
    assert missing == []


def test_alias_and_checkout(project: Path) -> None:
    _ok(_run(project, "add", "customers", "customers.csv"))
    moved = json.loads(_ok(_run(project, "alias", "customers@1", "gold", "--json")))
    assert "gold" in moved["aliases"]
    out = json.loads(_ok(_run(project, "checkout", "customers@gold", "out", "--json")))
    back = pd.read_parquet(out["written"][0])
    pd.testing.assert_frame_equal(back, pd.read_csv(project / "customers.csv"))


def test_installed_command_imports_custom_checks_from_the_project_folder(project: Path) -> None:
    _ok(_run(project, "add", "customers", "customers.csv"))
    (project / "project_checks.py").write_text(
        "def income_below_70(df):\n    return df['income'] < 70\n"
    )
    path = project / "expectations" / "customers.yaml"
    text = path.read_text()
    custom = "- custom: {name: income_below_70, function: 'project_checks:income_below_70'}\n"
    path.write_text(text.replace("table:\n", "table:\n" + custom, 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SHIPYARD_CACHE_DIR": str(project / ".cache")})
    command = Path(sys.executable).parent / "shipyard"  # the console script, not python -m
    result = subprocess.run(
        [str(command), "data", "validate", "customers@1", "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    check = [r for r in report["results"] if r["check"] == "income_below_70"]
    high = int((pd.read_csv(project / "customers.csv")["income"] >= 70).sum())
    assert check and check[0]["bad_count"] == high, result.stderr
    assert result.returncode == (1 if high else 0)


def test_clean_prints_what_each_step_changed(project: Path) -> None:
    df = pd.read_csv(project / "customers.csv")
    df.loc[::10, "income"] = np.nan
    df.to_csv(project / "holes.csv", index=False)
    _ok(_run(project, "add", "customers", "holes.csv"))
    (project / "clean.yaml").write_text(
        "steps:\n"
        "- impute: {columns: [income], strategy: median}\n"
        "- drop_columns: {columns: [customer_id]}\n"
    )
    shown = _ok(_run(project, "clean", "customers@1", "--spec", "clean.yaml"))
    assert "customers@2" in shown
    assert f"{int(df['income'].isna().sum())} values imputed" in shown
    assert "removed customer_id" in shown and "{" not in shown, "a table, not a dict dump"
