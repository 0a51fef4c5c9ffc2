"""The ``shipyard`` command, run as a subprocess against stores built with the Python API."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard import client
from shipyard.core.config import load_settings

SHIPYARD_BIN = Path(sys.executable).parent / "shipyard"
GROUPS = ("experiments", "runs", "artifacts", "config", "doctor", "gc")


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(
        {
            "SHIPYARD_HOME": str(home),
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "SHIPYARD_CACHE_DIR": str(home.parent / "cache"),
        }
    )
    env.update(extra)
    return env


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m shipyard.cli.main ARGS`` with the store at ``home``."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        env=_clean_env(home, **env),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


@dataclass
class Store:
    home: Path
    runs: dict[str, str]  # run name -> run id
    blob: bytes


def _configure(home: Path) -> None:
    client.configure(
        load_settings(
            {
                "SHIPYARD_HOME": str(home),
                "SHIPYARD_FLUSH_INTERVAL": "0.05",
                "SHIPYARD_CACHE_DIR": str(home.parent / "cache"),
            },
            cwd=home.parent,
        )
    )


def _close() -> None:
    tracker = client.tracker()
    tracker.flush()
    tracker.db.dispose()


def build_store(home: Path) -> Store:
    """Three finished runs in ``churn`` (one with a binary artifact), one in ``other``."""
    import shipyard as sy

    _configure(home)
    rng = random.Random(7)
    blob = rng.randbytes(100_000)
    ids: dict[str, str] = {}
    sy.set_experiment("churn")
    for i, model in enumerate(["rf", "lr", "gb"]):
        with sy.start_run(name=f"{model}-run") as run:
            sy.log_params({"model": model, "depth": 3 + i})
            for step in range(5):
                sy.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            sy.log_metric("f1", 0.70 + 0.05 * i)
            sy.set_tag("team", "vision")
            sy.log_text(f"notes for {model}", "notes/readme.txt")
            if model == "gb":
                weights = home.parent / "weights.bin"
                weights.write_bytes(blob)
                sy.log_artifact(weights, "model")
                sy.log_metric("odd", float("nan"))
        ids[run.name] = run.run_id
        time.sleep(0.005)  # distinct start times, so "newest first" is well defined
    with sy.start_run(name="other-run", experiment="other") as run:
        sy.log_metric("f1", 0.99)
    ids[run.name] = run.run_id
    sy.flush()
    _close()
    return Store(home, ids, blob)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store shared by the read-only tests of this module."""
    return build_store(tmp_path_factory.mktemp("shared") / "store")


@pytest.fixture
def fresh(tmp_path: Path) -> Store:
    """A store of the test's own, for tests that change or damage it."""
    return build_store(tmp_path / "store")


def object_file(home: Path, digest: str) -> Path:
    return home / "objects" / digest[:2] / digest[2:]


def artifact_digest(home: Path, run_id: str, path: str) -> str:
    listing = strict_json(ok(cli(home, "artifacts", "list", run_id, "--json")))
    return next(a["digest"] for a in listing if a["path"] == path)


# -- help and start-up ---------------------------------------------------------------------


