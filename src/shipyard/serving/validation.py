"""Request bodies to a DataFrame, checked against the model's signature before the model
sees anything.

Every problem names the field and the row: a missing or unexpected field, a value of
the wrong type, a missing value where the column has none, an unseen category, and a
value far outside the range seen in training (``policy.out_of_range``: ``reject`` it,
``flag`` it in the response and the prediction log, or ``pass`` it). Columns are
checked whole (vectorised), not value by value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.registry.signature import ColumnSpec, Signature

POLICIES = ("reject", "flag", "pass")
MAX_ERRORS = 20  # problems listed in one response at most


@dataclass(frozen=True)
class InputPolicy:
    """How strict a server is with inputs.

    Attributes:
        out_of_range: ``reject``, ``flag`` or ``pass`` numbers far outside the training range.
        range_margin: how far is far: beyond ``min - m * width`` or ``max + m * width``
            (``width = max - min``; a column whose min equals max uses ``m * |max|``, at
            least ``m``).
        unseen_category: ``reject``, ``flag`` or ``pass`` values outside a column's
            categories.
        max_rows: rows per request at most.
    """

    out_of_range: str = "flag"
    range_margin: float = 0.5
    unseen_category: str = "reject"
    max_rows: int = 10_000

    def __post_init__(self) -> None:
        for name in ("out_of_range", "unseen_category"):
            if getattr(self, name) not in POLICIES:
                raise InvalidInputError(
                    f"{name} must be one of {', '.join(POLICIES)}, got {getattr(self, name)!r}"
                )
        if not (self.range_margin >= 0 and math.isfinite(self.range_margin)):
            raise InvalidInputError(f"range_margin must be a number >= 0, got {self.range_margin}")
        if self.max_rows < 1:
            raise InvalidInputError(f"max_rows must be at least 1, got {self.max_rows}")


class InputRejected(InvalidInputError):
    """The request's data does not fit the model's signature (HTTP 422); ``details``
    holds ``errors``: ``[{"field", "row", "problem"}]``."""

    code = "INVALID_INPUT_DATA"
    http_status = 422


class TooManyRows(InvalidInputError):
    code = "TOO_MANY_ROWS"
    http_status = 413


@dataclass(frozen=True)
class CheckedInput:
    """A request's rows, typed as the model expects, and a flag text per row ("" if none)."""

    frame: pd.DataFrame
    flags: list[str]
    flag_reasons: dict[str, int]  # reason -> rows flagged


def frame_from_body(body: Any, signature: Signature | None, *, max_rows: int) -> pd.DataFrame:
    """``{"records": [{...}, ...]}`` or ``{"columns": {"name": [...]}}`` as a DataFrame."""
    import pandas as pd

    if not isinstance(body, Mapping):
        raise InvalidInputError(
            'the body is a JSON object: {"records": [{"feature": value, ...}, ...]} or '
            '{"columns": {"feature": [values...]}}'
        )
    unknown = set(body) - {"records", "columns", "model"}
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in the body; it takes "
            '"records" or "columns" (and "model" when the server has several)'
        )
    if ("records" in body) == ("columns" in body):
        raise InvalidInputError('give exactly one of "records" or "columns"')
    if "records" in body:
        records = body["records"]
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise InvalidInputError('"records" is a list of objects, one per row')
        _check_rows(len(records), max_rows)
        if not records:
            raise InvalidInputError('"records" is empty: send at least one row')
        names = _names(signature, records[0])
        extra = {k for r in records for k in r} - set(names)
        import numpy as np

        cells = np.empty((len(records), len(names)), dtype=object)  # one object block: no
        cells[:] = [[r.get(n, _MISSING) for n in names] for r in records]  # per-column guess
        frame = pd.DataFrame(cells, columns=names, copy=False)
        if extra:
            raise InputRejected(
                f"unexpected field(s) {', '.join(sorted(map(str, extra))[:10])}",
                details={"errors": [
                    {"field": str(f), "row": None, "problem": "not an input of the model"}
                    for f in sorted(map(str, extra))[:MAX_ERRORS]
                ]},
            )  # fmt: skip
        return frame
    columns = body["columns"]
    if not isinstance(columns, Mapping) or not all(isinstance(v, list) for v in columns.values()):
        raise InvalidInputError('"columns" maps each field to a list of values, one per row')
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidInputError(
            f'every list in "columns" has the same length, got {sorted(lengths)}'
        )
    n = lengths.pop() if lengths else 0
    _check_rows(n, max_rows)
    if n == 0:
        raise InvalidInputError('"columns" holds no rows: send at least one')
    return pd.DataFrame({str(k): pd.Series(v, dtype=object) for k, v in columns.items()})


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _names(signature: Signature | None, first: Mapping[str, Any]) -> list[str]:
    if signature is not None and signature.inputs:
        return [c.name for c in signature.inputs]
    return [str(k) for k in first]


def _check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise TooManyRows(
            f"{n:,} rows in one request; this server takes at most {max_rows:,} "
            "(send smaller batches, or score files with `shipyard predict`)"
        )


