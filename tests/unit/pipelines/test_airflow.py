"""The Airflow export: a DAG file with one BashOperator task per step, wired like the spec."""

from __future__ import annotations

import ast
import importlib.util
import runpy
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.airflow import airflow_dag
from shipyard.pipelines.spec import PipelineSpec, parse_spec

SPEC = """\
pipeline: churn
params: {test_size: 0.2}
steps:
  ingest:   {run: "python steps/ingest.py", outs: [data/raw.csv], dataset: customers, retries: 2,
             retry_backoff_s: 5}
  validate: {uses: shipyard.validate, dataset: customers@latest}
  split:    {uses: shipyard.split, dataset: customers@latest, params: [test_size]}
  train:    {uses: shipyard.train, needs: [split], register: churn}
  report:   {run: "python steps/report.py ${steps.train.run_id}", needs: [train, validate],
             description: the weekly report}
  2-clean:  {call: "mypkg.steps:clean", deps: [data/raw.csv], outs: [data/clean.csv]}
"""


@pytest.fixture
def spec(tmp_path: Path) -> PipelineSpec:
    return parse_spec(SPEC, root=tmp_path)


def spec_edges(spec: PipelineSpec) -> set[tuple[str, str]]:
    return {(up, name) for name in spec.steps for up in spec.upstream(name)}


def _subscript_key(node: ast.expr) -> str:
    assert isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
    assert node.value.id == "tasks" and isinstance(node.slice, ast.Constant)
    return str(node.slice.value)


def read_tasks(source: str) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    """The ``tasks[...] = BashOperator(...)`` keywords and the ``>>`` edges of a DAG file."""
    tasks: dict[str, dict[str, Any]] = {}
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "BashOperator"
        ):
            keywords = {str(k.arg): k.value for k in node.value.keywords}
            tasks[_subscript_key(node.targets[0])] = {
                name: ast.literal_eval(value)
                for name, value in keywords.items()
                if name in ("task_id", "bash_command", "retries", "doc_md")
            }
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            found.add((_subscript_key(node.left), _subscript_key(node.right)))
    return tasks, found


def dag_keywords(source: str) -> dict[str, Any]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DAG":
            return {str(k.arg): k.value for k in node.keywords}
    raise AssertionError("no DAG(...) call")


def test_the_file_compiles_with_a_task_per_step_and_every_edge(spec: PipelineSpec) -> None:
    source = airflow_dag(spec, spec_path="/srv/churn/shipyard.yaml")
    compile(source, "churn_dag.py", "exec")
    tasks, found = read_tasks(source)

    assert list(tasks) == spec.order()
    assert found == spec_edges(spec)
    assert ("validate", "report") in found and ("ingest", "2-clean") in found
    for name, task in tasks.items():
        assert task["task_id"] == name
        assert shlex.split(task["bash_command"]) == [
            "shipyard", "pipeline", "run", "--file", "/srv/churn/shipyard.yaml", "--step", name,
            "--no-retries",  # Airflow retries the task
        ]  # fmt: skip
        assert task["retries"] == spec.steps[name].retries
    assert tasks["report"]["doc_md"] == "the weekly report"


def test_the_dag_defaults(spec: PipelineSpec) -> None:
    keywords = dag_keywords(airflow_dag(spec, spec_path="shipyard.yaml"))
    assert ast.literal_eval(keywords["dag_id"]) == "shipyard_churn"
    assert ast.literal_eval(keywords["schedule"]) is None
    assert ast.literal_eval(keywords["catchup"]) is False
    assert "start_date" in keywords


def test_schedule_dag_id_and_the_shipyard_command_are_used(spec: PipelineSpec) -> None:
    source = airflow_dag(
        spec,
        spec_path="/srv/my project/it's.yaml",
        shipyard="/opt/venv/bin/python -m shipyard",
        schedule="0 3 * * *",
        dag_id="churn.nightly",
    )
    keywords = dag_keywords(source)
    assert ast.literal_eval(keywords["dag_id"]) == "churn.nightly"
    assert ast.literal_eval(keywords["schedule"]) == "0 3 * * *"
    tasks, _ = read_tasks(source)
    assert shlex.split(tasks["train"]["bash_command"]) == [
        "/opt/venv/bin/python", "-m", "shipyard", "pipeline", "run",
        "--file", "/srv/my project/it's.yaml", "--step", "train", "--no-retries",
    ]  # fmt: skip


