"""Model signatures: the input columns a model takes and the output columns it gives.

A :class:`Signature` is inferred from an input example (:func:`infer_signature`),
stored as JSON with the model, used to check requests before they reach the model
(:func:`check_input`) and to decide whether a new model version can replace an old one
behind the same alias (:func:`compatibility_problems`).

Column types: ``integer``, ``float``, ``boolean``, ``string``, ``category`` (a pandas
``category`` column), ``datetime``. ``categories`` lists the values a low-cardinality
string or category column may take; ``minimum``/``maximum`` record the range of a
numeric column in the example (descriptive: values outside it are drift, which
monitoring watches, not an input error).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [31, 45, 27], "income": [1.5, None, 2.0]})
    >>> sig = infer_signature(df)
    >>> [(c.name, c.type, c.nullable) for c in sig.inputs]
    [('age', 'integer', False), ('income', 'float', True)]
    >>> check_input(sig, pd.DataFrame({"age": [1.5], "income": [1.0]}))
    ["column 'age' expects integer values but got float values that are not whole numbers \
(e.g. 1.5)"]
    >>> Signature.from_dict(sig.to_dict()) == sig
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

COLUMN_TYPES = ("integer", "float", "boolean", "string", "category", "datetime")
_COLUMN_KEYS = ("name", "type", "nullable", "categories", "minimum", "maximum")
_EXAMPLES = 5

Category = str | int | float | bool


def _bad(where: str, message: str, *, field: str | None = None) -> InvalidInputError:
    """An error naming the bad field (``details["field"]``: ``field`` or ``where``)."""
    return InvalidInputError(f"signature {where}: {message}", details={"field": field or where})


def _check_bound(value: object, where: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(
            where, f"must be a number or null, got {type(value).__name__} {value!r}", field=field
        )
    if not math.isfinite(value):
        raise _bad(where, f"must be a finite number, got {value!r}", field=field)
    return float(value)


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column of a model.

    Args:
        name: Column name.
        type: One of :data:`COLUMN_TYPES`.
        nullable: Whether missing values are allowed.
        categories: The allowed values (strings, numbers, booleans), or None for any.
        minimum: Smallest value seen in the example (numeric columns), or None.
        maximum: Largest value seen in the example (numeric columns), or None.

    Raises:
        InvalidInputError: A field has the wrong type or value; the message names it.

    Example:
        >>> ColumnSpec(name="color", type="string", nullable=False, categories=("red",)).type
        'string'
    """

    name: str
    type: str
    nullable: bool
    categories: tuple[Category, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise _bad(
                "column name", f"must be a non-empty string, got {self.name!r}", field="name"
            )
        if self.type not in COLUMN_TYPES:
            raise _bad(
                f"{where} type",
                f"{self.type!r} is not one of {', '.join(COLUMN_TYPES)}",
                field="type",
            )
        if not isinstance(self.nullable, bool):
            raise _bad(
                f"{where} nullable",
                f"must be true or false, got {self.nullable!r}",
                field="nullable",
            )
        if self.categories is not None:
            if isinstance(self.categories, (str, bytes)) or not isinstance(
                self.categories, Sequence
            ):
                raise _bad(
                    f"{where} categories",
                    f"must be a list, got {self.categories!r}",
                    field="categories",
                )
            for value in self.categories:
                ok = isinstance(value, (str, int, float, bool))
                if not ok or (isinstance(value, float) and not math.isfinite(value)):
                    raise _bad(
                        f"{where} categories",
                        f"{value!r} is not a string, finite number or boolean",
                        field="categories",
                    )
            object.__setattr__(self, "categories", tuple(self.categories))
        lo = _check_bound(self.minimum, f"{where} minimum", "minimum")
        hi = _check_bound(self.maximum, f"{where} maximum", "maximum")
        if lo is not None and hi is not None and lo > hi:
            raise _bad(
                f"{where} minimum", f"{lo!r} is greater than maximum {hi!r}", field="minimum"
            )
        object.__setattr__(self, "minimum", lo)
        object.__setattr__(self, "maximum", hi)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; empty optional fields are left out."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    @classmethod
    def from_dict(cls, data: object, *, where: str = "column") -> ColumnSpec:
        """Inverse of :meth:`to_dict`.

        Args:
            data: The dict.
            where: Where it sits, for messages (``"inputs[2]"``).

        Raises:
            InvalidInputError: Not a mapping, a missing or unknown key, or a bad value.
        """
        if not isinstance(data, Mapping):
            raise _bad(where, f"must be an object, got {type(data).__name__}")
        unknown = sorted(map(str, set(data) - set(_COLUMN_KEYS)))
        if unknown:
            raise _bad(
                f"{where}.{unknown[0]}",
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_COLUMN_KEYS)}",
            )
        for key in ("name", "type", "nullable"):
            if key not in data:
                raise _bad(f"{where}.{key}", "is missing")
        categories = data.get("categories")
        if categories is not None and not isinstance(categories, list):
            raise _bad(f"{where}.categories", f"must be a list, got {categories!r}")
        try:
            return cls(
                name=data["name"],
                type=data["type"],
                nullable=data["nullable"],
                categories=None if categories is None else tuple(categories),
                minimum=data.get("minimum"),
                maximum=data.get("maximum"),
            )
        except InvalidInputError as exc:  # name the field by its place in the dict
            field = f"{where}.{exc.details.get('field', '')}"
            raise _bad(field, exc.message.removeprefix("signature ")) from None


