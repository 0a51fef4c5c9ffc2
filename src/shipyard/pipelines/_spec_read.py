"""Reading a pipeline spec: YAML with line numbers, located errors, field checks, references.

:class:`Where` turns a path in the document (``("steps", "train", "needs", 0)``) into
the line it is on, and a problem into an :class:`InvalidInputError` naming the file, the
line and the step. The ``*_field`` functions check one value each and raise through it;
:func:`scan_references` finds the ``${params.NAME}`` and ``${steps.NAME.run_id}`` of a
command.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import NAME_MAX
from shipyard.core.yamltext import line_of, load_yaml

TOP_KEYS = ("pipeline", "description", "params", "params_file", "on", "steps")
_ON_KEYS = ("dataset",)
_PIPELINE_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")
# The rule of shipyard.store.dataset_store.check_dataset_name (not imported: it pulls in
# SQLAlchemy, and reading a spec must stay fast for a no-op `pipeline run`).
DATASET_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DRIVE = re.compile(r"[A-Za-z]:")
LATEST = "latest"
# `${...}`: ours when it starts with `word.` (a shell variable name never holds a dot);
# anything else, like `${HOME}` or `${N:-1}`, is left for the shell.
_REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_OURS = re.compile(r"\s*[A-Za-z_][\w-]*\.")
_PARAM_REF = re.compile(r"\s*params\.([\w.-]+)\s*")
_STEP_REF = re.compile(r"\s*steps\.([A-Za-z0-9_-]+)\.(\w+)\s*")
REFERENCE_HELP = "write ${params.NAME} or ${steps.NAME.run_id}"


class Where:
    """Turns a path in the YAML (``("steps", "train", "needs", 0)``) into a line number
    and problems into :class:`InvalidInputError`."""

    def __init__(self, origin: str, root: yaml.Node | None) -> None:
        self.origin = origin
        self.root = root

    def line(self, path: Sequence[str | int]) -> int | None:
        return line_of(self.root, path)

    def fail(
        self,
        at: Sequence[str | int],
        message: str,
        /,
        *,
        step: str | None = None,
        **details: Any,
    ) -> InvalidInputError:
        line = self.line(at)
        where = f" line {line}" if line is not None else ""
        which = f"step {step!r}: " if step is not None else ""
        return InvalidInputError(
            f"{self.origin}{where}: {which}{message}",
            details={"origin": self.origin, "line": line, "step": step, **details},
        )


def kind_of(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keys(
    at: Where,
    path: tuple[str | int, ...],
    raw: Mapping[Any, Any],
    allowed: Sequence[str],
    *,
    what: str,
    step: str | None = None,
) -> None:
    for key in raw:
        if key not in allowed:
            raise at.fail(
                (*path, str(key)),
                f"unknown key {key!r}{suggest(str(key), allowed)}; "
                f"the allowed {what} are: {', '.join(allowed)}",
                step=step,
                key=str(key),
            )


def text_field(
    at: Where, path: tuple[str | int, ...], value: object, what: str, step: str | None = None
) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise at.fail(path, f"`{what}` must be text, got {kind_of(value)}; quote it", step=step)
    return value


def pipeline_name(at: Where, data: Mapping[str, Any]) -> str:
    if "pipeline" not in data:
        raise at.fail((), "missing `pipeline`; add `pipeline: NAME` at the top of the spec")
    name = data["pipeline"]
    if not isinstance(name, str) or not _PIPELINE_NAME.fullmatch(name) or len(name) > NAME_MAX:
        raise at.fail(
            ("pipeline",),
            f"the pipeline name must be letters, digits, '_', '-' and '.', starting with a "
            f"letter or digit (at most {NAME_MAX}), got {kind_of(name)}; rename it",
        )
    return name


def read_params(at: Where, data: Mapping[str, Any], root: Path) -> dict[str, Any]:
    params: dict[str, Any] = {}
    inline = data.get("params")
    if isinstance(inline, str):
        params.update(_params_file(at, ("params",), inline, root))
    elif isinstance(inline, dict):
        params.update(inline)
    elif inline is not None:
        raise at.fail(
            ("params",),
            f"`params` must be a mapping of names to values or the path of a YAML file of "
            f"them, got {kind_of(inline)}; write e.g. `params: {{test_size: 0.2}}`",
        )
    if data.get("params_file") is not None:
        file = data["params_file"]
        if not isinstance(file, str):
            raise at.fail(
                ("params_file",),
                f"`params_file` must be the path of a YAML file, got {kind_of(file)}",
            )
        params.update(_params_file(at, ("params_file",), file, root))
    for name in params:
        if not isinstance(name, str) or not name:
            raise at.fail(
                ("params",),
                f"param names must be text, got {kind_of(name)}; quote the name",
                param=str(name),
            )
    return params


def _params_file(at: Where, path: tuple[str, ...], file: str, root: Path) -> dict[str, Any]:
    relative = project_path(at, path, file, what="params file")
    full = root / relative
    try:
        text = full.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise at.fail(
            path,
            f"the params file {relative!r} does not exist under {str(root)!r}; create it "
            "(a YAML mapping of names to values) or fix the path",
            path=relative,
        ) from None
    except UnicodeDecodeError:
        raise at.fail(
            path, f"the params file {relative!r} is not UTF-8 text; save it as UTF-8"
        ) from None
    data, _ = load_yaml(text, str(full))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{full}: a params file must be a mapping of names to values, got {kind_of(data)}; "
            "write one `name: value` a line",
            details={"origin": str(full)},
        )
    return data


def read_triggers(at: Where, raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise at.fail(
            ("on",),
            f"`on` must be a mapping like `on: {{dataset: customers}}`, got {kind_of(raw)}",
        )
    unknown_keys(at, ("on",), raw, _ON_KEYS, what="keys of `on`")
    names = names_field(at, ("on", "dataset"), raw.get("dataset"), "on.dataset")
    for i, name in enumerate(names):
        if not DATASET_NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise at.fail(
                ("on", "dataset", i),
                f"`on.dataset` names a dataset (letters, digits, '_', '-', '.'; no '@version': "
                f"a trigger fires on every new version), got {name!r}",
            )
    return names


def names_field(
    at: Where, path: tuple[str | int, ...], value: object, what: str, step: str | None = None
) -> tuple[str, ...]:
    """A list of non-empty strings (a single string is a list of one), duplicates dropped."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise at.fail(
            path,
            f"`{what}` must be a list, got {kind_of(value)}; write `{what}: [a, b]`",
            step=step,
        )
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise at.fail(
                (*path, i),
                f"`{what}` items must be non-empty text, got {kind_of(item)}; quote the item",
                step=step,
            )
    return tuple(dict.fromkeys(items))