def check_frame(
    frame: pd.DataFrame, signature: Signature | None, policy: InputPolicy
) -> CheckedInput:
    """Type ``frame`` as the signature says, or raise :class:`InputRejected` listing the
    problems (at most :data:`MAX_ERRORS`, each with field and row)."""
    import pandas as pd

    n = len(frame)
    if signature is None or not signature.inputs:
        return CheckedInput(frame, [""] * n, {})
    errors: list[dict[str, Any]] = []
    flags: list[list[str]] = [[] for _ in range(n)]
    reasons: dict[str, int] = {}
    expected = [c.name for c in signature.inputs]
    missing_cols = [c for c in expected if c not in frame.columns]
    extra_cols = [c for c in frame.columns if c not in expected]
    errors += [{"field": c, "row": None, "problem": "missing: the model needs this input"}
               for c in missing_cols]  # fmt: skip
    errors += [{"field": str(c), "row": None, "problem": "not an input of the model"}
               for c in extra_cols]  # fmt: skip
    if errors:
        raise InputRejected(_summary(errors), details={"errors": errors[:MAX_ERRORS]})
    typed: dict[str, Any] = {}
    numbers = _plain_numbers(frame, signature, policy)
    if numbers is not None:  # the common case, checked for every numeric column at once
        matrix, names, flagged_rows = numbers
        for row, reason in flagged_rows:
            flags[row].append(reason)
            key = reason.split(": ", 1)[1].split(" ", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
        if len(names) == len(signature.inputs):  # all numeric: one float block, no copies
            typed_frame = pd.DataFrame(matrix, columns=names, copy=False)
            return CheckedInput(typed_frame, ["; ".join(f) for f in flags], reasons)
        typed.update({name: matrix[:, j] for j, name in enumerate(names)})
    for spec in signature.inputs:
        if spec.name in typed:
            continue
        column, problems, flagged = _check_column(frame[spec.name], spec, policy)
        typed[spec.name] = column
        errors += problems
        for row, reason in flagged:
            flags[row].append(f"{spec.name}: {reason}")
            key = reason.split(" ", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise InputRejected(_summary(errors), details={"errors": errors[:MAX_ERRORS]})
    ordered = {spec.name: typed[spec.name] for spec in signature.inputs}
    return CheckedInput(pd.DataFrame(ordered), ["; ".join(f) for f in flags], reasons)


def _plain_numbers(
    frame: pd.DataFrame, signature: Signature, policy: InputPolicy
) -> tuple[np.ndarray, list[str], list[tuple[int, str]]] | None:
    """Every numeric column at once, when all their values are plain JSON numbers (no
    nulls, no text, no booleans): one type scan, one conversion, vectorised integer and
    range checks. None (the per-column path names each problem) when anything else is
    there, or when an integer column holds a fraction or a range rule rejects a value."""
    import numpy as np

    specs = [c for c in signature.inputs if c.type in ("integer", "float")]
    if not specs:
        return None
    names = [c.name for c in specs]
    block = (frame if list(frame.columns) == names else frame[names]).to_numpy(dtype=object)
    kinds = {type(v) for v in block.ravel().tolist()}
    if not kinds <= {int, float}:
        return None
    matrix = block.astype(float)
    if not np.isfinite(matrix).all():
        return None
    integer = np.array([c.type == "integer" for c in specs])
    if integer.any() and (np.mod(matrix[:, integer], 1) != 0).any():
        return None
    flagged: list[tuple[int, str]] = []
    if policy.out_of_range != "pass":
        bounded = [(j, c) for j, c in enumerate(specs)
                   if c.minimum is not None and c.maximum is not None]  # fmt: skip
        if bounded:
            cols = [j for j, _ in bounded]
            low = np.array([c.minimum for _, c in bounded], dtype=float)
            high = np.array([c.maximum for _, c in bounded], dtype=float)
            width = high - low
            width = np.where(width > 0, width, np.maximum(np.abs(high), 1.0))
            sub = matrix[:, cols]
            far = (sub < low - policy.range_margin * width) | (
                sub > high + policy.range_margin * width
            )
            if far.any():
                if policy.out_of_range == "reject":
                    return None
                for row, k in zip(*np.nonzero(far), strict=True):
                    spec = bounded[k][1]
                    value = block[row, bounded[k][0]]
                    reason = (f"{spec.name}: out_of_range {value!r} is far outside the "
                              f"training range [{spec.minimum:g}, {spec.maximum:g}]")  # fmt: skip
                    flagged.append((int(row), reason))
    return matrix, names, flagged


def _err(field: str, row: int | None, problem: str) -> dict[str, Any]:
    return {"field": field, "row": row, "problem": problem}


def _summary(errors: Sequence[Mapping[str, Any]]) -> str:
    first = errors[0]
    where = f"row {first['row']}, " if first.get("row") is not None else ""
    more = f" (and {len(errors) - 1} more, listed in details)" if len(errors) > 1 else ""
    problem = f"field {first['field']!r}: {first['problem']}"
    return f"the input does not fit the model: {where}{problem}{more}"


def _rows(mask: np.ndarray) -> list[int]:
    import numpy as np

    return [int(i) for i in np.flatnonzero(mask)[:MAX_ERRORS]]


def _check_column(
    values: pd.Series, spec: ColumnSpec, policy: InputPolicy
) -> tuple[pd.Series, list[dict[str, Any]], list[tuple[int, str]]]:
    """The column typed for the model, its problems, and its flagged rows."""
    import numpy as np
    import pandas as pd

    errors: list[dict[str, Any]] = []
    flagged: list[tuple[int, str]] = []
    obj = values.to_numpy(dtype=object)
    absent = np.fromiter((v is _MISSING for v in obj), bool, len(obj))
    for row in _rows(absent):
        errors.append(_err(spec.name, row, "missing"))
    null = pd.isna(values.where(~absent, None)).to_numpy() & ~absent
    if not spec.nullable:
        for row in _rows(null):
            errors.append(
                _err(spec.name, row, "null or NaN, and the model has no missing values here")
            )
    present = ~(absent | null)
    if spec.type in ("integer", "float"):
        is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in obj), bool, len(obj))
        numbers = pd.to_numeric(values.where(present & ~is_bool, None), errors="coerce").astype(
            float
        )
        wrong = present & (is_bool | np.isnan(numbers.to_numpy()))
        for row in _rows(wrong):
            errors.append(
                _err(spec.name, row, f"expected a number ({spec.type}), got {obj[row]!r}")
            )
        arr = numbers.to_numpy()
        if spec.type == "integer":
            fractional = present & ~wrong & (np.mod(np.nan_to_num(arr), 1) != 0)
            for row in _rows(fractional):
                errors.append(_err(spec.name, row, f"expected a whole number, got {obj[row]!r}"))
        infinite = present & ~wrong & np.isinf(arr)
        for row in _rows(infinite):
            errors.append(_err(spec.name, row, "infinite"))
        if spec.minimum is not None and spec.maximum is not None and policy.out_of_range != "pass":
            width = spec.maximum - spec.minimum or max(abs(spec.maximum), 1.0)
            low = spec.minimum - policy.range_margin * width
            high = spec.maximum + policy.range_margin * width
            with np.errstate(invalid="ignore"):
                far = present & ~wrong & ((arr < low) | (arr > high))
            for row in map(int, np.flatnonzero(far)):
                reason = (f"out_of_range {obj[row]!r} is far outside the training range "
                          f"[{spec.minimum:g}, {spec.maximum:g}]")  # fmt: skip
                if policy.out_of_range == "reject":
                    if len(errors) < MAX_ERRORS:
                        errors.append(_err(spec.name, int(row), reason))
                else:
                    flagged.append((int(row), reason))
        return pd.Series(arr, name=spec.name), errors, flagged
    if spec.type == "boolean":
        wrong = present & ~np.fromiter(
            (isinstance(v, bool | np.bool_) for v in obj), bool, len(obj)
        )
        for row in _rows(wrong):
            errors.append(_err(spec.name, row, f"expected true or false, got {obj[row]!r}"))
        return (
            pd.Series(np.where(present, obj, None), name=spec.name, dtype=object),
            errors,
            flagged,
        )
    if spec.type == "datetime":
        parsed = pd.to_datetime(values.where(present, None), errors="coerce", utc=True)
        wrong = present & parsed.isna().to_numpy()
        for row in _rows(wrong):
            errors.append(_err(spec.name, row, f"expected an ISO date or time, got {obj[row]!r}"))
        return parsed.rename(spec.name), errors, flagged
    # string / category
    wrong = present & ~np.fromiter((isinstance(v, str) for v in obj), bool, len(obj))
    if spec.categories is not None:  # numbers may be categories too
        allowed = set(spec.categories)
        wrong = present & ~np.fromiter(
            (isinstance(v, str) or (v in allowed) for v in obj), bool, len(obj)
        )
    for row in _rows(wrong):
        errors.append(_err(spec.name, row, f"expected text, got {obj[row]!r}"))
    if spec.categories is not None and policy.unseen_category != "pass":
        allowed = set(spec.categories)
        unseen = present & ~wrong & ~np.fromiter((v in allowed for v in obj), bool, len(obj))
        for row in map(int, np.flatnonzero(unseen)):
            reason = (f"unseen_category {obj[row]!r} was not seen in training (known: "
                      f"{', '.join(map(str, list(spec.categories)[:8]))})")  # fmt: skip
            if policy.unseen_category == "reject":
                if len(errors) < MAX_ERRORS:
                    errors.append(_err(spec.name, int(row), reason))
            else:
                flagged.append((int(row), reason))
    column = pd.Series(np.where(present, obj, None), name=spec.name, dtype=object)
    if spec.type == "category" and spec.categories is not None:
        column = column.astype(pd.CategoricalDtype(list(spec.categories)))
    return column, errors, flagged
