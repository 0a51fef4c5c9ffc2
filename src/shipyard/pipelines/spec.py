"""The pipeline spec: ``shipyard.yaml`` parsed, checked and turned into a DAG of steps.

A spec names a pipeline, its params and its steps, in the spirit of DVC's ``dvc.yaml``::

    pipeline: churn
    params: {test_size: 0.2, tune_trials: 30}   # or `params: params.yaml`; `params_file:` overrides
    on:
      dataset: customers                        # rerun when a new version lands (or a list)
    steps:
      ingest:   {run: "python steps/ingest.py", deps: [steps/ingest.py], outs: [data/raw.csv],
                 dataset: customers}
      validate: {uses: shipyard.validate, dataset: customers@latest}
      split:    {uses: shipyard.split, dataset: customers@latest, params: [test_size]}
      train:    {uses: shipyard.train, needs: [split], params: [tune_trials], register: churn}
      report:   {run: "python steps/report.py ${steps.train.run_id}", needs: [train]}
      prepare:  {call: "mypkg.steps:prepare", deps: [data/raw.csv], outs: [data/clean.parquet]}

A step is exactly one of ``run`` (a shell command), ``uses`` (a built-in step, one of
:data:`KNOWN_BUILTINS`) or ``call`` (a Python function, ``module:function``). Its
upstream steps are those it ``needs``, those whose ``outs`` it reads through ``deps``,
and, for a built-in reading ``NAME@latest``, the step that registers dataset ``NAME``.

:func:`parse_spec` checks everything before anything runs (YAML syntax, keys, built-in
names, params, references, cycles, two steps writing one output, paths) and raises
:class:`~shipyard.core.errors.InvalidInputError` naming the file, the line, the step,
what was wrong and how to fix it. :func:`check_inputs` checks, just before a run, that
the files no step writes are there.
"""

from __future__ import annotations

import dataclasses
import difflib
import heapq
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.validation import NAME_MAX
from shipyard.core.yamltext import load_yaml
from shipyard.pipelines._spec_read import (
    LATEST,
    REFERENCE_HELP,
    TOP_KEYS,
    Where,
    dataset_field,
    env_field,
    kind_of,
    lookup_param,
    names_field,
    pipeline_name,
    project_path,
    read_params,
    read_triggers,
    render_value,
    scan_references,
    seconds_field,
    suggest,
    text_field,
    unknown_keys,
    unknown_param,
)

__all__ = [
    "KNOWN_BUILTINS",
    "PipelineSpec",
    "StepSpec",
    "check_inputs",
    "dag_dot",
    "dag_text",
    "interpolate",
    "load_spec",
    "parse_spec",
]

KNOWN_BUILTINS: tuple[str, ...] = (
    "shipyard.validate",
    "shipyard.split",
    "shipyard.train",
    "shipyard.clean",
    "shipyard.profile",
)
"""The built-in steps a ``uses:`` may name."""

# Built-ins that read a dataset and so need `dataset: NAME@VERSION`; train may read the
# split an upstream step made instead.
_READS_DATASET = frozenset(KNOWN_BUILTINS) - {"shipyard.train"}
_KINDS = ("run", "uses", "call")
_STEP_KEYS = (
    *_KINDS,
    "description",
    "deps",
    "outs",
    "dataset",
    "params",
    "needs",
    "register",
    "with",
    "retries",
    "retry_backoff_s",
    "timeout_s",
    "env",
)
_STEP_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CALL = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