@dataclass(frozen=True)
class Signature:
    """The input and output columns of a model.

    Args:
        inputs: Input columns, in the order the model takes them.
        outputs: Output columns (``prediction``, or ``proba_<class>`` columns).

    Raises:
        InvalidInputError: A column is not a :class:`ColumnSpec` or a name repeats.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()

    def __post_init__(self) -> None:
        for side in ("inputs", "outputs"):
            cols = tuple(getattr(self, side))
            seen: set[str] = set()
            for i, col in enumerate(cols):
                if not isinstance(col, ColumnSpec):
                    raise _bad(f"{side}[{i}]", f"must be a ColumnSpec, got {type(col).__name__}")
                if col.name in seen:
                    raise _bad(f"{side}[{i}].name", f"{col.name!r} appears twice")
                seen.add(col.name)
            object.__setattr__(self, side, cols)

    @property
    def input_names(self) -> list[str]:
        """Input column names, in order."""
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """``{"inputs": [...], "outputs": [...]}``, JSON-safe."""
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: object) -> Signature:
        """Inverse of :meth:`to_dict` (``from_dict(s.to_dict()) == s``).

        Raises:
            InvalidInputError: The dict is malformed; the message names the bad field.
        """
        if not isinstance(data, Mapping):
            raise _bad("", f"must be an object with inputs and outputs, got {type(data).__name__}")
        unknown = sorted(map(str, set(data) - {"inputs", "outputs"}))
        if unknown:
            raise _bad(unknown[0], "unknown key; a signature has only 'inputs' and 'outputs'")
        sides: dict[str, tuple[ColumnSpec, ...]] = {}
        for side in ("inputs", "outputs"):
            cols = data.get(side, [])
            if not isinstance(cols, list):
                raise _bad(side, f"must be a list of columns, got {type(cols).__name__}")
            sides[side] = tuple(
                ColumnSpec.from_dict(c, where=f"{side}[{i}]") for i, c in enumerate(cols)
            )
        return cls(inputs=sides["inputs"], outputs=sides["outputs"])


# --------------------------------------------------------------------------------------
# inference


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame: a 2-D array gets columns ``"0"``, ``"1"``, ...

    Raises:
        InvalidInputError: ``X`` is neither a DataFrame nor a 2-D array.
    """
    import numpy as np
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return pd.DataFrame(X, columns=[str(i) for i in range(X.shape[1])])
    shape = f" of shape {X.shape}" if isinstance(X, np.ndarray) else ""
    raise InvalidInputError(
        f"expected a pandas DataFrame or a 2-D numpy array, got {type(X).__name__}{shape}; "
        "wrap a single row as a list of one row, e.g. pd.DataFrame([row])"
    )