def project_path(
    at: Where, path: tuple[str | int, ...], value: str, *, what: str, step: str | None = None
) -> str:
    """A path inside the project, in normal form (``./data//x/`` -> ``data/x``)."""
    if value.startswith(("/", "\\")) or _DRIVE.match(value) or value.startswith("~"):
        raise at.fail(
            path,
            f"{what} {value!r} is absolute; write it relative to the spec's folder "
            "(keep the files of a pipeline inside its project)",
            step=step,
            path=value,
        )
    parts = PurePosixPath(value).parts
    if ".." in parts:
        raise at.fail(
            path,
            f"{what} {value!r} goes up with '..'; paths must stay inside the spec's folder: "
            "move the file into the project or the spec up a folder",
            step=step,
            path=value,
        )
    normal = PurePosixPath(*parts).as_posix() if parts else "."
    if normal == ".":
        raise at.fail(
            path,
            f"{what} {value!r} is the project folder itself; name a file or folder inside it",
            step=step,
            path=value,
        )
    return normal


def seconds_field(
    at: Where,
    path: tuple[str | int, ...],
    value: object,
    what: str,
    step: str,
    *,
    positive: bool,
) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) < 0
        or (positive and float(value) == 0)
    ):
        sign = "a positive" if positive else "a non-negative"
        raise at.fail(
            path, f"`{what}` must be {sign} number of seconds, got {kind_of(value)}", step=step
        )
    return float(value)