def test_the_default_dag_id_is_sanitised(tmp_path: Path) -> None:
    spec = parse_spec("pipeline: churn-é.v2\nsteps:\n  a: {run: echo}\n", root=tmp_path)
    keywords = dag_keywords(airflow_dag(spec, spec_path="s.yaml"))
    assert ast.literal_eval(keywords["dag_id"]) == "shipyard_churn-_.v2"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dag_id": "my dag"}, "dag_id 'my dag' may hold only"),
        ({"shipyard": "  "}, "the shipyard command is empty"),
        ({"shipyard": "'unclosed"}, "does not parse as a shell command"),
        ({"spec_path": "/srv/{{ ds }}/shipyard.yaml"}, "holds a Jinja mark"),
    ],
)
def test_unusable_options_are_refused(
    spec: PipelineSpec, options: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        airflow_dag(spec, **{"spec_path": "s.yaml", **options})


# ---------------------------------------------------------------------------- running the file


class _FakeDag:
    """Just enough of Airflow's DAG for the generated file: a context with tasks."""

    current: _FakeDag | None = None

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.tasks: dict[str, _FakeTask] = {}

    def __enter__(self) -> _FakeDag:
        _FakeDag.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _FakeDag.current = None


class _FakeTask:
    def __init__(self, *, task_id: str, **options: Any) -> None:
        assert _FakeDag.current is not None, "task made outside `with DAG(...)`"
        self.task_id = task_id
        self.options = options
        self.upstream: set[str] = set()
        _FakeDag.current.tasks[task_id] = self

    def __rshift__(self, other: _FakeTask) -> _FakeTask:
        other.upstream.add(self.task_id)
        return other


def _fake_airflow(monkeypatch: pytest.MonkeyPatch, *, version: int) -> None:
    """Install stand-in ``airflow`` modules laid out like Airflow 2 or Airflow 3."""
    modules: dict[str, types.ModuleType] = {"airflow": types.ModuleType("airflow")}
    if version == 2:
        modules["airflow"].DAG = _FakeDag  # type: ignore[attr-defined]
        modules["airflow.operators"] = types.ModuleType("airflow.operators")
        modules["airflow.operators.bash"] = types.ModuleType("airflow.operators.bash")
        modules["airflow.operators.bash"].BashOperator = _FakeTask  # type: ignore[attr-defined]
    else:
        modules["airflow.sdk"] = types.ModuleType("airflow.sdk")
        modules["airflow.sdk"].DAG = _FakeDag  # type: ignore[attr-defined]
        for name in ("providers", "providers.standard", "providers.standard.operators"):
            modules[f"airflow.{name}"] = types.ModuleType(f"airflow.{name}")
        bash = types.ModuleType("airflow.providers.standard.operators.bash")
        bash.BashOperator = _FakeTask  # type: ignore[attr-defined]
        modules[bash.__name__] = bash
    for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
        monkeypatch.delitem(sys.modules, name)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize("version", [2, 3])
def test_the_file_runs_against_the_airflow_2_and_3_layouts(
    spec: PipelineSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    _fake_airflow(monkeypatch, version=version)
    path = tmp_path / "churn_dag.py"
    path.write_text(airflow_dag(spec, spec_path="/srv/churn/shipyard.yaml"), encoding="utf-8")

    dag = runpy.run_path(str(path))["dag"]

    assert isinstance(dag, _FakeDag)
    assert dag.options["dag_id"] == "shipyard_churn"
    assert dag.options["catchup"] is False
    assert dag.options["start_date"].tzinfo is not None
    assert list(dag.tasks) == spec.order()
    assert {(up, name) for name, t in dag.tasks.items() for up in t.upstream} == spec_edges(spec)
    ingest = dag.tasks["ingest"].options
    assert (ingest["retries"], ingest["retry_delay"].total_seconds()) == (2, 5.0)


@pytest.mark.skipif(
    importlib.util.find_spec("airflow") is None,
    reason="Airflow is not installed (optional: `pip install apache-airflow` to run this test)",
)
def test_the_file_imports_with_real_airflow(
    spec: PipelineSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    path = tmp_path / "churn_dag.py"
    path.write_text(airflow_dag(spec, spec_path="/srv/churn/shipyard.yaml"), encoding="utf-8")

    dag = runpy.run_path(str(path))["dag"]

    assert dag.dag_id == "shipyard_churn"
    assert set(dag.task_ids) == set(spec.steps)
    for name in spec.steps:
        assert set(dag.get_task(name).upstream_task_ids) == set(spec.upstream(name))
    assert dag.get_task("ingest").retries == 2