# ---------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class StepSpec:
    """One step of a pipeline, as written in the spec (paths normalised).

    ``kind`` is ``"run"``, ``"uses"`` or ``"call"`` and ``target`` the shell command,
    the built-in's name or ``"module:function"``. ``options`` holds the ``with:``
    mapping of a built-in; ``line`` is the spec line the step starts on.
    """

    name: str
    kind: str
    target: str
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    dataset: str | None = None
    params: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    register: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    retry_backoff_s: float = 1.0
    timeout_s: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    line: int = 0

    @property
    def is_builtin(self) -> bool:
        """True for a ``uses:`` step."""
        return self.kind == "uses"

    @property
    def produces_dataset(self) -> str | None:
        """The dataset a ``run``/``call`` step registers its first out as (None for built-ins)."""
        return None if self.is_builtin else self.dataset

    @property
    def reads_dataset(self) -> str | None:
        """The name of the dataset a built-in reads (``"customers"`` from ``customers@latest``)."""
        if not self.is_builtin or self.dataset is None:
            return None
        return self.dataset.partition("@")[0]

    @property
    def reads_latest(self) -> bool:
        """True when a built-in reads the latest version (``NAME`` or ``NAME@latest``)."""
        if not self.is_builtin or self.dataset is None:
            return False
        return self.dataset.partition("@")[2] in ("", LATEST)

    def references(self) -> list[tuple[str, str]]:
        """The ``${...}`` references of the command and env values: ``("params", NAME)``
        and ``("steps", NAME)`` pairs, each once, in the order written."""
        found: list[tuple[str, str]] = []
        for text in self._interpolated_texts():
            for ref in scan_references(text):
                pair = (ref.kind, ref.name)
                if ref.kind in ("params", "steps") and pair not in found:
                    found.append(pair)
        return found

    def _interpolated_texts(self) -> list[str]:
        texts = [self.target] if self.kind == "run" else []
        return texts + list(self.env.values())

    def to_dict(self) -> dict[str, Any]:
        """The step as it would be written in a spec (defaults left out)."""
        written = {
            "description": self.description or None, "deps": list(self.deps) or None,
            "outs": list(self.outs) or None, "dataset": self.dataset,
            "params": list(self.params) or None, "needs": list(self.needs) or None,
            "register": self.register, "with": dict(self.options) or None,
            "retries": self.retries or None, "timeout_s": self.timeout_s,
            "retry_backoff_s": None if self.retry_backoff_s == 1.0 else self.retry_backoff_s,
            "env": dict(self.env) or None,
        }  # fmt: skip
        return {self.kind: self.target, **{k: v for k, v in written.items() if v is not None}}


@dataclass(frozen=True)
class PipelineSpec:
    """A checked pipeline: its params, its steps in file order, and the DAG between them.

    ``root`` is the folder ``deps`` and ``outs`` are relative to; ``path`` the spec file
    (None when parsed from text); ``triggers`` the datasets whose new versions rerun it.
    """

    name: str
    params: Mapping[str, Any]
    steps: Mapping[str, StepSpec]
    triggers: tuple[str, ...]
    root: Path
    path: Path | None
    description: str = ""

    @cached_property
    def _upstream(self) -> dict[str, list[str]]:
        return {name: _direct_upstream(self.steps, self.steps[name]) for name in self.steps}

    def upstream(self, step: str) -> list[str]:
        """The steps ``step`` directly depends on, in file order.

        They are the steps it ``needs``, the steps whose ``outs`` are (or hold, or sit
        inside) one of its ``deps``, and for a built-in reading ``NAME@latest`` the step
        that registers dataset ``NAME``.

        Raises:
            InvalidInputError: no step is called ``step``.
        """
        return list(self._upstream[self._known(step)])

    def order(self) -> list[str]:
        """Every step, each after all of its upstream steps; ties keep file order."""
        return _topological(self.steps, self._upstream)

    def ancestors(self, step: str) -> set[str]:
        """Every step ``step`` depends on, directly or not."""
        seen: set[str] = set()
        stack = list(self._upstream[self._known(step)])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self._upstream[name])
        return seen

    def downstream(self, names: Iterable[str]) -> list[str]:
        """``names`` and every step that depends on one of them, directly or not, in order.

        Example: ``spec.downstream(["train"])`` -> ``["train", "report"]``.

        Raises:
            InvalidInputError: a name is not a step.
        """
        wanted = {self._known(name) for name in names}
        dependants: dict[str, list[str]] = {name: [] for name in self.steps}
        for name, ups in self._upstream.items():
            for up in ups:
                dependants[up].append(name)
        stack = list(wanted)
        while stack:
            for child in dependants[stack.pop()]:
                if child not in wanted:
                    wanted.add(child)
                    stack.append(child)
        return [name for name in self.order() if name in wanted]

    def step_params(self, step: str) -> dict[str, Any]:
        """The params a step uses, name -> value: those it lists in ``params`` and those
        its command or env interpolate with ``${params.NAME}``.

        Raises:
            InvalidInputError: no step is called ``step``.
        """
        spec = self.steps[self._known(step)]
        names = list(spec.params)
        names += [name for kind, name in spec.references() if kind == "params"]
        return {name: lookup_param(self.params, name)[1] for name in dict.fromkeys(names)}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data that :func:`parse_spec` reads back (params inlined)."""
        out: dict[str, Any] = {"pipeline": self.name}
        if self.description:
            out["description"] = self.description
        if self.params:
            out["params"] = dict(self.params)
        if self.triggers:
            out["on"] = {"dataset": list(self.triggers)}
        out["steps"] = {name: step.to_dict() for name, step in self.steps.items()}
        return out

    def _known(self, step: str) -> str:
        if step not in self.steps:
            raise InvalidInputError(
                f"pipeline {self.name!r} has no step {step!r}{suggest(step, self.steps)}; "
                f"its steps are: {', '.join(self.steps)}",
                details={"pipeline": self.name, "step": step},
            )
        return step


def _overlap(a: str, b: str) -> bool:
    """Same path, or one is a folder holding the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _direct_upstream(steps: Mapping[str, StepSpec], step: StepSpec) -> list[str]:
    ups = []
    for other in steps.values():
        if other.name == step.name:
            continue
        if (
            other.name in step.needs
            or any(_overlap(out, dep) for out in other.outs for dep in step.deps)
            or (
                step.reads_latest
                and other.produces_dataset is not None
                and other.produces_dataset == step.reads_dataset
            )
        ):
            ups.append(other.name)
    return ups