def env_field(at: Where, path: tuple[str | int, ...], raw: object, step: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise at.fail(
            path, f"`env` must be a mapping of NAME: value, got {kind_of(raw)}", step=step
        )
    env: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise at.fail(
                (*path, str(key)),
                f"environment variable name {key!r} must be letters, digits and '_', not "
                "starting with a digit",
                step=step,
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise at.fail(
                (*path, key),
                f"`env.{key}` must be text or a number, got {kind_of(value)}; quote it",
                step=step,
            )
        env[key] = str(value)
    return env


def dataset_field(
    at: Where,
    path: tuple[str | int, ...],
    *,
    name: str,
    kind: str,
    value: object,
    outs: tuple[str, ...],
    required: str | None,
) -> str | None:
    """A step's ``dataset``: ``NAME@SELECTOR`` for a built-in (``required`` names one that
    must have it), a bare ``NAME`` to register for a ``run``/``call`` step."""
    where = (*path, "dataset")
    if value is None:
        if required is not None:
            raise at.fail(
                path,
                f"{required} reads a dataset; add `dataset: NAME@latest` (or NAME@VERSION)",
                step=name,
            )
        return None
    if not isinstance(value, str):
        raise at.fail(where, f"`dataset` must be text, got {kind_of(value)}", step=name)
    dataset, sep, selector = value.strip().partition("@")
    if not DATASET_NAME.fullmatch(dataset) or len(dataset) > NAME_MAX:
        raise at.fail(
            where,
            f"dataset name {dataset!r} may hold only letters, digits, '_', '-' and '.', and "
            "must start with a letter or digit",
            step=name,
        )
    if kind == "uses":
        if sep and (not selector or not re.fullmatch(r"[\w.-]+", selector)):
            raise at.fail(
                where,
                f"`dataset` of a built-in is NAME@VERSION with a number, 'latest' or an alias "
                f"after '@', got {value!r}",
                step=name,
            )
        return f"{dataset}@{selector or LATEST}"
    if sep:
        raise at.fail(
            where,
            f"the `dataset` of a `{kind}` step names the dataset its first out is registered "
            f"as (a new version each run); drop '@{selector}'",
            step=name,
        )
    if not outs:
        raise at.fail(
            where,
            f"`dataset: {dataset}` registers the step's first out, but the step has no `outs`; "
            "add `outs: [PATH]` with the file or folder it writes",
            step=name,
        )
    return dataset


def lookup_param(params: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """``(found, value)`` of a param, where ``a.b`` also reaches ``b`` inside mapping ``a``."""
    if name in params:
        return True, params[name]
    value: Any = params
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def unknown_param(name: str, params: Mapping[str, Any]) -> str:
    if not params:
        return (
            f"unknown param {name!r}: the pipeline has no params; add "
            f"`params: {{{name}: VALUE}}` at the top of the spec (or a params file)"
        )
    return (
        f"unknown param {name!r}{suggest(name, params)}; the pipeline's params are: "
        f"{', '.join(params)}; add it to `params` or fix the name"
    )


@dataclass(frozen=True)
class Reference:
    kind: str  # "params" | "steps" | "bad"
    name: str
    attr: str
    text: str
    span: tuple[int, int]


def scan_references(text: str) -> Iterator[Reference]:
    """The ``${...}`` of ``text`` that are ours (``${HOME}`` and the like are the shell's)."""
    for match in _REFERENCE.finditer(text):
        inner = match.group(1)
        if not _OURS.match(inner):
            continue
        if param := _PARAM_REF.fullmatch(inner):
            yield Reference("params", param.group(1), "", match.group(0), match.span())
        elif step := _STEP_REF.fullmatch(inner):
            yield Reference("steps", step.group(1), step.group(2), match.group(0), match.span())
        else:
            yield Reference("bad", inner.strip(), "", match.group(0), match.span())


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
