"""What a pipeline step's process runs for ``call:`` functions and ``uses:`` built-ins.

``python -m shipyard.pipelines.worker PAYLOAD`` (JSON, written by the runner) opens the
store named by the ``SHIPYARD_*`` variables the runner set, runs the step, and prints one
``@@SHIPYARD_STEP_RESULT {json}`` line: the run downstream steps see as this step's run
(for ``shipyard.train``, the training run) and what the step made. Exit status 0 on
success; a step's failure is printed (no traceback for a ``ShipyardError``) with status 1.

Built-ins:

- ``shipyard.validate``: the dataset version against its expectations (``with:
  {expectations: FILE}`` optional); fails the step when a check fails.
- ``shipyard.split``: train/valid/test versions (``with: {method, target, test, valid,
  seed}``; a ``test_size`` param is the test share).
- ``shipyard.train``: ``sy.train`` on the dataset (``with: {target, models, cv, metric}``;
  a ``tune_trials`` or ``tune`` param is the Optuna trials); ``register: NAME`` registers
  the best model.
- ``shipyard.profile``: the HTML report of the dataset into the step's first output.
- ``shipyard.clean``: ``with: {steps: [...]}`` cleaning steps; the result becomes a version.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError, ShipyardError

RESULT_MARK = "@@SHIPYARD_STEP_RESULT "


def _dataset(payload: Mapping[str, Any]) -> str:
    ref = payload.get("dataset")
    if not ref:
        raise InvalidInputError(
            f"built-in step {payload['name']!r} ({payload['target']}) needs dataset: NAME@VERSION"
        )
    return str(ref)


def _validate(payload: Mapping[str, Any]) -> dict[str, Any]:
    from shipyard import data

    options = payload["options"]
    report = data.catalog().validate(_dataset(payload), options.get("expectations"))
    for result in report.results:
        print(f"{'ok  ' if result.passed else 'FAIL'} {result.message}")
    if not report.passed:
        raise InvalidInputError(
            f"{len(report.failures)} of {len(report.results)} check(s) failed on "
            f"{_dataset(payload)}"
        )
    return {"checks": len(report.results)}


def _split(payload: Mapping[str, Any]) -> dict[str, Any]:
    from shipyard import data

    options, params = dict(payload["options"]), payload["params"]
    test = float(params.get("test_size", options.pop("test", 0.2)))
    made, leakage = data.catalog().split(
        _dataset(payload), method=options.get("method", "random"), target=options.get("target"),
        time_column=options.get("time_column"), group_column=options.get("group_column"),
        test=test, valid=float(options.get("valid", 0.0)), seed=int(options.get("seed", 0)),
        run_id=payload["run_id"],
    )  # fmt: skip
    for part, version in made.items():
        print(f"{part}: {version.ref} ({version.num_rows} rows)")
    if not leakage.ok:
        print(f"warning: the parts share rows or groups: {leakage}")
    return {"versions": {p: v.ref for p, v in made.items()}, "leakage_free": leakage.ok}


def _train(payload: Mapping[str, Any]) -> dict[str, Any]:
    import shipyard as sy

    options, params = payload["options"], payload["params"]
    target = options.get("target")
    if not target:
        raise InvalidInputError(
            f"step {payload['name']!r}: shipyard.train needs with: {{target: COLUMN}}"
        )
    data = _dataset(payload)
    if "@" not in data:
        data = f"{data}@train"
    tune = int(params.get("tune_trials", params.get("tune", options.get("tune", 0))))
    models = options.get("models") or ("linear", "random_forest")
    result = sy.train(data, str(target), models=models, tune=tune, cv=int(options.get("cv", 3)),
                      metric=options.get("metric"), seed=int(options.get("seed", 0)),
                      run_name=f"{payload['pipeline']}: {payload['name']}",
                      progress=print)  # fmt: skip
    out: dict[str, Any] = {
        "run_id": result.run_id,
        "best_run_id": result.best_run_id,
        "metric": result.metric,
        "score": result.best.scores[result.metric][0],
    }
    if payload.get("register"):
        version = sy.register_model(result.best_run_id, str(payload["register"]),
                                    description=f"pipeline {payload['pipeline']}")  # fmt: skip
        print(f"registered {version.ref}")
        out["model_version"] = version.ref
    return out


def _profile(payload: Mapping[str, Any]) -> dict[str, Any]:
    from shipyard import data

    html = data.catalog().report_html(_dataset(payload), target=payload["options"].get("target"))
    outs = payload["outs"]
    if outs:
        path = Path(payload["root"]) / outs[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    return {}


def _clean(payload: Mapping[str, Any]) -> dict[str, Any]:
    from shipyard import data

    version, _report = data.catalog().clean(_dataset(payload), payload["options"].get("steps", []))
    print(f"cleaned: {version.ref}")
    return {"dataset_version": version.ref}


BUILTINS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "shipyard.validate": _validate,
    "shipyard.split": _split,
    "shipyard.train": _train,
    "shipyard.profile": _profile,
    "shipyard.clean": _clean,
}


def _call(payload: Mapping[str, Any]) -> dict[str, Any]:
    module_name, _, function_name = str(payload["target"]).partition(":")
    sys.path.insert(0, str(payload["root"]))
    function = getattr(importlib.import_module(module_name), function_name)
    params = dict(payload["params"])
    accepted = inspect.signature(function).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs = params if takes_all else {k: v for k, v in params.items() if k in accepted}
    value = function(**kwargs)
    return value if isinstance(value, dict) else {}


def main(argv: list[str] | None = None) -> int:
    payload = json.loads((argv or sys.argv[1:])[0])
    try:
        if payload["kind"] == "call":
            result = _call(payload)
        else:
            result = BUILTINS[payload["target"]](payload)
    except ShipyardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