def _topological(steps: Mapping[str, StepSpec], upstream: Mapping[str, list[str]]) -> list[str]:
    index = {name: i for i, name in enumerate(steps)}
    waiting = {name: len(set(ups)) for name, ups in upstream.items()}
    dependants: dict[str, list[str]] = {name: [] for name in steps}
    for name, ups in upstream.items():
        for up in set(ups):
            dependants[up].append(name)
    ready = [index[name] for name, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    names = list(steps)
    order = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in dependants[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, index[child])
    return order


def _find_cycle(steps: Mapping[str, StepSpec], upstream: Mapping[str, list[str]]) -> list[str]:
    """A cycle as ``[a, b, ..., a]`` (each step feeding the next), or [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in steps:
        if start in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(upstream[start]))]
        state[start] = 1
        path.append(start)
        while stack:
            name, ups = stack[-1]
            for up in ups:
                if state.get(up) == 1:  # `name` depends on `up`, which is on the path
                    cycle = path[path.index(up) :]
                    return [*cycle, up]
                if up not in state:
                    state[up] = 1
                    path.append(up)
                    stack.append((up, iter(upstream[up])))
                    break
            else:
                state[name] = 2
                path.pop()
                stack.pop()
    return []


# ---------------------------------------------------------------------------- loading


def load_spec(path: str | os.PathLike[str] = "shipyard.yaml") -> PipelineSpec:
    """Read and check a pipeline spec; its folder is the root of ``deps`` and ``outs``.

    Args:
        path: the spec file, or a folder holding ``shipyard.yaml``.

    Returns:
        The checked :class:`PipelineSpec`.

    Raises:
        NotFoundError: there is no such file.
        InvalidInputError: the spec is not valid (the message names the line and the fix).

    Example::

        spec = load_spec("shipyard.yaml")
        for name in spec.order(): ...
    """
    file = Path(path)
    if file.is_dir():
        file = file / "shipyard.yaml"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"no pipeline spec at {str(file)!r}; write one (see `shipyard pipeline --help`) "
            "or pass the path of yours",
            details={"path": str(file)},
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8",
            details={"origin": str(file)},
        ) from None
    spec = parse_spec(text, root=file.parent.resolve(), origin=str(file))
    return dataclasses.replace(spec, path=file.resolve())


def parse_spec(text: str, *, root: Path, origin: str = "shipyard.yaml") -> PipelineSpec:
    """Parse and check the text of a pipeline spec.

    Args:
        text: the YAML text.
        root: the folder ``deps``, ``outs`` and a params file are relative to.
        origin: the file name messages give.

    Returns:
        The checked :class:`PipelineSpec` (``path`` None).

    Raises:
        InvalidInputError: the YAML, a key, a step, a reference or the DAG is not valid;
            the message names ``origin``, the line, the step and the fix.

    Example::

        spec = parse_spec("pipeline: p\\nsteps:\\n  a: {run: echo hi}\\n", root=Path("."))
    """
    data, node = load_yaml(text, origin)
    at = Where(origin, node)
    if not isinstance(data, dict):
        raise at.fail(
            (),
            f"the spec must be a mapping with `pipeline:` and `steps:`, got {kind_of(data)}; "
            "start the file with `pipeline: NAME` and list the steps under `steps:`",
        )
    unknown_keys(at, (), data, TOP_KEYS, what="top-level keys")
    name = pipeline_name(at, data)
    params = read_params(at, data, root)
    triggers = read_triggers(at, data.get("on"))
    raw_steps = data.get("steps")
    if "steps" not in data:
        raise at.fail((), "missing `steps`; add `steps:` with at least one step under it")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise at.fail(
            ("steps",),
            f"`steps` must be a mapping of step names to steps, got {kind_of(raw_steps)}; "
            'write e.g. `steps:\\n  train: {run: "python train.py"}`',
        )
    steps: dict[str, StepSpec] = {}
    for step_name, raw in raw_steps.items():
        steps[step_name] = _step(at, step_name, raw, params)
    _check_needs(at, steps)
    _check_outputs(at, steps)
    spec = PipelineSpec(
        name=name,
        params=params,
        steps=steps,
        triggers=triggers,
        root=Path(root),
        path=None,
        description=text_field(at, ("description",), data.get("description"), "description"),
    )
    cycle = _find_cycle(steps, spec._upstream)
    if cycle:
        raise at.fail(
            ("steps", cycle[0]),
            f"the steps form a cycle: {' -> '.join(reversed(cycle))} (each feeds the next "
            "through `needs`, deps/outs or a dataset); remove one of these links",
            step=cycle[0],
            cycle=list(reversed(cycle)),
        )
    _check_references(at, spec)
    return spec


# ---------------------------------------------------------------------------- steps


def _step(at: Where, name: object, raw: object, params: Mapping[str, Any]) -> StepSpec:
    path: tuple[str | int, ...] = ("steps", str(name))
    if not isinstance(name, str):
        raise at.fail(path, f"step names must be text, got {kind_of(name)}; quote it: '{name}'")
    if not _STEP_NAME.fullmatch(name) or len(name) > NAME_MAX:
        fixed = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:NAME_MAX] or "step"
        raise at.fail(
            path,
            f"step name {name!r} may hold only letters, digits, '_' and '-'; "
            f"rename it (e.g. {fixed!r})",
        )
    if not isinstance(raw, dict):
        raise at.fail(
            path,
            f'a step must be a mapping like `{{run: "python {name}.py"}}`, got {kind_of(raw)}',
            step=name,
        )
    unknown_keys(at, path, raw, _STEP_KEYS, what="step keys", step=name)
    kinds = [key for key in _KINDS if key in raw]
    if not kinds:
        raise at.fail(
            path,
            "says nothing to do; give it one of `run` (a shell command), `uses` (a built-in: "
            f"{', '.join(KNOWN_BUILTINS)}) or `call` (a Python function, 'module:function')",
            step=name,
        )
    if len(kinds) > 1:
        raise at.fail(
            (*path, kinds[1]),
            f"has both {' and '.join(f'`{k}`' for k in kinds)}; keep only one (a step is a "
            "shell command, a built-in or a Python function)",
            step=name,
        )
    kind = kinds[0]
    target = raw[kind]
    if not isinstance(target, str) or not target.strip():
        raise at.fail(
            (*path, kind), f"`{kind}` must be non-empty text, got {kind_of(target)}", step=name
        )
    target = target.strip()
    if kind == "uses" and target not in KNOWN_BUILTINS:
        close = difflib.get_close_matches(target, KNOWN_BUILTINS, n=1, cutoff=0.5)
        if f"shipyard.{target}" in KNOWN_BUILTINS:
            close = [f"shipyard.{target}"]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise at.fail(
            (*path, kind),
            f"unknown built-in step {target!r}; {hint}the built-ins are: "
            f"{', '.join(KNOWN_BUILTINS)}",
            step=name,
        )
    if kind == "call" and not _CALL.fullmatch(target):
        raise at.fail(
            (*path, kind),
            f"`call` must be 'module:function' (e.g. 'mypkg.steps:prepare'), got {target!r}",
            step=name,
        )

    deps = tuple(
        dict.fromkeys(
            project_path(at, (*path, "deps", i), dep, what="dep", step=name)
            for i, dep in enumerate(names_field(at, (*path, "deps"), raw.get("deps"), "deps", name))
        )
    )
    outs = tuple(
        dict.fromkeys(
            project_path(at, (*path, "outs", i), out, what="out", step=name)
            for i, out in enumerate(names_field(at, (*path, "outs"), raw.get("outs"), "outs", name))
        )
    )
    dataset = dataset_field(
        at,
        path,
        name=name,
        kind=kind,
        value=raw.get("dataset"),
        outs=outs,
        required=target if target in _READS_DATASET else None,
    )
    step_params = names_field(at, (*path, "params"), raw.get("params"), "params", name)
    for i, param in enumerate(step_params):
        if not lookup_param(params, param)[0]:
            raise at.fail((*path, "params", i), unknown_param(param, params), step=name)
    needs = names_field(at, (*path, "needs"), raw.get("needs"), "needs", name)

    register = raw.get("register")
    if register is not None:
        if target != "shipyard.train":
            raise at.fail(
                (*path, "register"),
                "`register` is only for `uses: shipyard.train` (it names the model the trained "
                "model is registered as); remove it or register from your own code",
                step=name,
            )
        if not isinstance(register, str) or not register.strip() or len(register) > NAME_MAX:
            raise at.fail(
                (*path, "register"),
                f"`register` must be a model name, got {kind_of(register)}",
                step=name,
            )
    options = raw.get("with")
    if options is not None:
        if kind != "uses":
            raise at.fail(
                (*path, "with"),
                "`with` sets the options of a built-in step; a `run` or `call` step takes its "
                "values from `params` (and `${params.NAME}` in commands)",
                step=name,
            )
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise at.fail(
                (*path, "with"),
                f"`with` must be a mapping of option names to values, got {kind_of(options)}",
                step=name,
            )

    retries = raw.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise at.fail(
            (*path, "retries"),
            f"`retries` must be a whole number >= 0 (the tries after the first), got "
            f"{kind_of(retries)}",
            step=name,
        )
    backoff = raw.get("retry_backoff_s", 1.0)
    backoff = seconds_field(
        at, (*path, "retry_backoff_s"), backoff, "retry_backoff_s", name, positive=False
    )
    timeout = raw.get("timeout_s")
    if timeout is not None:
        timeout = seconds_field(at, (*path, "timeout_s"), timeout, "timeout_s", name, positive=True)

    return StepSpec(
        name=name,
        kind=kind,
        target=target,
        deps=deps,
        outs=outs,
        dataset=dataset,
        params=step_params,
        needs=needs,
        register=register.strip() if isinstance(register, str) else None,
        options=dict(options or {}),
        retries=retries,
        retry_backoff_s=backoff,
        timeout_s=timeout,
        env=env_field(at, (*path, "env"), raw.get("env"), name),
        description=text_field(
            at, (*path, "description"), raw.get("description"), "description", name
        ),
        line=at.line(path) or 0,
    )


def _check_needs(at: Where, steps: Mapping[str, StepSpec]) -> None:
    for step in steps.values():
        for i, need in enumerate(step.needs):
            if need == step.name:
                raise at.fail(
                    ("steps", step.name, "needs", i),
                    "a step cannot need itself; remove it from `needs`",
                    step=step.name,
                )
            if need not in steps:
                raise at.fail(
                    ("steps", step.name, "needs", i),
                    f"`needs` names {need!r}, which is not a step{suggest(need, steps)}; "
                    f"the steps are: {', '.join(steps)}",
                    step=step.name,
                )


def _check_outputs(at: Where, steps: Mapping[str, StepSpec]) -> None:
    written: list[tuple[str, StepSpec, int]] = []
    registered: dict[str, StepSpec] = {}
    for step in steps.values():
        for i, out in enumerate(step.outs):
            for other_out, other, _ in written:
                if other is step or not _overlap(out, other_out):
                    continue
                relation = (
                    "which step {o!r} writes too"
                    if out == other_out
                    else "which is inside step {o!r}'s output folder {p!r}"
                    if out.startswith(other_out + "/")
                    else "a folder holding step {o!r}'s output {p!r}"
                )
                raise at.fail(
                    ("steps", step.name, "outs", i),
                    f"writes {out!r}, {relation.format(o=other.name, p=other_out)} (line "
                    f"{other.line}); give each output to one step, and let a later step read "
                    "it through `deps` and write a new path",
                    step=step.name,
                    path=out,
                    other_step=other.name,
                )
            written.append((out, step, i))
        for i, dep in enumerate(step.deps):
            own = next((out for out in step.outs if _overlap(out, dep)), None)
            if own is not None:
                raise at.fail(
                    ("steps", step.name, "deps", i),
                    f"dep {dep!r} overlaps its own out {own!r}, so the step would change its "
                    "own input on every run; depend on the input files alone and write the "
                    "result to another path",
                    step=step.name,
                    path=dep,
                )
        produced = step.produces_dataset
        if produced is not None:
            if produced in registered:
                first = registered[produced]
                raise at.fail(
                    ("steps", step.name, "dataset"),
                    f"registers dataset {produced!r}, which step {first.name!r} (line "
                    f"{first.line}) registers too; give each dataset one producing step",
                    step=step.name,
                )
            registered[produced] = step


def _check_references(at: Where, spec: PipelineSpec) -> None:
    for step in spec.steps.values():
        ancestors: set[str] | None = None
        texts = [("run", step.target)] if step.kind == "run" else []
        texts += [(f"env.{key}", value) for key, value in step.env.items()]
        for where, text in texts:
            path = ("steps", step.name, *where.split(".", 1))
            for ref in scan_references(text):
                if ref.kind == "bad":
                    raise at.fail(
                        path,
                        f"`{ref.text}` is not a reference shipyard knows; {REFERENCE_HELP} "
                        "(a shell variable is `${NAME}`, without a dot)",
                        step=step.name,
                    )
                if ref.kind == "params" and not lookup_param(spec.params, ref.name)[0]:
                    raise at.fail(
                        path,
                        f"`{ref.text}`: {unknown_param(ref.name, spec.params)}",
                        step=step.name,
                    )
                if ref.kind != "steps":
                    continue
                if ref.name not in spec.steps:
                    raise at.fail(
                        path,
                        f"`{ref.text}` names {ref.name!r}, which is not a step"
                        f"{suggest(ref.name, spec.steps)}; the steps are: {', '.join(spec.steps)}",
                        step=step.name,
                    )
                if ref.attr != "run_id":
                    raise at.fail(
                        path,
                        f"`{ref.text}`: a step reference gives only `run_id`; write "
                        f"${{steps.{ref.name}.run_id}}",
                        step=step.name,
                    )
                if ancestors is None:
                    ancestors = spec.ancestors(step.name)
                if ref.name not in ancestors:
                    raise at.fail(
                        path,
                        f"`{ref.text}` uses the run of step {ref.name!r}, which does not run "
                        f"before {step.name!r}; add `needs: [{ref.name}]` to step {step.name!r}",
                        step=step.name,
                    )


# ---------------------------------------------------------------------------- interpolation


def interpolate(
    text: str, *, params: Mapping[str, Any], run_ids: Mapping[str, str], step: str
) -> str:
    """Replace ``${params.NAME}`` and ``${steps.NAME.run_id}`` in a step's command.

    Text values go in as they are, other values as JSON (``true``, ``0.2``, ``[1, 2]``);
    nothing is shell-quoted, so quote a value that may hold spaces in the command.
    ``${NAME}`` without a dot is left for the shell.

    Args:
        text: the command (or env value).
        params: the pipeline's params.
        run_ids: step name -> run id of the upstream steps that ran (or were cached).
        step: the step the text belongs to, for messages.

    Returns:
        The text with every reference replaced.

    Raises:
        InvalidInputError: a reference names no param, or a step with no run id here
            (one that is not upstream of ``step``).

    Example::

        interpolate("report.py ${steps.train.run_id}", params={}, run_ids={"train": "ab12"},
                    step="report")  # -> "report.py ab12"
    """
    pieces: list[str] = []
    last = 0
    for ref in scan_references(text):
        if ref.kind == "params":
            found, value = lookup_param(params, ref.name)
            if not found:
                raise InvalidInputError(
                    f"step {step!r}: `{ref.text}`: {unknown_param(ref.name, params)}",
                    details={"step": step, "reference": ref.text},
                )
            replacement = render_value(value)
        elif ref.kind == "steps" and ref.attr == "run_id":
            if ref.name not in run_ids:
                raise InvalidInputError(
                    f"step {step!r}: `{ref.text}` has no run id to give: step {ref.name!r} is "
                    f"not upstream of {step!r} or has not run; add `needs: [{ref.name}]` to "
                    f"step {step!r}",
                    details={"step": step, "reference": ref.text},
                )
            replacement = str(run_ids[ref.name])
        else:
            raise InvalidInputError(
                f"step {step!r}: `{ref.text}` is not a reference shipyard knows; {REFERENCE_HELP}",
                details={"step": step, "reference": ref.text},
            )
        pieces += [text[last : ref.span[0]], replacement]
        last = ref.span[1]
    pieces.append(text[last:])
    return "".join(pieces)


# ---------------------------------------------------------------------------- inputs


def check_inputs(spec: PipelineSpec) -> None:
    """Check that every dep no step writes exists under ``spec.root``.

    Raises:
        InvalidInputError: naming each step and missing path (``details["missing"]``).
    """
    origin = spec.path.name if spec.path is not None else "shipyard.yaml"
    missing: list[dict[str, Any]] = []
    for step in spec.steps.values():
        for dep in step.deps:
            written = any(_overlap(out, dep) for other in spec.steps.values() for out in other.outs)
            if not written and not (spec.root / dep).exists():
                missing.append({"step": step.name, "path": dep, "line": step.line})
    if missing:
        listed = "; ".join(
            f"step {m['step']!r} (line {m['line']}) depends on {m['path']!r}" for m in missing
        )
        raise InvalidInputError(
            f"{origin}: missing input{'s' if len(missing) > 1 else ''}: {listed}; no step "
            f"writes {'them' if len(missing) > 1 else 'it'} and "
            f"{'they are' if len(missing) > 1 else 'it is'} not under {str(spec.root)!r}; "
            "add a step that writes it (in its `outs`) or create it",
            details={"origin": origin, "missing": missing},
        )


# ---------------------------------------------------------------------------- pictures


def _label(step: StepSpec, width: int = 48) -> str:
    if step.kind == "uses":
        return step.target
    if step.kind == "call":
        return f"call {step.target}"
    command = " ".join(step.target.split())
    return f"run {command if len(command) <= width else command[: width - 3] + '...'}"


def dag_text(spec: PipelineSpec) -> str:
    """The DAG as text: one step a line, in run order, with what it runs and its upstream.

    Example::

        churn: 3 steps
          ingest  run python steps/ingest.py
          split   shipyard.split               <- ingest
          train   shipyard.train               <- split
    """
    order = spec.order()
    labels = {name: _label(spec.steps[name]) for name in order}
    name_width = max(len(name) for name in order)
    label_width = max(len(label) for label in labels.values())
    count = f"{len(order)} step{'s' if len(order) != 1 else ''}"
    lines = [f"{spec.name}: {count}"]
    for name in order:
        ups = spec.upstream(name)
        line = f"  {name:<{name_width}}  {labels[name]:<{label_width}}"
        if ups:
            line += f"  <- {', '.join(ups)}"
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dag_dot(spec: PipelineSpec) -> str:
    """The DAG in Graphviz DOT (``dot -Tsvg``): built-in steps filled, edges upstream -> step.

    Example::

        digraph "churn" {
          "split" -> "train";
        }
    """
    lines = [
        f"digraph {_dot_string(spec.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
    ]
    order = spec.order()
    for name in order:
        step = spec.steps[name]
        label = _dot_string(f"{name}\n{_label(step, width=32)}")
        style = ', style="rounded,filled", fillcolor="lightblue"' if step.is_builtin else ""
        lines.append(f"  {_dot_string(name)} [label={label}{style}];")
    for name in order:
        for up in spec.upstream(name):
            lines.append(f"  {_dot_string(up)} -> {_dot_string(name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
