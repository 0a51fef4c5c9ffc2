"""The pipeline spec: parsing, every kind of bad spec, the DAG, interpolation, pictures."""

from __future__ import annotations

import pickle
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.pipelines.spec import (
    KNOWN_BUILTINS,
    PipelineSpec,
    StepSpec,
    check_inputs,
    dag_dot,
    dag_text,
    interpolate,
    load_spec,
    parse_spec,
)

EXAMPLE = """\
pipeline: churn
params: {test_size: 0.2, tune_trials: 30}
on:
  dataset: customers
steps:
  ingest:   {run: "python steps/ingest.py", deps: [steps/ingest.py], outs: [data/raw.csv], dataset: customers}
  validate: {uses: shipyard.validate, dataset: customers@latest}
  split:    {uses: shipyard.split, dataset: customers@latest, params: [test_size]}
  train:    {uses: shipyard.train, needs: [split], params: [tune_trials], register: churn, with: {target: churn, models: [linear]}}
  report:   {run: "python steps/report.py ${steps.train.run_id} ${params.test_size}", needs: [train]}
  prepare:  {call: "mypkg.steps:prepare", deps: [data/raw.csv], outs: [data/clean.parquet]}
"""  # noqa: E501


def make_project(root: Path, spec: str = EXAMPLE, files: dict[str, str] | None = None) -> Path:
    """Write a spec and its helper files under ``root``; return the spec's path."""
    for name, text in {"steps/ingest.py": "print('ingest')\n", **(files or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    path = root / "shipyard.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def parse(text: str, root: Path) -> PipelineSpec:
    return parse_spec(textwrap.dedent(text), root=root)


def edges(spec: PipelineSpec) -> set[tuple[str, str]]:
    return {(up, name) for name in spec.steps for up in spec.upstream(name)}


# ---------------------------------------------------------------------------- the example


def test_the_example_parses_into_steps_params_and_triggers(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))

    assert spec.name == "churn"
    assert spec.params == {"test_size": 0.2, "tune_trials": 30}
    assert spec.triggers == ("customers",)
    assert spec.root == tmp_path.resolve()
    assert spec.path == (tmp_path / "shipyard.yaml").resolve()
    assert list(spec.steps) == ["ingest", "validate", "split", "train", "report", "prepare"]

    ingest, validate, train, prepare = (
        spec.steps[n] for n in ("ingest", "validate", "train", "prepare")
    )
    assert (ingest.kind, ingest.target) == ("run", "python steps/ingest.py")
    assert ingest.deps == ("steps/ingest.py",)
    assert ingest.outs == ("data/raw.csv",)
    assert (ingest.produces_dataset, ingest.reads_dataset) == ("customers", None)
    assert (validate.kind, validate.target) == ("uses", "shipyard.validate")
    assert (validate.produces_dataset, validate.reads_dataset) == (None, "customers")
    assert train.register == "churn"
    assert train.options == {"target": "churn", "models": ["linear"]}
    assert train.params == ("tune_trials",)
    assert train.needs == ("split",)
    assert (prepare.kind, prepare.target) == ("call", "mypkg.steps:prepare")
    assert ingest.line == 6 and prepare.line == 11
    assert (ingest.retries, ingest.retry_backoff_s, ingest.timeout_s) == (0, 1.0, None)


def test_the_example_dag_has_explicit_and_implicit_edges(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))

    assert spec.upstream("validate") == ["ingest"]  # reads the dataset ingest registers
    assert spec.upstream("split") == ["ingest"]
    assert spec.upstream("train") == ["split"]  # needs
    assert spec.upstream("report") == ["train"]
    assert spec.upstream("prepare") == ["ingest"]  # its dep is ingest's out
    assert spec.order() == ["ingest", "validate", "split", "train", "report", "prepare"]
    assert spec.downstream(["split"]) == ["split", "train", "report"]
    assert spec.downstream(["ingest"]) == spec.order()
    assert spec.step_params("split") == {"test_size": 0.2}
    # a param the command interpolates counts as one the step uses
    assert spec.step_params("report") == {"test_size": 0.2}
    assert spec.step_params("ingest") == {}


