"""``shipyard models``, ``lineage``, ``audit`` and ``users`` as a user runs them.

A setup script (a subprocess, like a user's training script) versions scikit-learn's
bundled breast-cancer data, splits it, and logs two models from two runs: a weak one
(predicts the class prior, ROC AUC 0.5) and a good one (a random forest). The CLI then
registers both in a store shared by the read-only tests; a test that changes the store
works on a copy of it (tests stay independent under ``pytest -n``).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

POLICY = textwrap.dedent("""\
    production:
      min_metrics: {valid_roc_auc: 0.9}
      beat_champion: {data: cancer@test, metric: roc_auc, target: target, margin: 0.0}
      signature_compatible: true
""")

_SETUP = textwrap.dedent("""
    import json
    from sklearn.datasets import load_breast_cancer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    import shipyard as sy

    first = sy.data.add("cancer", load_breast_cancer(as_frame=True).frame)
    made, _ = sy.data.split(first.ref, method="stratified", target="target", test=0.2, seed=0)
    train_v, test_v = sy.data.get("cancer@train"), sy.data.get("cancer@test")
    train, test = train_v.to_pandas(), test_v.to_pandas()
    X, y = train.drop(columns=["target"]), train["target"]
    X_test, y_test = test.drop(columns=["target"]), test["target"]
    sy.set_experiment("cancer")
    ids = {}
    for name, model in [
        ("weak", DummyClassifier(strategy="prior")),
        ("good", RandomForestClassifier(n_estimators=20, random_state=0)),
    ]:
        with sy.start_run(name=name) as run:
            sy.log_input(train_v, context="training")
            sy.log_param("target", "target")
            model.fit(X, y)
            auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
            sy.log_metric("valid_roc_auc", float(auc))
            sy.log_model(model, "model", input_example=X.head(5))
        ids[name] = run.run_id
    sy.flush()
    print(json.dumps({"runs": ids, "data": [first.ref, made["train"].ref, made["test"].ref]}))