def test_help_lists_every_command_group(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SHIPYARD_BIN), "--help"],
        env=_clean_env(tmp_path / "s"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = ok(result)
    assert "Usage: shipyard" in out
    for group in GROUPS:
        assert f" {group} " in out, group
    for group, commands in {
        "experiments": ("list", "create", "rename", "delete", "restore"),
        "runs": ("list", "show", "search", "compare", "delete", "restore", "history"),
        "artifacts": ("list", "get"),
        "config": ("show",),
    }.items():
        sub = ok(cli(tmp_path / "s", group, "--help"))
        for command in commands:
            assert f" {command} " in sub, (group, command)
    assert not (tmp_path / "s").exists()  # --help never creates a store


def test_cli_module_defers_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys, shipyard.cli.main; "
        "print(sorted(m for m in ('sqlalchemy', 'pandas', 'rich', 'shipyard.store.db') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"


def test_version(tmp_path: Path) -> None:
    assert ok(cli(tmp_path / "s", "--version")).startswith("shipyard ")


# -- runs ------------------------------------------------------------------------------------


def test_runs_list_json(store: Store) -> None:
    runs = strict_json(ok(cli(store.home, "runs", "list", "--experiment", "churn", "--json")))
    assert [r["name"] for r in runs] == ["gb-run", "lr-run", "rf-run"]  # newest first
    gb = runs[0]
    assert gb["run_id"] == store.runs["gb-run"]
    assert gb["status"] == "FINISHED"
    assert gb["params"] == {"depth": "5", "model": "gb"}
    assert gb["metrics"]["f1"] == pytest.approx(0.80)
    assert gb["metrics"]["odd"] is None  # NaN is null: the output stays strict JSON
    assert gb["tags"]["team"] == "vision"

    every = strict_json(ok(cli(store.home, "runs", "list", "--json")))
    assert {r["name"] for r in every} == set(store.runs)
    capped = strict_json(ok(cli(store.home, "runs", "list", "--max", "2", "--json")))
    assert len(capped) == 2


def test_runs_list_table(store: Store) -> None:
    out = ok(cli(store.home, "runs", "list", "-e", "churn"))
    for name, run_id in store.runs.items():
        if name != "other-run":
            assert name in out and run_id[:12] in out
    assert "other-run" not in out


def test_runs_search_json(store: Store) -> None:
    found = strict_json(
        ok(
            cli(
                store.home,
                "runs",
                "search",
                "metrics.f1 > 0.72 and params.model != 'zz'",
                "--experiment",
                "churn",
                "--order-by",
                "metrics.f1 DESC",
                "--json",
            )
        )
    )
    assert [r["name"] for r in found] == ["gb-run", "lr-run"]

    ascending = strict_json(
        ok(
            cli(
                store.home, "runs", "search", "metrics.f1 > 0", "--order-by", "metrics.f1", "--json"
            )
        )
    )
    assert [r["name"] for r in ascending] == ["rf-run", "lr-run", "gb-run", "other-run"]

    assert (
        strict_json(ok(cli(store.home, "runs", "search", "params.model = 'svm'", "--json"))) == []
    )


def test_malformed_filter_reports_position_without_traceback(store: Store) -> None:
    result = cli(store.home, "runs", "search", "metrics.f1 >> 3")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: filter syntax error at position 12")
    assert "metrics.f1 >> 3" in result.stderr
    assert "            ^" in result.stderr


def test_runs_show(store: Store) -> None:
    run_id = store.runs["gb-run"]
    out = ok(cli(store.home, "runs", "show", run_id[:8]))  # a unique prefix is enough
    for expected in (
        run_id,
        "gb-run",
        "churn",
        "FINISHED",
        "depth",
        "loss",
        "team",
        "vision",
        "model/weights.bin",
        "notes/readme.txt",
        "environment",
        "packages",
    ):
        assert expected in out, expected

    data = strict_json(ok(cli(store.home, "runs", "show", run_id, "--json")))
    assert data["run_id"] == run_id
    assert {a["path"] for a in data["artifacts"]} == {"model/weights.bin", "notes/readme.txt"}
    assert data["environment"]["packages"]


def test_runs_compare(store: Store) -> None:
    rf, gb = store.runs["rf-run"], store.runs["gb-run"]
    out = ok(cli(store.home, "runs", "compare", rf, gb))
    assert "rf-run" in out and "gb-run" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "≠" in lines["params.model"]
    assert "≠" not in lines["tags.team"]

    diff = ok(cli(store.home, "runs", "compare", rf, gb, "--diff-only"))
    assert "params.model" in diff and "tags.team" not in diff

    data = strict_json(ok(cli(store.home, "runs", "compare", rf, gb, "--json")))
    assert data["runs"] == [rf, gb]
    fields = {f["field"]: f for f in data["fields"]}
    assert fields["params.model"] == {
        "field": "params.model",
        "values": ["rf", "gb"],
        "differs": True,
    }
    assert fields["tags.team"]["differs"] is False


def test_runs_history(store: Store) -> None:
    points = strict_json(
        ok(cli(store.home, "runs", "history", store.runs["rf-run"], "loss", "--json"))
    )
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert points[1]["value"] == pytest.approx(0.5)
    missing = cli(store.home, "runs", "history", store.runs["rf-run"], "nope")
    assert missing.returncode == 1
    assert "has no metric 'nope'" in missing.stderr


def test_unknown_and_ambiguous_run_ids(store: Store) -> None:
    unknown = cli(store.home, "runs", "show", "ffffffffff")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no run id starts with 'ffffffffff'")
    short = cli(store.home, "runs", "show", "abc")
    assert short.returncode == 2 and "too short" in short.stderr


def test_missing_store_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    result = cli(tmp_path / "nowhere", "runs", "list")
    assert result.returncode == 1
    assert "no shipyard store" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_runs_delete_and_restore(fresh: Store) -> None:
    run_id = fresh.runs["lr-run"]
    ok(cli(fresh.home, "runs", "delete", run_id[:10]))
    active = strict_json(ok(cli(fresh.home, "runs", "list", "--json")))
    assert run_id not in {r["run_id"] for r in active}
    deleted = strict_json(ok(cli(fresh.home, "runs", "list", "--view", "deleted", "--json")))
    assert [r["run_id"] for r in deleted] == [run_id]
    ok(cli(fresh.home, "runs", "restore", run_id))
    active = strict_json(ok(cli(fresh.home, "runs", "list", "--json")))
    assert run_id in {r["run_id"] for r in active}


# -- experiments -----------------------------------------------------------------------------


def test_experiments_lifecycle(tmp_path: Path) -> None:
    home = tmp_path / "store"
    ok(cli(home, "experiments", "create", "alpha", "--description", "first"))
    ok(cli(home, "experiments", "rename", "alpha", "beta"))
    listed = strict_json(ok(cli(home, "experiments", "list", "--json")))
    assert [(e["name"], e["description"]) for e in listed] == [("beta", "first")]

    again = cli(home, "experiments", "create", "beta")
    assert again.returncode == 1 and "exists already" in again.stderr

    ok(cli(home, "experiments", "delete", "beta"))
    assert strict_json(ok(cli(home, "experiments", "list", "--json"))) == []
    deleted = strict_json(ok(cli(home, "experiments", "list", "--view", "deleted", "--json")))
    assert [e["name"] for e in deleted] == ["beta"]
    ok(cli(home, "experiments", "restore", "beta"))
    assert [e["name"] for e in strict_json(ok(cli(home, "experiments", "list", "--json")))] == [
        "beta"
    ]


# -- artifacts -------------------------------------------------------------------------------


def test_artifacts_list_and_get_round_trip(store: Store, tmp_path: Path) -> None:
    run_id = store.runs["gb-run"]
    listing = strict_json(ok(cli(store.home, "artifacts", "list", run_id, "--json")))
    assert {(a["path"], a["size"]) for a in listing} == {
        ("model/weights.bin", len(store.blob)),
        ("notes/readme.txt", len(b"notes for gb")),
    }
    only_model = strict_json(ok(cli(store.home, "artifacts", "list", run_id, "model", "--json")))
    assert [a["path"] for a in only_model] == ["model/weights.bin"]

    dest = tmp_path / "out"
    ok(cli(store.home, "artifacts", "get", run_id, "model/weights.bin", "--dest", str(dest)))
    assert (dest / "model" / "weights.bin").read_bytes() == store.blob

    everything = tmp_path / "all"
    ok(cli(store.home, "artifacts", "get", run_id, "--dest", str(everything)))
    assert (everything / "notes" / "readme.txt").read_text() == "notes for gb"

    missing = cli(store.home, "artifacts", "get", run_id, "nope.txt", "--dest", str(dest))
    assert missing.returncode == 1 and "has no artifact 'nope.txt'" in missing.stderr
    escape = cli(store.home, "artifacts", "get", run_id, "../etc/passwd")
    assert escape.returncode == 2 and "outside the run" in escape.stderr


# -- doctor and gc ---------------------------------------------------------------------------


def test_doctor_on_a_healthy_store(store: Store) -> None:
    out = ok(cli(store.home, "doctor"))
    assert "the store is consistent" in out
    report = strict_json(ok(cli(store.home, "doctor", "--json")))
    assert report["consistent"] is True
    assert report["missing"] == report["corrupt"] == report["stale"] == []
    assert report["objects_referenced"] >= 5  # 4 notes/weights objects + environment


def test_doctor_finds_a_corrupt_object(fresh: Store, tmp_path: Path) -> None:
    run_id = fresh.runs["gb-run"]
    path = object_file(fresh.home, artifact_digest(fresh.home, run_id, "model/weights.bin"))
    damaged = bytearray(path.read_bytes())
    damaged[500] ^= 0xFF
    path.write_bytes(bytes(damaged))

    result = cli(fresh.home, "doctor")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "corrupt objects (1)" in result.stdout
    assert f"{run_id}:model/weights.bin" in result.stdout
    assert "NOT consistent" in result.stdout

    report = strict_json(cli(fresh.home, "doctor", "--json").stdout)
    assert report["consistent"] is False
    assert [(i["run_id"], i["path"]) for i in report["corrupt"]] == [(run_id, "model/weights.bin")]
    assert cli(fresh.home, "doctor", "--no-verify").returncode == 0  # existence only

    dest = tmp_path / "out"
    get = cli(fresh.home, "artifacts", "get", run_id, "model/weights.bin", "--dest", str(dest))
    assert get.returncode == 1
    assert "corrupt" in get.stderr and "Traceback" not in get.stderr
    assert not (dest / "model" / "weights.bin").exists()


def test_doctor_finds_a_missing_object(fresh: Store) -> None:
    run_id = fresh.runs["rf-run"]
    object_file(fresh.home, artifact_digest(fresh.home, run_id, "notes/readme.txt")).unlink()
    result = cli(fresh.home, "doctor", "--no-verify")
    assert result.returncode == 1
    assert "missing objects (1)" in result.stdout
    assert f"{run_id}:notes/readme.txt" in result.stdout


_DOOMED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import shipyard as sy
    from shipyard import client
    from shipyard.core.config import load_settings

    home = Path(sys.argv[1])
    client.configure(load_settings({"SHIPYARD_HOME": str(home), "SHIPYARD_CAPTURE_ENV": "0"},
                                   cwd=home.parent))
    run = sy.start_run(name="doomed", experiment="churn")
    sy.log_metric("loss", 1.0)
    sy.flush()
    print(run.run_id, flush=True)
    time.sleep(120)
""")


def test_doctor_reports_a_run_whose_process_was_killed(fresh: Store) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _DOOMED, str(fresh.home)],
        stdout=subprocess.PIPE,
        text=True,
        env=_clean_env(fresh.home),
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert len(run_id) == 32

    report = strict_json(ok(cli(fresh.home, "doctor", "--json")))
    assert report["consistent"] is True  # a stale run is not corruption
    assert [s["run_id"] for s in report["stale"]] == [run_id]

    fixed = ok(cli(fresh.home, "doctor", "--fix-stale"))
    assert f"run {run_id}" in fixed and "marked KILLED" in fixed
    shown = strict_json(ok(cli(fresh.home, "runs", "show", run_id, "--json")))
    assert shown["status"] == "KILLED"
    assert strict_json(ok(cli(fresh.home, "doctor", "--json")))["stale"] == []


def test_gc_removes_orphans_and_deleted_runs(fresh: Store) -> None:
    from shipyard.store.objects import LocalObjectStore

    objects = LocalObjectStore(fresh.home / "objects")
    old_orphan = objects.put_bytes(b"left behind by a crash").digest
    new_orphan = objects.put_bytes(b"about to be recorded").digest
    rf = fresh.runs["rf-run"]
    rf_notes = artifact_digest(fresh.home, rf, "notes/readme.txt")
    two_hours_ago = time.time() - 7200
    for digest in (old_orphan, rf_notes):
        os.utime(object_file(fresh.home, digest), (two_hours_ago, two_hours_ago))
    ok(cli(fresh.home, "runs", "delete", rf))

    dry = strict_json(ok(cli(fresh.home, "gc", "--dry-run", "--json")))
    assert dry["dry_run"] is True and dry["runs_purged"] == 1
    assert set(dry["objects_deleted"]) == {old_orphan, rf_notes}
    assert object_file(fresh.home, old_orphan).exists()

    out = ok(cli(fresh.home, "gc"))
    assert "removed 1 deleted runs" in out and "removed 2 unreferenced objects" in out
    assert not object_file(fresh.home, old_orphan).exists()
    assert not object_file(fresh.home, rf_notes).exists()
    assert object_file(fresh.home, new_orphan).exists()  # inside the grace period
    every = strict_json(ok(cli(fresh.home, "runs", "list", "--view", "all", "--json")))
    assert rf not in {r["run_id"] for r in every}
    assert strict_json(ok(cli(fresh.home, "doctor", "--json")))["consistent"] is True

    ok(cli(fresh.home, "gc", "--older-than", "0"))
    assert not object_file(fresh.home, new_orphan).exists()


# -- config ----------------------------------------------------------------------------------


def test_config_show_names_sources(tmp_path: Path) -> None:
    home = tmp_path / "store"
    env = {
        "SHIPYARD_EXPERIMENT": "churn",
        "SHIPYARD_DB_URL": "postgresql+psycopg://ann:s3cret@db.example/shipyard",
    }
    out = ok(cli(home, "config", "show", **env))
    assert "env SHIPYARD_HOME" in out and "env SHIPYARD_EXPERIMENT" in out
    assert "s3cret" not in out and "ann:***@db.example" in out

    rows = {r["name"]: r for r in strict_json(ok(cli(home, "config", "show", "--json", **env)))}
    assert rows["experiment"] == {
        "name": "experiment",
        "value": "churn",
        "source": "env SHIPYARD_EXPERIMENT",
        "env": "SHIPYARD_EXPERIMENT",
    }
    assert rows["home"]["value"] == str(home)
    assert rows["flush_interval"]["source"] == "default"

    bad = cli(home, "config", "show", SHIPYARD_FLUSH_INTERVAL="soon")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: setting flush_interval from env SHIPYARD_FLUSH_INTERVAL")