def test_to_dict_reads_back_to_the_same_spec(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    again = parse_spec(yaml.safe_dump(spec.to_dict(), sort_keys=False), root=spec.root)
    assert again.to_dict() == spec.to_dict()
    assert again.order() == spec.order()


def test_specs_and_steps_pickle_for_remote_workers(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    spec.order()  # fills the cached graph, which must pickle too
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec
    assert again.upstream("report") == ["train"]


def test_load_spec_takes_a_folder_and_says_when_there_is_no_spec(tmp_path: Path) -> None:
    make_project(tmp_path)
    assert load_spec(tmp_path).name == "churn"
    with pytest.raises(NotFoundError, match="no pipeline spec at"):
        load_spec(tmp_path / "missing.yaml")


def test_every_builtin_is_accepted(tmp_path: Path) -> None:
    steps = "\n".join(
        f"  s{i}: {{uses: {name}, dataset: d@3}}" for i, name in enumerate(KNOWN_BUILTINS)
    )
    spec = parse_spec(f"pipeline: p\nsteps:\n{steps}\n", root=tmp_path)
    assert [s.target for s in spec.steps.values()] == list(KNOWN_BUILTINS)


# ---------------------------------------------------------------------------- params


def test_params_come_from_a_file_and_params_file_overrides(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("a: 1\nb: {c: 2}\n", encoding="utf-8")
    (tmp_path / "local.yaml").write_text("a: 10\n", encoding="utf-8")
    spec = parse(
        """\
        pipeline: p
        params: params.yaml
        steps:
          s: {run: "echo ${params.b.c}", params: [a]}
        """,
        tmp_path,
    )
    assert spec.params == {"a": 1, "b": {"c": 2}}
    assert spec.step_params("s") == {"a": 1, "b.c": 2}  # dotted names reach nested values

    spec = parse(
        """\
        pipeline: p
        params: {a: 1, z: 0}
        params_file: local.yaml
        steps:
          s: {run: echo, params: [a, z]}
        """,
        tmp_path,
    )
    assert spec.step_params("s") == {"a": 10, "z": 0}


def test_on_is_a_key_not_a_yaml_boolean_and_takes_a_list(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        on: {dataset: [a, b]}
        steps:
          yes: {run: echo}
        """,
        tmp_path,
    )
    assert spec.triggers == ("a", "b")
    assert list(spec.steps) == ["yes"]


def test_step_options_are_read(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          s:
            run: ./go.sh
            retries: 2
            retry_backoff_s: 0.5
            timeout_s: 30
            env: {MODE: fast, N: 3}
            description: does things
            deps: [./src//lib/, src/lib]
        """,
        tmp_path,
    )
    step = spec.steps["s"]
    assert (step.retries, step.retry_backoff_s, step.timeout_s) == (2, 0.5, 30.0)
    assert step.env == {"MODE": "fast", "N": "3"}
    assert step.description == "does things"
    assert step.deps == ("src/lib",)  # normalised, duplicates dropped


# ---------------------------------------------------------------------------- bad specs

BAD_SPECS = [
    # (id, spec, line, fragments of the message: what was wrong and the fix)
    ("yaml-syntax", "pipeline: p\nsteps:\n  a: {run: [echo\n", 4, ["not valid YAML", "quote"]),
    ("not-a-mapping", "- a\n- b\n", 1, ["must be a mapping", "pipeline: NAME"]),
    ("missing-pipeline", "steps:\n  a: {run: echo}\n", 1, ["missing `pipeline`", "add"]),
    ("missing-steps", "pipeline: p\nparams: {a: 1}\n", 1, ["missing `steps`", "add `steps:`"]),
    ("empty-steps", "pipeline: p\nsteps:\n", 2, ["`steps` must be a mapping", "write"]),
    (
        "unknown-top-key",
        "pipeline: p\nstep:\n  a: {run: echo}\n",
        2,
        ["unknown key 'step'", "did you mean 'steps'", "allowed top-level keys are: pipeline"],
    ),
    (
        "unknown-step-key",
        "pipeline: p\nsteps:\n  a: {run: echo}\n  b:\n    run: echo\n    need: [a]\n",
        6,
        ["step 'b'", "unknown key 'need'", "did you mean 'needs'", "allowed step keys are: run"],
    ),
    (
        "no-kind",
        "pipeline: p\nsteps:\n  a:\n    deps: [x]\n",
        3,
        ["step 'a'", "give it one of `run`", "`uses`", "`call`"],
    ),
    (
        "two-kinds",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    uses: shipyard.train\n",
        5,
        ["has both `run` and `uses`", "keep only one"],
    ),
    (
        "unknown-builtin",
        "pipeline: p\nsteps:\n  a: {uses: shipyard.valdate, dataset: d}\n",
        3,
        ["unknown built-in step 'shipyard.valdate'", "did you mean 'shipyard.validate'"],
    ),
    (
        "builtin-without-prefix",
        "pipeline: p\nsteps:\n  a: {uses: split, dataset: d}\n",
        3,
        ["did you mean 'shipyard.split'"],
    ),
    (
        "bad-call",
        "pipeline: p\nsteps:\n  a: {call: mypkg.steps.prepare}\n",
        3,
        ["'module:function'", "mypkg.steps:prepare"],
    ),
    (
        "unknown-need",
        "pipeline: p\nsteps:\n  split: {run: echo}\n  train:\n    run: echo\n    needs:\n"
        "      - splt\n",
        7,
        ["step 'train'", "'splt', which is not a step", "did you mean 'split'"],
    ),
    (
        "needs-itself",
        "pipeline: p\nsteps:\n  a: {run: echo, needs: [a]}\n",
        3,
        ["cannot need itself", "remove it"],
    ),
    (
        "unknown-param",
        "pipeline: p\nparams: {test_size: 0.2}\nsteps:\n  a: {run: echo, params: [test_sise]}\n",
        4,
        ["unknown param 'test_sise'", "did you mean 'test_size'", "add it to `params`"],
    ),
    (
        "param-without-params",
        "pipeline: p\nsteps:\n  a: {run: echo, params: [x]}\n",
        3,
        ["the pipeline has no params", "params: {x: VALUE}"],
    ),
    (
        "unknown-param-reference",
        "pipeline: p\nparams: {n: 1}\nsteps:\n  a:\n    run: echo ${params.m}\n",
        5,
        ["${params.m}", "unknown param 'm'", "add it to `params`"],
    ),
    (
        "unknown-step-reference",
        "pipeline: p\nsteps:\n  a: {run: echo}\n  b: {run: 'echo ${steps.c.run_id}'}\n",
        4,
        ["${steps.c.run_id}", "'c', which is not a step"],
    ),
    (
        "step-reference-not-upstream",
        "pipeline: p\nsteps:\n  train: {run: echo}\n"
        "  report: {run: 'echo ${steps.train.run_id}'}\n",
        4,
        ["does not run before 'report'", "add `needs: [train]` to step 'report'"],
    ),
    (
        "step-reference-attribute",
        "pipeline: p\nsteps:\n  a: {run: echo}\n  b: {run: 'echo ${steps.a.id}', needs: [a]}\n",
        4,
        ["gives only `run_id`", "${steps.a.run_id}"],
    ),
    (
        "bad-reference",
        "pipeline: p\nparams: {x: 1}\nsteps:\n  a: {run: 'echo ${param.x}'}\n",
        4,
        ["`${param.x}` is not a reference", "${params.NAME}"],
    ),
    (
        "reference-in-env",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    env:\n      X: ${params.nope}\n",
        6,
        ["unknown param 'nope'"],
    ),
    (
        "cycle-by-needs",
        "pipeline: p\nsteps:\n  train: {run: echo, needs: [report]}\n"
        "  report: {run: echo, needs: [train]}\n",
        3,
        ["cycle: train -> report -> train", "remove one of these links"],
    ),
    (
        "cycle-by-files",
        "pipeline: p\nsteps:\n  a: {run: echo, deps: [y], outs: [x]}\n"
        "  b: {run: echo, deps: [x], outs: [y]}\n",
        3,
        ["cycle: a -> b -> a"],
    ),
    (
        "same-output",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [data/x.csv]}\n"
        "  b: {run: echo, outs: ['./data/x.csv']}\n",
        4,
        ["writes 'data/x.csv', which step 'a' writes too (line 3)", "give each output to one"],
    ),
    (
        "output-inside-another",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [data]}\n"
        "  b: {run: echo, outs: [data/x.csv]}\n",
        4,
        ["inside step 'a''s output folder 'data'", "give each output to one step"],
    ),
    (
        "output-holding-another",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [data/x.csv]}\n"
        "  b: {run: echo, outs: [data]}\n",
        4,
        ["a folder holding step 'a''s output 'data/x.csv'"],
    ),
    (
        "dep-is-own-out",
        "pipeline: p\nsteps:\n  a: {run: echo, deps: [data], outs: [data/x.csv]}\n",
        3,
        ["overlaps its own out", "write the result to another path"],
    ),
    (
        "same-dataset",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [x], dataset: d}\n"
        "  b: {run: echo, outs: [y], dataset: d}\n",
        4,
        ["registers dataset 'd', which step 'a' (line 3)", "one producing step"],
    ),
    (
        "absolute-path",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    deps:\n      - /etc/passwd\n",
        6,
        ["is absolute", "relative to the spec's folder"],
    ),
    (
        "dotdot-path",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [data/../../x]}\n",
        3,
        ["goes up with '..'", "inside the spec's folder"],
    ),
    (
        "project-folder",
        "pipeline: p\nsteps:\n  a: {run: echo, deps: [./]}\n",
        3,
        ["the project folder itself", "name a file or folder"],
    ),
    (
        "bad-step-name",
        "pipeline: p\nsteps:\n  my step: {run: echo}\n",
        3,
        ["step name 'my step'", "rename it (e.g. 'my_step')"],
    ),
    (
        "duplicate-step",
        "pipeline: p\nsteps:\n  a: {run: echo}\n  a: {run: ls}\n",
        4,
        ["key 'a' is given twice in `steps`", "keep only one"],
    ),
    (
        "duplicate-key-in-step",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    outs: [x]\n    outs: [y]\n",
        6,
        ["key 'outs' is given twice in `steps.a`"],
    ),
    (
        "run-dataset-with-version",
        "pipeline: p\nsteps:\n  a: {run: echo, outs: [x], dataset: d@2}\n",
        3,
        ["its first out is registered", "drop '@2'"],
    ),
    (
        "run-dataset-without-outs",
        "pipeline: p\nsteps:\n  a: {run: echo, dataset: d}\n",
        3,
        ["has no `outs`", "add `outs: [PATH]`"],
    ),
    (
        "builtin-without-dataset",
        "pipeline: p\nsteps:\n  a: {uses: shipyard.validate}\n",
        3,
        ["shipyard.validate reads a dataset", "add `dataset: NAME@latest`"],
    ),
    (
        "register-on-run",
        "pipeline: p\nsteps:\n  a: {run: echo, register: m}\n",
        3,
        ["`register` is only for `uses: shipyard.train`", "remove it"],
    ),
    (
        "with-on-run",
        "pipeline: p\nsteps:\n  a: {run: echo, with: {x: 1}}\n",
        3,
        ["`with` sets the options of a built-in", "`params`"],
    ),
    (
        "negative-retries",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    retries: -1\n",
        5,
        ["`retries` must be a whole number >= 0"],
    ),
    (
        "zero-timeout",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    timeout_s: 0\n",
        5,
        ["`timeout_s` must be a positive number of seconds"],
    ),
    (
        "env-not-text",
        "pipeline: p\nsteps:\n  a:\n    run: echo\n    env: {A: [1]}\n",
        5,
        ["`env.A` must be text or a number", "quote it"],
    ),
    (
        "missing-params-file",
        "pipeline: p\nparams: nope.yaml\nsteps:\n  a: {run: echo}\n",
        2,
        ["params file 'nope.yaml' does not exist", "create it"],
    ),
    (
        "unknown-on-key",
        "pipeline: p\non: {datasets: a}\nsteps:\n  a: {run: echo}\n",
        2,
        ["unknown key 'datasets'", "did you mean 'dataset'", "keys of `on` are: dataset"],
    ),
    (
        "bad-pipeline-name",
        "pipeline: 'my pipeline'\nsteps:\n  a: {run: echo}\n",
        1,
        ["the pipeline name must be", "rename it"],
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [pytest.param(text, line, fragments, id=case) for case, text, line, fragments in BAD_SPECS],
)
def test_a_bad_spec_is_refused_with_its_line_and_the_fix(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(text, root=tmp_path, origin="ship.yaml")
    message = caught.value.message
    assert message.startswith(f"ship.yaml line {line}"), message
    assert caught.value.details["line"] == line
    for fragment in fragments:
        assert fragment in message, message


def test_an_error_in_a_params_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(
        InvalidInputError, match=r"params\.yaml line 2: key 'a' is given twice at the top"
    ):
        parse_spec("pipeline: p\nparams: params.yaml\nsteps:\n  a: {run: echo}\n", root=tmp_path)
    (tmp_path / "params.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="a params file must be a mapping"):
        parse_spec("pipeline: p\nparams: params.yaml\nsteps:\n  a: {run: echo}\n", root=tmp_path)


def test_the_step_and_file_appear_in_load_spec_errors(tmp_path: Path) -> None:
    path = make_project(tmp_path, "pipeline: p\nsteps:\n  a: {uses: shipyard.trian}\n")
    with pytest.raises(InvalidInputError) as caught:
        load_spec(path)
    assert caught.value.message.startswith(f"{path} line 3: step 'a': unknown built-in")
    assert caught.value.details["step"] == "a"


# ---------------------------------------------------------------------------- the DAG


def test_files_make_edges_through_folders_both_ways(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          report: {run: echo, deps: [out/model.pkl, out/features]}
          fetch: {run: echo, outs: [raw]}
          features: {run: echo, deps: [raw/a.csv], outs: [out/features/f.parquet]}
          model: {run: echo, deps: [out/features], outs: [out/model.pkl]}
        """,
        tmp_path,
    )
    assert spec.upstream("features") == ["fetch"]  # its dep sits inside fetch's out folder
    assert spec.upstream("model") == ["features"]  # its dep folder holds features' out
    assert spec.upstream("report") == ["features", "model"]  # in file order
    # the first step in the file comes last: it must wait for the others
    assert spec.order() == ["fetch", "features", "model", "report"]
    assert spec.downstream(["model"]) == ["model", "report"]
    assert spec.downstream(["report", "fetch"]) == ["fetch", "features", "model", "report"]


def test_a_builtin_depends_on_the_producer_of_the_latest_version_only(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          latest: {uses: shipyard.profile, dataset: d}
          pinned: {uses: shipyard.profile, dataset: d@3}
          aliased: {uses: shipyard.profile, dataset: d@prod}
          other: {uses: shipyard.profile, dataset: e@latest}
          make: {call: "pkg.mod:make", outs: [d.csv], dataset: d}
        """,
        tmp_path,
    )
    assert spec.steps["latest"].dataset == "d@latest"
    assert edges(spec) == {("make", "latest")}
    assert spec.order() == ["pinned", "aliased", "other", "make", "latest"]


def test_order_keeps_file_order_among_independent_steps(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          c: {run: echo, needs: [a]}
          b: {run: echo}
          a: {run: echo}
          d: {run: echo, needs: [b, c]}
        """,
        tmp_path,
    )
    assert spec.order() == ["b", "a", "c", "d"]
    assert spec.ancestors("d") == {"a", "b", "c"}


def test_an_unknown_step_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    with pytest.raises(InvalidInputError, match="no step 'trian' \\(did you mean 'train'\\?\\)"):
        spec.downstream(["trian"])
    with pytest.raises(InvalidInputError, match="no step 'x'"):
        spec.upstream("x")


def test_a_reference_to_any_earlier_step_is_allowed(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          a: {run: echo}
          b: {run: echo, needs: [a]}
          c: {run: 'echo ${steps.a.run_id} ${HOME} ${N:-1}', needs: [b]}
        """,
        tmp_path,
    )
    assert spec.steps["c"].references() == [("steps", "a")]


# ---------------------------------------------------------------------------- interpolation


def test_interpolate_replaces_params_and_run_ids() -> None:
    params = {"size": 0.2, "name": "my run", "flag": True, "opt": {"lr": 0.1}, "ids": [1, 2]}
    text = (
        "train --size ${params.size} --name '${params.name}' --flag ${params.flag} "
        "--lr ${ params.opt.lr } --ids '${params.ids}' --after ${steps.prep.run_id} --home ${HOME}"
    )
    assert interpolate(text, params=params, run_ids={"prep": "r1"}, step="train") == (
        "train --size 0.2 --name 'my run' --flag true --lr 0.1 --ids '[1, 2]' --after r1 "
        "--home ${HOME}"
    )


def test_interpolate_refuses_unknown_params_and_steps_that_did_not_run() -> None:
    with pytest.raises(InvalidInputError, match=r"step 's': `\$\{params\.sise\}`.*'size'"):
        interpolate("${params.sise}", params={"size": 1}, run_ids={}, step="s")
    with pytest.raises(InvalidInputError, match=r"not upstream of 's'.*needs: \[train\]"):
        interpolate("${steps.train.run_id}", params={}, run_ids={"other": "r"}, step="s")
    with pytest.raises(InvalidInputError, match="not a reference shipyard knows"):
        interpolate("${steps.train.id}", params={}, run_ids={"train": "r"}, step="s")


# ---------------------------------------------------------------------------- missing inputs


def test_check_inputs_accepts_files_present_or_written_by_a_step(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    check_inputs(spec)  # steps/ingest.py is there; data/raw.csv is ingest's out


def test_check_inputs_names_the_step_and_the_missing_path(tmp_path: Path) -> None:
    spec = load_spec(
        make_project(
            tmp_path,
            "pipeline: p\nsteps:\n  a: {run: echo, deps: [steps/ingest.py, data/in.csv]}\n"
            "  b: {run: echo, deps: [out], outs: [y]}\n  c: {run: echo, outs: [out/z]}\n",
        )
    )
    with pytest.raises(InvalidInputError) as caught:
        check_inputs(spec)
    message = caught.value.message
    assert "step 'a' (line 3) depends on 'data/in.csv'" in message
    assert "add a step that writes it (in its `outs`) or create it" in message
    assert "'out'" not in message  # a folder a step writes into counts as written
    assert caught.value.details["missing"] == [{"step": "a", "path": "data/in.csv", "line": 3}]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.csv").write_text("x\n", encoding="utf-8")
    check_inputs(spec)


# ---------------------------------------------------------------------------- pictures


def test_dag_text_lists_each_step_with_its_upstream(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    lines = dag_text(spec).splitlines()
    assert lines[0] == "churn: 6 steps"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == spec.order()
    for name in spec.steps:
        ups = spec.upstream(name)
        assert rows[name].endswith(f"<- {', '.join(ups)}") if ups else "<-" not in rows[name]
    assert "shipyard.train" in rows["train"]
    assert "call mypkg.steps:prepare" in rows["prepare"]


_DOT_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*->\s*"((?:[^"\\]|\\.)*)";$')
_DOT_NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*\[(.*)\];$')


def _dot_outside_strings(dot: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', dot)


def test_dag_dot_is_balanced_and_has_every_edge(tmp_path: Path) -> None:
    spec = load_spec(make_project(tmp_path))
    dot = dag_dot(spec)
    bare = _dot_outside_strings(dot)
    assert bare.count("{") == bare.count("}") == 1
    assert bare.count("[") == bare.count("]")
    assert dot.startswith('digraph "churn" {') and dot.rstrip().endswith("}")
    lines = dot.splitlines()
    found = {m.groups() for line in lines if (m := _DOT_EDGE.match(line))}
    assert found == edges(spec)
    nodes = {m.group(1): m.group(2) for line in lines if (m := _DOT_NODE.match(line))}
    assert set(nodes) == set(spec.steps)
    assert all(("filled" in nodes[n]) == spec.steps[n].is_builtin for n in spec.steps)


def test_dag_dot_escapes_quotes_and_backslashes(tmp_path: Path) -> None:
    spec = parse(
        """\
        pipeline: p
        steps:
          say: {run: 'echo "hi" \\ there'}
        """,
        tmp_path,
    )
    dot = dag_dot(spec)
    assert 'say\\nrun echo \\"hi\\" \\\\ there' in dot
    assert _dot_outside_strings(dot).count('"') % 2 == 0


def test_step_spec_defaults_match_the_documented_ones() -> None:
    step = StepSpec(name="a", kind="run", target="echo")
    assert step.to_dict() == {"run": "echo"}
    assert (step.produces_dataset, step.reads_dataset, step.reads_latest) == (None, None, False)