""")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(
        {
            "SHIPYARD_HOME": str(home),
            "SHIPYARD_CACHE_DIR": str(home.parent / ".cache"),
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
    )
    env.update(extra)
    return env


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``shipyard ARGS`` with the store at ``home``; ``env`` adds variables (SHIPYARD_USER)."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        cwd=home.parent,
        env=_env(home, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _python(home: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=home.parent,
        env=_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def _fails(result: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """The stderr of a command that must fail cleanly (no traceback)."""
    assert result.returncode != 0, f"expected a failure\n{result.stdout}\n{result.stderr}"
    if code is not None:
        assert result.returncode == code, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    return result.stderr


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(_ok(result))


@dataclass
class Project:
    home: Path  # the store (SHIPYARD_HOME); its parent is the project folder
    weak: str  # run ids
    good: str

    def copy(self, dest: Path) -> Project:
        """The same store under ``dest``, for a test that changes it."""
        shutil.copytree(self.home, dest / "store", symlinks=True)
        return Project(dest / "store", self.weak, self.good)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """cancer@1 split into cancer@train/@test, two runs with a model each, registered
    with the CLI as cancer@1 (weak) and cancer@2 (good). Read-only for the tests."""
    home = tmp_path_factory.mktemp("models") / "store"
    made = json.loads(_ok(_python(home, _SETUP)))
    assert made["data"] == ["cancer@1", "cancer@2", "cancer@3"]
    weak, good = made["runs"]["weak"], made["runs"]["good"]
    out = _ok(_run(home, "models", "register", weak[:10], "cancer"))
    assert out.strip() == f"registered cancer@1 (sklearn) from run {weak}"
    registered = _json(
        _run(home, "models", "register", good, "cancer", "--description", "forest", "--json")
    )
    assert (registered["ref"], registered["version"], registered["run_id"]) == (
        "cancer@2",
        2,
        good,
    )
    return Project(home, weak, good)


@pytest.fixture
def project(base: Project, tmp_path: Path) -> Project:
    """A copy of the base store, for a test that changes it."""
    return base.copy(tmp_path)


def _digest(home: Path, ref: str, file: str) -> str:
    shown = _json(_run(home, "models", "show", ref, "--json"))
    return str(shown["files"][file]["digest"])


# -- registering and reading ---------------------------------------------------------------


def test_list_and_show_registered_versions(base: Project) -> None:
    listed = _ok(_run(base.home, "models", "list"))
    row = next(line for line in listed.splitlines() if "cancer" in line)
    assert row.split()[:2] == ["cancer", "2"]  # name, latest version

    shown = _ok(_run(base.home, "models", "show", "cancer"))
    assert base.weak in shown and base.good in shown and "sklearn" in shown
    assert getpass.getuser() in shown  # created by

    v1 = _json(_run(base.home, "models", "show", "cancer@1", "--json"))
    assert (v1["name"], v1["version"], v1["ref"]) == ("cancer", 1, "cancer@1")
    assert v1["aliases"] == []
    assert v1["run_id"] == base.weak
    assert v1["flavor"] == "sklearn"
    assert len(v1["meta_digest"]) == 64
    assert v1["metrics"]["valid_roc_auc"] == pytest.approx(0.5)
    inputs = [col["name"] for col in v1["signature"]["inputs"]]
    assert len(inputs) == 30 and "mean radius" in inputs and "target" not in inputs
    assert set(v1["files"]) == {"model.skops", "input_example.json"}
    for info in v1["files"].values():
        assert len(info["digest"]) == 64 and info["size"] > 0
    assert v1["gate_checks"] == []

    v2 = _json(_run(base.home, "models", "show", "cancer@2", "--json"))
    assert v2["description"] == "forest" and v2["metrics"]["valid_roc_auc"] > 0.9
    assert v2["signature"]["inputs"] == v1["signature"]["inputs"]
    assert v2["files"]["model.skops"]["digest"] != v1["files"]["model.skops"]["digest"]

    text = _ok(_run(base.home, "models", "show", "cancer@2"))
    assert v2["meta_digest"] in text and v2["files"]["model.skops"]["digest"] in text


def test_bad_references_name_what_exists(base: Project) -> None:
    home = base.home
    err = _fails(_run(home, "models", "show", "nosuch@1"), 1)
    assert "'nosuch'" in err and "cancer" in err  # names the model and the ones that exist
    err = _fails(_run(home, "models", "show", "cancer@99"), 1)
    assert "no version 99" in err and "1-2" in err
    err = _fails(_run(home, "models", "show", "cancer@nosuchalias"), 1)
    assert "'nosuchalias'" in err and "promote" in err
    err = _fails(_run(home, "models", "register", base.good, "cancer", "--path", "nope"), 1)
    assert f"run {base.good} has no model folder at 'nope'" in err
    assert "model" in err.split("has model folders at:")[1]  # where the model folder is
    after = _json(_run(home, "models", "show", "cancer", "--json"))
    assert [v["version"] for v in after["versions"]] == [1, 2]  # nothing registered


# -- policies, gates, promotion ------------------------------------------------------------


def test_policy_is_checked_before_it_is_stored(project: Project) -> None:
    home, folder = project.home, project.home.parent
    (folder / "policy.yaml").write_text(POLICY)
    _ok(_run(home, "models", "policy", "cancer", "--file", "policy.yaml"))
    assert _ok(_run(home, "models", "policy", "cancer")) == POLICY  # the text as written

    (folder / "bad.yaml").write_text(POLICY.replace("min_metrics", "min_metricz"))
    err = _fails(_run(home, "models", "policy", "cancer", "--file", "bad.yaml"), 2)
    assert "unknown gate 'min_metricz'" in err and "did you mean 'min_metrics'" in err
    for gate in ("min_metrics", "max_metrics", "beat_champion", "approval"):
        assert gate in err
    assert _ok(_run(home, "models", "policy", "cancer")) == POLICY  # unchanged


def test_gates_block_then_pass_then_force_and_roll_back(project: Project) -> None:
    home, folder = project.home, project.home.parent
    (folder / "policy.yaml").write_text(POLICY)
    _ok(_run(home, "models", "policy", "cancer", "--file", "policy.yaml"))

    blocked = _run(home, "models", "promote", "cancer", "1", "--alias", "production")
    err = _fails(blocked, 1)
    assert "cancer@1 cannot take alias 'production': 1 gate(s) failed" in err
    assert "min_metrics: valid_roc_auc = 0.5, needs >= 0.9" in err
    assert "FAIL" in blocked.stdout  # the gate table
    err = _fails(_run(home, "models", "show", "cancer@production"), 1)
    assert "no alias 'production'" in err

    checked = _run(home, "models", "check", "cancer", "1", "--alias", "production")
    _fails(checked, 1)
    rows = {line.split()[0]: line for line in checked.stdout.splitlines() if line.strip()}
    assert "FAIL" in rows["min_metrics"]
    assert "pass" in rows["beat_champion"] and "no current holder" in rows["beat_champion"]
    assert "pass" in rows["signature_compatible"]

    promoted = _ok(_run(home, "models", "promote", "cancer", "2", "--alias", "production"))
    assert "cancer@production -> version 2" in promoted
    assert "FAIL" not in promoted

    forced = _ok(
        _run(home, "models", "promote", "cancer", "1", "--alias", "production", "--force",
             "--reason", "hotfix")
    )  # fmt: skip
    assert "cancer@production -> version 1 (was 2)" in forced
    rows = {line.split()[0]: line for line in forced.splitlines() if line.strip()}
    assert "FAIL" in rows["min_metrics"]
    assert "FAIL" in rows["beat_champion"]  # 0.5 does not beat the forest
    assert "cancer@1 does not beat cancer@2 on cancer@test" in rows["beat_champion"]
    assert "pass" in rows["signature_compatible"]  # same inputs

    rolled = _ok(_run(home, "models", "rollback", "cancer", "--alias", "production"))
    assert "cancer@production -> version 2 (was 1)" in rolled
    shown = _json(_run(home, "models", "show", "cancer@production", "--json"))
    assert shown["version"] == 2 and shown["aliases"] == ["production"]
    assert [(g["alias"], g["passed"]) for g in shown["gate_checks"]] == [("production", True)]

    history = _ok(_run(home, "models", "history", "cancer"))
    me = getpass.getuser()
    moves = [line.split()[2:] for line in history.splitlines() if " production " in line]
    assert moves == [  # alias, action, from, to, by, forced, reason
        ["production", "promote", "-", "2", me, "-"],
        ["production", "promote", "2", "1", me, "yes", "hotfix"],
        ["production", "rollback", "1", "2", me, "-"],
    ]


def test_forced_promotion_says_so_in_text_output(project: Project) -> None:
    home = project.home
    (home.parent / "p.yaml").write_text("production: {min_metrics: {valid_roc_auc: 0.9}}\n")
    _ok(_run(home, "models", "policy", "cancer", "--file", "p.yaml"))
    out = _ok(_run(home, "models", "promote", "cancer", "1", "--force", "--reason", "hotfix"))
    assert "cancer@production -> version 1" in out
    assert "forced" in out.splitlines()[-1]


# -- roles and approvals -------------------------------------------------------------------


def test_roles_limit_who_promotes_and_approvals_gate_staging(project: Project) -> None:
    home = project.home
    _ok(_run(home, "users", "add", "bob", "--role", "viewer"))
    err = _fails(_run(home, "models", "promote", "cancer", "2", "--alias", "staging",
                      SHIPYARD_USER="bob"), 1)  # fmt: skip
    assert "'bob' has the viewer role" in err and "editor role" in err
    err = _fails(_run(home, "models", "approve", "cancer", "2", "--alias", "staging",
                      SHIPYARD_USER="bob"), 1)  # fmt: skip
    assert "'bob' has the viewer role" in err and "approver role" in err

    _ok(_run(home, "users", "add", "carol", "--role", "approver"))
    (home.parent / "policy.yaml").write_text("staging:\n  approval: {approvers: 1}\n")
    _ok(_run(home, "models", "policy", "cancer", "--file", "policy.yaml"))
    err = _fails(_run(home, "models", "promote", "cancer", "2", "--alias", "staging"), 1)
    assert "cannot take alias 'staging'" in err and "approval: 0 of 1 approval(s)" in err

    approved = _ok(_run(home, "models", "approve", "cancer", "2", "--alias", "staging",
                        SHIPYARD_USER="carol"))  # fmt: skip
    assert "carol approved cancer@2 for staging" in approved
    passed = _ok(_run(home, "models", "promote", "cancer", "2", "--alias", "staging"))
    assert "approved by carol" in passed and "cancer@staging -> version 2" in passed
    users = _json(_run(home, "users", "list", "--json", SHIPYARD_USER="carol"))
    assert {u["name"]: u["role"] for u in users["users"]} == {"bob": "viewer", "carol": "approver"}
    assert users["you"] == {"name": "carol", "role": "approver", "assigned": True}


# -- integrity: model files and the audit log ----------------------------------------------


def test_a_tampered_model_file_is_refused_on_load(project: Project) -> None:
    home = project.home
    digest = _digest(home, "cancer@2", "model.skops")
    path = home / "objects" / digest[:2] / digest[2:]
    assert path.is_file(), "objects live at <home>/objects/ab/cdef..."
    path.chmod(0o644)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))

    loaded = _python(home, "import shipyard as sy; sy.load_model('cancer@2')")
    assert loaded.returncode != 0
    last = loaded.stderr.strip().splitlines()[-1]
    assert "CorruptObjectError" in last and digest in last and "corrupt" in last

    # the CLI reads only metadata for these: they still work and show the recorded hash
    assert digest in _ok(_run(home, "models", "show", "cancer@2"))
    assert "# Model card: cancer@2" in _ok(_run(home, "models", "card", "cancer@2"))
    # a command that loads the model says what is wrong, without a traceback
    err = _fails(_run(home, "eval", project.good, "--data", "cancer@test"), 1)
    assert f"object {digest}" in err and "is corrupt" in err and "shipyard doctor" in err


def test_audit_log_records_actors_and_detects_tampering(project: Project) -> None:
    home = project.home
    me = getpass.getuser()
    _ok(_run(home, "models", "promote", "cancer", "2", "--alias", "production"))
    _ok(_run(home, "models", "promote", "cancer", "1", "--alias", "production"))
    _ok(_run(home, "models", "rollback", "cancer", "--alias", "production"))
    _ok(_run(home, "users", "add", "carol", "--role", "approver"))
    _ok(_run(home, "models", "approve", "cancer", "2", "--alias", "staging",
             SHIPYARD_USER="carol"))  # fmt: skip

    events = _json(_run(home, "audit", "log", "--entity", "cancer", "--json"))
    seen = [(e["actor"], e["action"], e["entity"]) for e in events]
    for expected in [
        (me, "model.register", "cancer@1"),
        (me, "model.register", "cancer@2"),
        (me, "alias.promote", "cancer@production"),
        (me, "alias.rollback", "cancer@production"),
        ("carol", "model.approve", "cancer@2"),
    ]:
        assert expected in seen, (expected, seen)
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert all(e["entity"] == "cancer" or e["entity"].startswith("cancer@") for e in events)
    table = _ok(_run(home, "audit", "log", "--entity", "cancer", "--actor", "carol"))
    assert "model.approve" in table and "alias.promote" not in table

    assert "audit log intact" in _ok(_run(home, "audit", "verify"))
    head = _ok(_run(home, "audit", "head")).strip()
    seq, _, digest = head.partition(":")
    assert seq.isdigit() and len(digest) == 64
    assert int(seq) == max(e["seq"] for e in events)  # the approval is the newest event

    register = next(e for e in events if e["action"] == "model.register")
    db = home / "shipyard.db"

    def sql(statement: str, *params: object) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(statement, params)
        conn.close()

    sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = ?", register["seq"])
    broken = _run(home, "audit", "verify")
    err = _fails(broken, 1)
    assert f"broken at event {register['seq']}" in err
    assert f"event {register['seq']} (model.register {register['entity']}) was edited" in err

    sql("UPDATE audit_events SET actor = ? WHERE seq = ?", register["actor"], register["seq"])
    sql("DELETE FROM audit_events WHERE seq = ?", int(seq))
    assert _run(home, "audit", "verify").returncode == 0  # put back and cut: a valid chain
    err = _fails(_run(home, "audit", "verify", "--anchor", head), 1)
    assert f"the anchor names event {seq}" in err and "removed from the end" in err


# -- lineage and model cards ---------------------------------------------------------------


def test_lineage_from_model_to_data(base: Project) -> None:
    tree = _ok(_run(base.home, "lineage", "cancer@2"))
    lines = [line.strip("│└├─ ") for line in tree.splitlines()]
    assert lines[0].startswith("model cancer@2 (sklearn")
    assert lines[1].startswith(f"run {base.good} 'good'")
    assert lines[2].startswith("dataset cancer@2")  # the train split
    assert lines[3].startswith("dataset cancer@1")  # its parent

    graph = _json(_run(base.home, "lineage", "cancer@2", "--json"))
    assert graph["model"]["ref"] == "cancer@2"
    assert graph["run"]["run_id"] == base.good and graph["run"]["name"] == "good"
    [train] = graph["datasets"]
    assert (train["ref"], train["context"]) == ("cancer@2", "training")
    assert [p["ref"] for p in train["parents"]] == ["cancer@1"]

    dot = _ok(_run(base.home, "lineage", "cancer@2", "--dot"))
    assert dot.startswith("digraph")
    assert f'"model cancer@2" -> "run {base.good[:12]}";' in dot
    assert f'"run {base.good[:12]}" -> "dataset cancer@2";' in dot
    assert '"dataset cancer@2" -> "dataset cancer@1";' in dot
    assert dot.rstrip().endswith("}")


def test_lineage_tree_shows_context_and_missing_commit(base: Project) -> None:
    tree = _ok(_run(base.home, "lineage", "cancer@2"))
    assert "dataset cancer@2 [training]" in tree
    assert "no git commit" in tree


def test_model_card_files(base: Project, tmp_path: Path) -> None:
    html, md = tmp_path / "out" / "card.html", tmp_path / "card.md"
    _ok(_run(base.home, "models", "card", "cancer@2", "--html", str(html), "--markdown", str(md)))
    page = html.read_text()
    assert "<html" in page.lower() and "cancer@2" in page
    assert "<script" not in page.lower()
    text = md.read_text()
    assert text.startswith("# Model card: cancer@2")
    assert base.good in text and "valid_roc_auc" in text and "cancer@1" in text  # lineage
    assert not list(tmp_path.rglob(".*.tmp")), "written atomically, no temp file left"
