"""``shipyard pipeline`` as a user runs it: run, rerun (cached), status, dag, history,
Airflow export, schedules, a bad spec and a failing step, each a subprocess."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = """\
pipeline: demo
params: {rows: 50}
steps:
  prepare:
    run: "python -c \\"import sys; open('data.csv','w').write('x\\\\n' + '\\\\n'.join(map(str, range(${params.rows}))))\\""
    params: [rows]
    outs: [data.csv]
  count:
    run: "wc -l data.csv > count.txt"
    deps: [data.csv]
    outs: [count.txt]
"""


def _cli(folder: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_HOME": str(folder / ".shipyard"), "COLUMNS": "200"})
    done = subprocess.run([sys.executable, "-m", "shipyard.cli.main", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    return tmp_path


def test_run_rerun_status_dag_history(folder: Path) -> None:
    first = _cli(folder, "pipeline", "run")
    assert "[prepare] ran" in first.stdout and "[count] ran" in first.stdout
    assert "pipeline demo finished" in first.stdout
    assert (folder / "count.txt").read_text().split()[0] == "50"

    again = json.loads(_cli(folder, "pipeline", "run", "--json").stdout)
    assert [s["status"] for s in again["steps"]] == ["cached", "cached"]
    assert again["recorded"] is False  # nothing changed: answered from shipyard.lock
    (folder / "count.txt").unlink()  # an output is gone: the full path restores it
    restored = json.loads(_cli(folder, "pipeline", "run", "--json").stdout)
    assert [s["status"] for s in restored["steps"]] == ["cached", "restored"]
    assert (folder / "count.txt").read_text().split()[0] == "50"

    status = _cli(folder, "pipeline", "status").stdout
    assert "skip  prepare: unchanged" in status
    (folder / "shipyard.yaml").write_text(SPEC.replace("rows: 50", "rows: 60"))
    status = _cli(folder, "pipeline", "status").stdout
    assert "run   prepare" in status and "run   count: upstream prepare" in status

    dot = _cli(folder, "pipeline", "dag", "--dot").stdout
    assert dot.strip().startswith("digraph") and '"prepare" -> "count"' in dot
    history = json.loads(_cli(folder, "pipeline", "history", "--json").stdout)
    assert [h["ran"] for h in history] == [0, 2] and [h["cached"] for h in history] == [2, 0]
    assert history[0]["status"] == "finished"


def test_airflow_export_writes_one_task_per_step(folder: Path) -> None:
    out = folder / "dags" / "demo.py"
    _cli(folder, "pipeline", "export", "airflow", "--out", str(out))
    source = out.read_text()
    ast.parse(source)
    assert "--step prepare" in source and "--step count" in source


def test_a_bad_spec_and_a_failing_step_are_reported_clearly(folder: Path) -> None:
    (folder / "shipyard.yaml").write_text(SPEC.replace("deps: [data.csv]", "deps: [nope.csv]"))
    bad = _cli(folder, "pipeline", "run", ok=False)
    assert bad.returncode != 0 and "nope.csv" in bad.stderr and "Traceback" not in bad.stderr
    (folder / "shipyard.yaml").write_text(SPEC.replace("wc -l data.csv", "exit 4; wc -l data.csv"))
    failed = _cli(folder, "pipeline", "run", ok=False)
    assert failed.returncode == 1
    assert "[count] failed" in failed.stdout and "failed at count" in failed.stdout


def test_schedules_are_listed_and_removed(folder: Path) -> None:
    _cli(folder, "pipeline", "schedule", "add", "demo", "--cron", "0 3 * * *")
    listed = json.loads(_cli(folder, "pipeline", "schedule", "list", "--json").stdout)
    assert listed[0]["name"] == "demo" and listed[0]["cron"] == "0 3 * * *"
    bad = _cli(folder, "pipeline", "schedule", "add", "demo", "--cron", "3am", ok=False)
    assert bad.returncode != 0 and "cron" in bad.stderr
    _cli(folder, "pipeline", "schedule", "remove", "demo")
    assert json.loads(_cli(folder, "pipeline", "schedule", "list", "--json").stdout) == []


SLOW = """\
pipeline: slow
steps:
  quick: {run: "echo done > quick.txt", outs: [quick.txt]}
  long: {run: "echo started; sleep 60; echo never > long.txt", needs: [quick], outs: [long.txt]}
"""


def test_ctrl_c_stops_running_steps_and_records_the_run_as_killed(tmp_path: Path) -> None:
    import signal
    import time

    (tmp_path / "shipyard.yaml").write_text(SLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_HOME": str(tmp_path / ".shipyard"), "COLUMNS": "200"})
    log = tmp_path / "out.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli.main", "pipeline", "run"],
                                cwd=tmp_path, env=env, stdout=sink, stderr=sink)  # fmt: skip
        deadline = time.monotonic() + 60
        while "[long] started" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert time.monotonic() - started < 10, "the sleeping step was not stopped"
    assert proc.returncode == 130, log.read_text()
    assert "pipeline cancelled" in log.read_text()
    assert not (tmp_path / "long.txt").exists()
    history = json.loads(_cli(tmp_path, "pipeline", "history", "--json").stdout)
    assert history[0]["status"] == "cancelled"
    again = json.loads(_cli(tmp_path, "pipeline", "run", "--json", "--step", "quick").stdout)
    assert again["steps"][0]["status"] == "cached"