def infer_signature(
    X: Any, predictions: Any = None, *, classes: Sequence[Any] | None = None
) -> Signature:
    """Infer a signature from an input example and, optionally, the model's output on it.

    Inputs use :func:`shipyard.data.schema.infer_schema`: booleans, datetimes,
    integers (identifiers too) and floats keep their kind, with the example's range for
    numbers; a pandas ``category`` column becomes ``category`` with its categories; a
    string column becomes ``string``, with categories when it is low-cardinality by
    ``infer_schema``'s rule (at most 50 values, each repeating 20 times on average; a
    handful of rows rarely qualify, so nothing is over-constrained). A column is
    nullable when the example has a missing value in it.

    Args:
        X: A DataFrame, or a 2-D numpy array (its columns are named ``"0"``, ``"1"``...).
        predictions: The model's output on ``X``: 1-D (or ``[n, 1]``) gives one
            ``prediction`` column; 2-D with k > 1 columns is taken as class
            probabilities and gives float columns ``proba_<class>``.
        classes: Class labels naming the probability columns (default ``0..k-1``).

    Returns:
        The :class:`Signature`.

    Raises:
        InvalidInputError: ``X`` is not a frame or 2-D array, predictions have the wrong
            shape, or ``classes`` does not match the probability columns.
        SchemaMismatchError: A column mixes Python types or holds an unsupported type.
    """
    from shipyard.data.schema import infer_schema

    frame = as_frame(X)
    schema = infer_schema(frame)
    inputs = tuple(_spec_from_schema(col, frame.iloc[:, i]) for i, col in enumerate(schema.columns))
    outputs = () if predictions is None else _output_specs(predictions, len(frame), classes)
    return Signature(inputs=inputs, outputs=outputs)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, (str, bool)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _spec_from_schema(col: Any, series: pd.Series) -> ColumnSpec:
    import pandas as pd

    from shipyard.data.schema import LogicalType

    kind = col.logical_type
    base: dict[str, Any] = {"name": col.name, "nullable": bool(col.nullable)}
    if kind == LogicalType.BOOLEAN:
        return ColumnSpec(type="boolean", **base)
    if kind == LogicalType.DATETIME:
        return ColumnSpec(type="datetime", **base)
    numeric = kind in (LogicalType.INTEGER, LogicalType.FLOAT) or (
        kind == LogicalType.IDENTIFIER and pd.api.types.is_numeric_dtype(series.dtype)
    )
    if numeric:
        integer = kind != LogicalType.FLOAT
        return ColumnSpec(
            type="integer" if integer else "float",
            minimum=_finite(col.min),
            maximum=_finite(col.max),
            **base,
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        return ColumnSpec(type="category", categories=_categories(col.categories), **base)
    if kind == LogicalType.CATEGORICAL:
        return ColumnSpec(type="string", categories=_categories(col.categories), **base)
    return ColumnSpec(type="string", **base)


def _categories(values: Sequence[Any] | None) -> tuple[Category, ...] | None:
    if values is None:
        return None
    out = tuple(v for v in values if isinstance(v, (str, int, float, bool)))
    return out if len(out) == len(values) else None  # unusual labels: do not constrain


def _output_specs(
    predictions: Any, n_rows: int, classes: Sequence[Any] | None
) -> tuple[ColumnSpec, ...]:
    import numpy as np
    import pandas as pd

    pred = np.asarray(predictions)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred.ravel()
    if pred.ndim not in (1, 2) or pred.shape[0] != n_rows:
        raise InvalidInputError(
            f"predictions must have one row per input row ({n_rows}), 1-D or 2-D; got shape "
            f"{pred.shape}; pass model.predict(X) or model.predict_proba(X)"
        )
    if pred.ndim == 1:
        series = pd.Series(pred)
        return (
            ColumnSpec(
                name="prediction", type=_series_type(series), nullable=bool(series.isna().any())
            ),
        )
    labels = list(range(pred.shape[1])) if classes is None else list(classes)
    if len(labels) != pred.shape[1]:
        raise InvalidInputError(
            f"classes has {len(labels)} labels but the probabilities have {pred.shape[1]} "
            "columns; pass the model's classes_"
        )
    return tuple(ColumnSpec(name=f"proba_{c}", type="float", nullable=False) for c in labels)


def _series_type(series: pd.Series) -> str:
    """The signature type of a Series' stored values (``string`` for anything textual)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
        "boolean": "boolean",
        "datetime": "datetime",
        "datetime64": "datetime",
        "date": "datetime",
    }.get(inferred, "string")


# --------------------------------------------------------------------------------------
# checks


def _examples(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:_EXAMPLES])
    return shown + (", ..." if len(values) > _EXAMPLES else "")


def _type_problem(spec: ColumnSpec, series: pd.Series) -> str | None:
    """Why ``series`` cannot feed a column of ``spec.type``, or None if it can."""
    import numpy as np
    import pandas as pd

    values = series.dropna()
    if values.empty:
        return None  # all missing: only the null check applies
    got = _series_type(values)
    want = spec.type
    if got == want:
        return None
    if want == "float" and got == "integer":
        return None
    if want == "integer" and got == "float":
        floats = values.to_numpy(dtype=float)
        odd = floats[floats != np.round(floats)]
        if odd.size == 0:
            return None
        return (
            f"column {spec.name!r} expects integer values but got float values that are not "
            f"whole numbers (e.g. {_examples(list(odd))})"
        )
    if want == "category" and got in ("string", "integer", "boolean"):
        return None
    if want == "string" and got == "category":
        return None
    if want == "datetime" and got == "string":
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        bad = values[parsed.isna()]
        if bad.empty:
            return None
        return (
            f"column {spec.name!r} expects datetime values but got strings that are not ISO "
            f"dates (e.g. {_examples(list(bad.unique()))})"
        )
    return f"column {spec.name!r} expects {want} values but got {got} values"


def _category_problem(spec: ColumnSpec, series: pd.Series) -> str | None:
    import pandas as pd

    if spec.categories is None:
        return None
    values = series.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    unknown_mask = ~values.isin(list(spec.categories))
    if not unknown_mask.any():
        return None
    unknown = values[unknown_mask]
    distinct = list(pd.unique(unknown))
    return (
        f"column {spec.name!r} has {int(unknown_mask.sum()):,} value(s) outside its "
        f"{len(spec.categories)} known categories: {_examples(distinct)}; the model never saw "
        "them; map them to known categories or retrain with them"
    )


def check_input(signature: Signature, frame: Any) -> list[str]:
    """What keeps ``frame`` from being a valid input for a model with ``signature``.

    Checked per input column: present; a compatible type (integers feed a float
    column; floats feed an integer column only if all are whole numbers; strings feed a
    category column, and ISO date strings a datetime column); no missing values where
    the column is not nullable; no values outside its categories. Extra columns are
    fine, and values outside ``minimum``/``maximum`` are not problems (that is drift).

    Args:
        signature: The model's signature.
        frame: A DataFrame (or a 2-D array, with columns ``"0"``, ``"1"``, ...).

    Returns:
        Human-readable problems; an empty list means the input is fine.

    Raises:
        InvalidInputError: ``frame`` is neither a DataFrame nor a 2-D array.

    Example:
        >>> import pandas as pd
        >>> sig = Signature(inputs=(ColumnSpec(name="x", type="float", nullable=False),))
        >>> check_input(sig, pd.DataFrame({"y": [1]}))
        ["missing column 'x' (float)"]
    """
    import pandas as pd

    df = as_frame(frame)
    columns = {str(c): c for c in df.columns}
    problems: list[str] = []
    for spec in signature.inputs:
        if spec.name not in columns:
            problems.append(f"missing column {spec.name!r} ({spec.type})")
            continue
        series = df[columns[spec.name]]
        if isinstance(series, pd.DataFrame):
            problems.append(f"column {spec.name!r} appears more than once; keep one")
            continue
        n_missing = int(series.isna().sum())
        if n_missing and not spec.nullable:
            problems.append(
                f"column {spec.name!r} has {n_missing:,} missing value(s) but the model does "
                "not accept missing values there; fill or drop those rows"
            )
        problem = _type_problem(spec, series)
        if problem is not None:
            problems.append(problem)
            continue
        problem = _category_problem(spec, series)
        if problem is not None:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------------------
# compatibility


def compatibility_problems(old: Signature, new: Signature) -> list[str]:
    """What keeps a model with signature ``new`` from replacing one with ``old``.

    Callers of the alias send what ``old`` takes and read what it gives. So ``new`` must
    not need an input column ``old`` did not have, nor a type ``old``'s callers do not
    send (integer -> float widening is fine), nor refuse missing values ``old`` allowed,
    nor drop categories ``old`` accepted; its outputs must have the same names and
    types. Dropped inputs are fine (extra columns are ignored).

    Args:
        old: The signature of the model behind the alias now.
        new: The signature of the candidate.

    Returns:
        Human-readable problems; empty means compatible.

    Example:
        >>> a = Signature(inputs=(ColumnSpec(name="x", type="integer", nullable=False),))
        >>> b = Signature(inputs=(ColumnSpec(name="x", type="float", nullable=False),))
        >>> compatibility_problems(a, b), compatibility_problems(b, a)
        ([], ["input column 'x' changes type from float to integer"])
    """
    problems: list[str] = []
    old_inputs = {c.name: c for c in old.inputs}
    for col in new.inputs:
        before = old_inputs.get(col.name)
        if before is None:
            problems.append(
                f"new input column {col.name!r} ({col.type}) that the current model does not "
                "take, so callers do not send it"
            )
            continue
        if before.type != col.type and not (before.type == "integer" and col.type == "float"):
            problems.append(
                f"input column {col.name!r} changes type from {before.type} to {col.type}"
            )
        if before.nullable and not col.nullable:
            problems.append(f"input column {col.name!r} accepted missing values and no longer does")
        if col.categories is not None:
            if before.categories is None:
                problems.append(
                    f"input column {col.name!r} now accepts only {len(col.categories)} "
                    "categories; the current model accepts any value"
                )
            else:
                lost = [c for c in before.categories if c not in set(col.categories)]
                if lost:
                    problems.append(
                        f"input column {col.name!r} no longer accepts categories {_examples(lost)}"
                    )
    old_out = {c.name: c.type for c in old.outputs}
    new_out = {c.name: c.type for c in new.outputs}
    for name, kind in old_out.items():
        if name not in new_out:
            problems.append(f"output column {name!r} is gone")
        elif kind != new_out[name]:
            problems.append(f"output column {name!r} changes type from {kind} to {new_out[name]}")
    for name in new_out:
        if name not in old_out:
            problems.append(f"new output column {name!r} that the current model does not give")
    return problems
