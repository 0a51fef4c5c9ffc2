"""Declarative cleaning: a spec of steps, a scikit-learn transformer that learns them, a report.

A :class:`CleaningSpec` lists frozen steps (:class:`Impute`, :class:`Scale`, :class:`Normalize`,
:class:`OneHotEncode`, :class:`OrdinalEncode`, :class:`ClipOutliers`, :class:`DropColumns`,
:class:`Deduplicate`), in Python or YAML (``- impute: {columns: numeric, strategy: median}``).
:class:`Cleaner` learns every step from the data passed to ``fit`` and nothing else (safe in
cross-validation folds); :meth:`Cleaner.to_sklearn` gives the fitted steps as a plain
scikit-learn ``Pipeline`` that loads without shipyard; :func:`clean_frame` cleans a dataset
and reports what each step changed.

- Steps run in order, each on the previous step's output. ``columns`` is a list of names or a
  selector resolved at fit time from that input's dtypes: ``"numeric"`` (numbers, not
  booleans), ``"categorical"`` (strings, objects, categories, booleans) or ``"all"``
  (resolved lists: :attr:`Cleaner.resolved_spec_`).
- Columns keep their order: one-hot columns replace the column they encode, a
  :class:`Normalize` block sits at its first column. ``transform`` drops unfitted columns.
- :class:`Deduplicate` removes rows, which a model at serving time must never do. It is a
  dataset-level step: it applies in :func:`clean_frame` and while ``fit`` learns (later steps
  learn from the deduplicated rows); ``transform``, ``fit_transform`` and
  :meth:`Cleaner.to_sklearn` skip it, so ``X`` and ``y`` stay aligned in a Pipeline.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import pandas as pd
import yaml
from sklearn import preprocessing as skp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from shipyard.core.errors import InvalidInputError, NotFittedError, SchemaMismatchError

Columns: TypeAlias = str | Sequence[str]
"""A selector (``"numeric"``, ``"categorical"``, ``"all"``) or column names (kept as a tuple)."""

SELECTORS = ("numeric", "categorical", "all")

#: Every type :func:`skops.io.get_untrusted_types` may report for a :meth:`Cleaner.to_sklearn`
#: pipeline: ``numpy.clip`` (clip_outliers) and the dtype ``SimpleImputer`` keeps (impute).
SKOPS_TRUSTED_TYPES = ("numpy.clip", "numpy.dtype")


def _option_error(step: str, option: str, problem: str, allowed: Sequence[Any] = ()) -> Exception:
    details: dict[str, Any] = {"step_name": step, "option": option}
    if allowed:
        details["allowed"] = list(allowed)
    return InvalidInputError(f"{step}: option {option!r} {problem}", details=details)


def _is_one_of(value: Any, allowed: Sequence[Any]) -> bool:
    return any(value is a if isinstance(a, bool) or isinstance(value, bool) else value == a
               for a in allowed)  # fmt: skip


def _check_columns(step: Step, option: str) -> None:
    value = getattr(step, option)
    if value is None and option == "subset":
        return
    if isinstance(value, str):
        if value not in SELECTORS:
            raise _option_error(
                step.step_name, option, f"is the string {value!r}, not a selector "
                f"({', '.join(SELECTORS)}); to name one column write a list: [{value!r}]",
                SELECTORS,
            )  # fmt: skip
        return
    if not isinstance(value, Sequence) or not all(isinstance(c, str) for c in value):
        raise _option_error(
            step.step_name, option,
            f"must be a list of column names or one of {', '.join(SELECTORS)}; got {value!r}",
        )  # fmt: skip
    repeated = sorted({c for c in value if list(value).count(c) > 1})
    if repeated:
        raise _option_error(step.step_name, option, f"names columns twice: {repeated}")
    object.__setattr__(step, option, tuple(value))


def _plain(value: Any) -> Any:
    """A YAML/JSON-friendly copy: tuples become lists, numpy scalars Python scalars."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _is_numeric(dtype: Any) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _is_categorical(dtype: Any) -> bool:
    t, kinds = pd.api.types, pd.CategoricalDtype | pd.StringDtype
    return isinstance(dtype, kinds) or bool(t.is_bool_dtype(dtype) or t.is_object_dtype(dtype))


STEP_TYPES: dict[str, type[Step]] = {}
"""Step classes by their YAML name (each :class:`Step` subclass registers itself)."""


@dataclass(frozen=True)
class Step:
    """Base of the cleaning steps: a frozen record of what to do, validated on construction.

    Raises:
        InvalidInputError: an option is invalid; the message and ``details`` name the
            option and the allowed values.
    """

    step_name: ClassVar[str] = ""
    columns_option: ClassVar[str] = "columns"
    #: the allowed values of each choice option
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    #: how columns share a scikit-learn transformer: runs of same-kind columns, one per
    #: column, or one block for all (row-wise steps)
    grouping: ClassVar[Literal["run", "column", "block"]] = "run"
    #: whether the step needs numeric columns
    numeric: ClassVar[bool] = False

    def __init_subclass__(cls) -> None:
        STEP_TYPES[cls.step_name] = cls

    def __post_init__(self) -> None:
        _check_columns(self, self.columns_option)
        for option, allowed in self.choices.items():
            value = getattr(self, option)
            if not _is_one_of(value, allowed):
                shown = ", ".join(repr(a) for a in allowed)
                raise _option_error(
                    self.step_name, option, f"must be one of {shown}; got {value!r}", allowed
                )
        self._check()

    def _check(self) -> None:
        """Validate the other options."""

    def to_dict(self) -> dict[str, Any]:
        """``{step_name: {option: value}}`` with every option, for YAML, JSON and lineage."""
        return {self.step_name: {f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    def _problem(self, frame: pd.DataFrame, columns: list[str]) -> str | None:
        """Why this step cannot learn from ``frame[columns]``, or None."""
        return _numeric_problem(frame, columns) if self.numeric else None

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        """An unfitted scikit-learn transformer (or ``"drop"``) for ``frame[columns]``."""
        raise NotImplementedError

    def _resolved(self, columns: list[str]) -> Step:
        return replace(self, **{self.columns_option: tuple(columns)})


def _numeric_problem(frame: pd.DataFrame, columns: list[str]) -> str | None:
    bad = {c: str(frame[c].dtype) for c in columns if not _is_numeric(frame[c].dtype)}
    if bad:
        return f"needs numeric columns; {bad} are not (encode them in an earlier step)"
    return None


def _empty_problem(frame: pd.DataFrame, columns: list[str], what: str) -> str | None:
    empty = [c for c in columns if not frame[c].notna().any()]
    if empty:
        return f"columns {empty} have no values to learn {what} from; drop them first"
    return None


@dataclass(frozen=True)
class Impute(Step):
    """Fill missing values with a learned statistic or a constant.

    Args:
        columns: column names or a selector.
        strategy: ``"median"`` or ``"mean"`` (numeric columns; these come out as float64),
            ``"most_frequent"`` (ties go to the smallest value) or ``"constant"``.
        fill_value: the value for ``strategy="constant"`` (required there, refused elsewhere).

    Example::

        >>> Impute("numeric", strategy="mean").to_dict()
        {'impute': {'columns': 'numeric', 'strategy': 'mean', 'fill_value': None}}
    """

    step_name: ClassVar[str] = "impute"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "strategy": ("median", "mean", "most_frequent", "constant")
    }
    columns: Columns
    _: KW_ONLY
    strategy: Literal["median", "mean", "most_frequent", "constant"] = "median"
    fill_value: Any = None

    def _check(self) -> None:
        if (self.strategy == "constant") != (self.fill_value is not None):
            problem = (
                "is required with strategy 'constant'"
                if self.strategy == "constant"
                else f"is only used with strategy 'constant', not {self.strategy!r}"
            )
            raise _option_error(self.step_name, "fill_value", problem)

    def _problem(self, frame: pd.DataFrame, columns: list[str]) -> str | None:
        if self.strategy in ("median", "mean"):
            problem = _numeric_problem(frame, columns)
            if problem:
                return f"strategy {self.strategy!r} {problem}"
        if self.strategy != "constant":
            return _empty_problem(frame, columns, f"the {self.strategy}")
        return None

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        return SimpleImputer(
            strategy=self.strategy, fill_value=self.fill_value, keep_empty_features=True
        )


@dataclass(frozen=True)
class Scale(Step):
    """Scale numeric columns; missing values stay missing.

    Args:
        columns: numeric column names or a selector.
        method: ``"standard"`` (mean 0, population std 1), ``"minmax"`` (to [0, 1]) or
            ``"robust"`` (median 0, interquartile range 1).

    Example::

        >>> Scale(["income"], method="robust").columns
        ('income',)
    """

    step_name: ClassVar[str] = "scale"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"method": ("standard", "minmax", "robust")}
    numeric: ClassVar[bool] = True
    columns: Columns
    _: KW_ONLY
    method: Literal["standard", "minmax", "robust"] = "standard"

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        scalers = {
            "standard": skp.StandardScaler,
            "minmax": skp.MinMaxScaler,
            "robust": skp.RobustScaler,
        }
        return scalers[self.method]()


@dataclass(frozen=True)
class Normalize(Step):
    """Rescale each *row* of the selected columns to unit norm (scikit-learn ``Normalizer``).

    Row-wise, not per column (that is ``Scale(method="minmax")``): it learns nothing, rows of
    zeros stay zeros, and missing values are refused (impute them in an earlier step).

    Args:
        columns: numeric column names or a selector.
        norm: ``"l2"`` (Euclidean), ``"l1"`` (sum of absolute values) or ``"max"``.

    Example::

        >>> Normalize(["x", "y"], norm="l1").norm
        'l1'
    """

    step_name: ClassVar[str] = "normalize"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"norm": ("l1", "l2", "max")}
    grouping: ClassVar[Literal["run", "column", "block"]] = "block"
    numeric: ClassVar[bool] = True
    columns: Columns
    _: KW_ONLY
    norm: Literal["l1", "l2", "max"] = "l2"

    def _problem(self, frame: pd.DataFrame, columns: list[str]) -> str | None:
        missing = [c for c in columns if frame[c].isna().any()]
        if not _numeric_problem(frame, columns) and missing:
            return f"columns {missing} have missing values; impute them in an earlier step"
        return _numeric_problem(frame, columns)

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        return skp.Normalizer(norm=self.norm)


@dataclass(frozen=True)
class OneHotEncode(Step):
    """Replace each column by one 0/1 column per category, named ``<column>_<category>``.

    Missing values are a category of their own (``<column>_nan``).

    Args:
        columns: column names or a selector.
        max_categories: at most this many columns per input column, the rarest categories
            sharing ``<column>_infrequent_sklearn`` (None: no limit).
        handle_unknown: a category unseen by fit gives all zeros (``"ignore"``), the
            infrequent column (``"infrequent_if_exist"``) or an error (``"error"``).

    Example::

        >>> OneHotEncode(["region"], max_categories=10).handle_unknown
        'ignore'
    """

    step_name: ClassVar[str] = "one_hot_encode"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "handle_unknown": ("ignore", "infrequent_if_exist", "error")
    }
    columns: Columns
    _: KW_ONLY
    max_categories: int | None = None
    handle_unknown: Literal["ignore", "infrequent_if_exist", "error"] = "ignore"

    def _check(self) -> None:
        m = self.max_categories
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 2):
            raise _option_error(
                self.step_name, "max_categories", f"must be >= 2 or null; got {m!r}"
            )

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        return skp.OneHotEncoder(
            handle_unknown=self.handle_unknown,
            max_categories=self.max_categories,
            sparse_output=False,
        )


@dataclass(frozen=True)
class OrdinalEncode(Step):
    """Replace each category by its integer position (as float64; missing stays missing).

    Args:
        columns: column names or a selector.
        categories: ``{column: [categories in order]}`` for exactly the encoded columns;
            None learns the sorted categories from the data.
        handle_unknown: ``"use_encoded_value"`` (unseen categories become
            ``unknown_value``) or ``"error"``.
        unknown_value: the code of unseen categories.

    Example::

        >>> OrdinalEncode(["size"], categories={"size": ["S", "M", "L"]}).categories
        {'size': ('S', 'M', 'L')}
    """

    step_name: ClassVar[str] = "ordinal_encode"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "handle_unknown": ("use_encoded_value", "error")
    }
    columns: Columns
    _: KW_ONLY
    categories: Mapping[str, Sequence[Any]] | None = None
    handle_unknown: Literal["use_encoded_value", "error"] = "use_encoded_value"
    unknown_value: float = -1

    def _check(self) -> None:
        cats = self.categories
        if cats is not None:
            if not isinstance(cats, Mapping) or not all(
                isinstance(v, Sequence) and not isinstance(v, str) and v for v in cats.values()
            ):
                raise _option_error(
                    self.step_name, "categories",
                    f"must map each column to a non-empty list of categories; got {cats!r}",
                )  # fmt: skip
            object.__setattr__(self, "categories", {str(k): tuple(v) for k, v in cats.items()})
        uv = self.unknown_value
        if isinstance(uv, bool) or not isinstance(uv, int | float):
            raise _option_error(self.step_name, "unknown_value", f"must be a number; got {uv!r}")

    def _problem(self, frame: pd.DataFrame, columns: list[str]) -> str | None:
        cats = self.categories
        if cats is not None and set(cats) != set(columns):
            extra = [c for c in cats if c not in columns]
            return (
                f"categories must list exactly the encoded columns {columns}; missing for "
                f"{[c for c in columns if c not in cats]}, given for others {extra}"
            )
        return None

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        cats = self.categories
        use_value = self.handle_unknown == "use_encoded_value"
        return skp.OrdinalEncoder(
            # a trailing NaN category keeps missing values missing, as with "auto"
            categories="auto" if cats is None else [[*cats[c], np.nan] for c in columns],
            handle_unknown=self.handle_unknown,
            unknown_value=self.unknown_value if use_value else None,
        )


@dataclass(frozen=True)
class ClipOutliers(Step):
    """Clip numeric values to bounds learned from the data; missing values stay missing.

    Bounds per column: ``iqr``: [Q1 - factor*IQR, Q3 + factor*IQR] (factor default 1.5);
    ``quantile``: the ``lower_q`` and ``upper_q`` quantiles (linear interpolation);
    ``zscore``: mean -/+ factor * population std (factor default 3.0). In scikit-learn each
    column is a ``FunctionTransformer(numpy.clip)`` holding its two bounds.

    Args:
        columns: numeric column names or a selector.
        method: ``"iqr"``, ``"quantile"`` or ``"zscore"``.
        factor: the width for ``iqr`` and ``zscore`` (None: 1.5 and 3.0); not for quantile.
        lower_q: lower quantile for ``quantile``, in [0, 1).
        upper_q: upper quantile for ``quantile``, in (lower_q, 1].

    Example::

        >>> ClipOutliers(["income"], method="zscore", factor=4.0).factor
        4.0
    """

    step_name: ClassVar[str] = "clip_outliers"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"method": ("iqr", "quantile", "zscore")}
    grouping: ClassVar[Literal["run", "column", "block"]] = "column"
    numeric: ClassVar[bool] = True
    columns: Columns
    _: KW_ONLY
    method: Literal["iqr", "quantile", "zscore"] = "iqr"
    factor: float | None = None
    lower_q: float = 0.01
    upper_q: float = 0.99

    def _check(self) -> None:
        f, lo, hi = self.factor, self.lower_q, self.upper_q
        if f is not None and (isinstance(f, bool) or not isinstance(f, int | float) or f <= 0):
            raise _option_error(self.step_name, "factor", f"must be a number > 0; got {f!r}")
        if f is not None and self.method == "quantile":
            raise _option_error(self.step_name, "factor", "is not used by method 'quantile'")
        numbers = all(isinstance(q, int | float) and not isinstance(q, bool) for q in (lo, hi))
        if not numbers or not 0 <= lo < hi <= 1:
            raise _option_error(
                self.step_name, "lower_q",
                f"and 'upper_q' must satisfy 0 <= lower_q < upper_q <= 1; got {lo!r}, {hi!r}",
            )  # fmt: skip

    def _problem(self, frame: pd.DataFrame, columns: list[str]) -> str | None:
        return _numeric_problem(frame, columns) or _empty_problem(frame, columns, "bounds")

    def bounds(self, values: pd.Series) -> tuple[float, float]:
        """The ``(low, high)`` bounds this step learns from one column (missing ignored).

        Example::

            >>> ClipOutliers(["x"]).bounds(pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]))
            (-1.0, 7.0)
        """
        x = values.astype("float64")
        if self.method == "quantile":
            return float(x.quantile(self.lower_q)), float(x.quantile(self.upper_q))
        if self.method == "iqr":
            factor = 1.5 if self.factor is None else self.factor
            q1, q3 = float(x.quantile(0.25)), float(x.quantile(0.75))
            return q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
        factor = 3.0 if self.factor is None else self.factor
        mean, std = float(x.mean()), float(x.std(ddof=0))
        return mean - factor * std, mean + factor * std

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        low, high = self.bounds(frame[columns[0]])
        return skp.FunctionTransformer(
            np.clip, kw_args={"a_min": low, "a_max": high}, feature_names_out="one-to-one"
        )

    def _resolved(self, columns: list[str]) -> Step:
        factor = self.factor
        if factor is None and self.method != "quantile":
            factor = 1.5 if self.method == "iqr" else 3.0
        return replace(self, columns=tuple(columns), factor=factor)


@dataclass(frozen=True)
class DropColumns(Step):
    """Remove columns (identifiers, leaking fields, free text).

    Args:
        columns: column names or a selector.

    Example::

        >>> DropColumns(["customer_id"]).to_dict()
        {'drop_columns': {'columns': ['customer_id']}}
    """

    step_name: ClassVar[str] = "drop_columns"
    columns: Columns

    def transformer(self, frame: pd.DataFrame, columns: list[str]) -> Any:
        return "drop"


@dataclass(frozen=True)
class Deduplicate(Step):
    """Remove repeated rows: a dataset-level step that ``transform`` skips (see the module).

    Args:
        subset: the columns that decide whether rows repeat (None: all columns).
        keep: which repeated row stays: ``"first"``, ``"last"`` or ``False`` (none).

    Example::

        >>> Deduplicate(subset=["email"], keep="last").subset
        ('email',)
    """

    step_name: ClassVar[str] = "deduplicate"
    columns_option: ClassVar[str] = "subset"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"keep": ("first", "last", False)}
    _: KW_ONLY
    subset: Columns | None = None
    keep: Literal["first", "last", False] = "first"


def _unknown(where: str, kind: str, name: Any, known: list[str], index: int) -> InvalidInputError:
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InvalidInputError(
        f"{where}: unknown {kind} {name!r}{hint}; {kind}s are {', '.join(known)}",
        details={"step": index, kind.replace("step", "step_name"): name, "allowed": known},
    )


def _step_from_item(index: int, item: Any) -> Step:
    where = f"cleaning spec steps[{index}]"
    item = {item: None} if isinstance(item, str) else item
    if not isinstance(item, Mapping) or len(item) != 1:
        raise InvalidInputError(
            f"{where} must be a mapping with one key, the step name (e.g. "
            f"{{impute: {{columns: numeric}}}}); got {item!r}",
            details={"step": index},
        )
    ((name, options),) = item.items()
    cls = STEP_TYPES.get(name)
    if cls is None:
        raise _unknown(where, "step", name, list(STEP_TYPES), index)
    where, options = f"{where} ({name})", {} if options is None else options
    if not isinstance(options, Mapping):
        raise InvalidInputError(f"{where}: options must be a mapping; got {options!r}")
    names = [f.name for f in fields(cls)]
    for option in options:
        if option not in names:
            raise _unknown(where, "option", option, names, index)
    try:
        if cls.columns_option == "columns" and "columns" not in options:
            problem = f"is required: a list of column names or one of {', '.join(SELECTORS)}"
            raise _option_error(name, "columns", problem, SELECTORS)
        return cls(**options)
    except InvalidInputError as exc:
        details = {**exc.details, "step": index}
        message = exc.message.removeprefix(f"{name}: ")
        raise InvalidInputError(f"{where}: {message}", details=details) from None


@dataclass(frozen=True)
class CleaningSpec:
    """An ordered list of cleaning steps: the declarative, storable part of cleaning.

    Args:
        steps: the steps, applied in order.

    Raises:
        InvalidInputError: an item is not a :class:`Step`.

    Example::

        >>> spec = CleaningSpec([Impute("numeric"), DropColumns(["id"])])
        >>> CleaningSpec.from_yaml(spec.to_yaml()) == spec
        True
    """

    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        for i, step in enumerate(self.steps):
            if not isinstance(step, Step):
                raise InvalidInputError(
                    f"cleaning spec steps[{i}] must be a step such as Impute or Scale; "
                    f"got {type(step).__name__}",
                    details={"step": i},
                )
        object.__setattr__(self, "steps", tuple(self.steps))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CleaningSpec:
        """Build a spec from ``{"steps": [{step_name: {option: value}}, ...]}``.

        Args:
            data: the parsed spec; a step without options may be its bare name.

        Returns:
            The validated spec.

        Raises:
            InvalidInputError: names the step index, step, option and allowed values.

        Example::

            >>> CleaningSpec.from_dict({"steps": [{"scale": {"columns": ["x"]}}]}).steps
            (Scale(columns=('x',), method='standard'),)
        """
        if not isinstance(data, Mapping) or set(data) - {"steps"}:
            got = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise InvalidInputError(
                f"a cleaning spec is a mapping with one key, 'steps'; got {got}"
            )
        items = data.get("steps") or []
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise InvalidInputError(f"cleaning spec 'steps' must be a list; got {items!r}")
        return cls(tuple(_step_from_item(i, item) for i, item in enumerate(items)))

    def to_dict(self) -> dict[str, Any]:
        """``{"steps": [...]}`` with every option of every step, defaults included."""
        return {"steps": [step.to_dict() for step in self.steps]}

    @classmethod
    def from_yaml(cls, source: str | Path) -> CleaningSpec:
        """Parse a spec from YAML text (``str``) or a YAML file (``pathlib.Path``).

        Raises:
            InvalidInputError: the YAML does not parse or the spec is invalid.
        """
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"cleaning spec is not valid YAML: {exc}") from None
        return cls.from_dict({} if data is None else data)

    def to_yaml(self) -> str:
        """The spec as YAML that :meth:`from_yaml` reads back to an equal spec."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SpecLike: TypeAlias = CleaningSpec | Mapping[str, Any] | Sequence[Step] | None


def _coerce_spec(spec: SpecLike) -> CleaningSpec:
    if spec is None or isinstance(spec, CleaningSpec):
        return spec or CleaningSpec()
    if isinstance(spec, Mapping):
        return CleaningSpec.from_dict(spec)
    if isinstance(spec, str | bytes) or not isinstance(spec, Sequence):
        raise InvalidInputError(
            "spec must be a CleaningSpec, a {'steps': [...]} mapping or a list of steps "
            f"(for YAML use CleaningSpec.from_yaml); got {type(spec).__name__}"
        )
    return CleaningSpec(tuple(spec))


@dataclass(frozen=True)
class StepReport:
    """What one step (``index``, ``step`` name, resolved ``columns``) changed in its data.

    ``values_imputed`` and ``values_clipped`` count per column the values filled (impute)
    or moved to a bound (clip_outliers); ``rows_dropped`` counts deduplicated rows.
    """

    index: int
    step: str
    columns: tuple[str, ...]
    values_imputed: dict[str, int] = field(default_factory=dict)
    values_clipped: dict[str, int] = field(default_factory=dict)
    rows_dropped: int = 0
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-friendly."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning did to a dataset: one :class:`StepReport` per step, rows and columns."""

    steps: tuple[StepReport, ...]
    rows_in: int
    rows_out: int
    columns_in: tuple[str, ...]
    columns_out: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-friendly (steps as a list of dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)} | {
            "steps": [s.to_dict() for s in self.steps]
        }


@dataclass(frozen=True, eq=False)
class FittedStep:
    """One learned step of a :class:`Cleaner`.

    Attributes:
        index: the step's position in the spec.
        step: the step with explicit columns (and the clip factor default filled in).
        transformer: the fitted scikit-learn ``ColumnTransformer`` (pandas output), or None
            for :class:`Deduplicate` and for a selector that matched no column.
    """

    index: int
    step: Step
    transformer: Any


def _resolve(columns: Columns | None, frame: pd.DataFrame, where: str) -> list[str]:
    if columns is None or columns == "all":
        return [str(c) for c in frame.columns]
    if columns in ("numeric", "categorical"):
        test = _is_numeric if columns == "numeric" else _is_categorical
        return [str(c) for c in frame.columns if test(frame[c].dtype)]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"{where}: columns {missing} are not in the data; it has {list(frame.columns)}",
            details={"missing": missing},
        )
    return list(columns)


def _segments(step: Step, frame: pd.DataFrame, chosen: list[str]) -> list[tuple[bool, list[str]]]:
    """Consecutive column groups ``(transformed?, names)`` that keep the column order."""
    wanted, segments = set(chosen), list[tuple[bool, list[str]]]()
    last: tuple[bool, bool] | None = None
    for name in frame.columns:
        selected = name in wanted
        if selected and step.grouping == "block":
            if not any(sel for sel, _ in segments):
                segments.append((True, [c for c in frame.columns if c in wanted]))
            last = None
            continue
        key = (selected, _is_numeric(frame[name].dtype))
        if key == last and not (selected and step.grouping == "column"):
            segments[-1][1].append(name)
        else:
            segments.append((selected, [name]))
        last = key
    return segments


def _column_transformer(step: Step, frame: pd.DataFrame, chosen: list[str]) -> Any:
    parts = [
        (f"{step.step_name}_{j}", step.transformer(frame, cols), cols)
        if selected
        else (f"keep_{j}", "passthrough", cols)
        for j, (selected, cols) in enumerate(_segments(step, frame, chosen))
    ]
    ct = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return ct.set_output(transform="pandas")


def _report(i: int, step: Step, cols: list[str], before: Any, after: Any) -> StepReport:
    def changed(c: str) -> int:
        if isinstance(step, Impute):
            return int(before[c].isna().sum() - after[c].isna().sum())
        return int((before[c].notna() & before[c].ne(after[c])).sum())

    counts = {c: changed(c) for c in cols} if isinstance(step, Impute | ClipOutliers) else {}
    return StepReport(
        index=i, step=step.step_name, columns=tuple(cols),
        values_imputed=counts if isinstance(step, Impute) else {},
        values_clipped=counts if isinstance(step, ClipOutliers) else {},
        rows_dropped=len(before) - len(after),
        columns_added=tuple(c for c in after.columns if c not in before.columns),
        columns_removed=tuple(c for c in before.columns if c not in after.columns),
    )  # fmt: skip


def _as_frame(X: Any) -> pd.DataFrame:
    frame = X
    if not isinstance(X, pd.DataFrame):
        array = np.asarray(X)
        if array.ndim != 2:
            raise InvalidInputError(f"Cleaner expects a DataFrame; got shape {array.shape}")
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InvalidInputError(
            f"Cleaner needs string column names; got {bad[:5]}; rename them, e.g. "
            "df.columns = df.columns.astype(str)"
        )
    if frame.columns.has_duplicates:
        repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InvalidInputError(f"column names must be unique; repeated: {repeated}")
    return frame


def _run(method: Any, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Call a scikit-learn method, turning its data errors into ``InvalidInputError``."""
    try:
        out: pd.DataFrame = method(frame)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    return out


class Cleaner(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The scikit-learn transformer that learns and applies a :class:`CleaningSpec`.

    ``fit`` learns each step from ``X`` alone; ``transform`` applies the steps and never
    drops or reorders rows. DataFrames in, DataFrames out, index kept.

    Args:
        spec: a :class:`CleaningSpec`, its ``{"steps": [...]}`` dict or a list of steps
            (None: no steps). Stored as given, validated by ``fit``.

    Attributes:
        spec_: the validated spec. resolved_spec_: the same with selectors resolved.
        steps_: one :class:`FittedStep` per step. report_: the :class:`CleaningReport` of
            the data ``fit`` saw. feature_names_in_, n_features_in_: the fitted columns.

    Example::

        >>> df = pd.DataFrame({"x": [1.0, None, 3.0], "city": ["a", "b", "a"]})
        >>> cleaner = Cleaner(spec=[Impute("numeric"), OneHotEncode(["city"])]).fit(df)
        >>> cleaner.transform(df).to_dict("list")
        {'x': [1.0, 2.0, 3.0], 'city_a': [1.0, 0.0, 1.0], 'city_b': [0.0, 1.0, 0.0]}
    """

    def __init__(self, *, spec: SpecLike = None) -> None:
        self.spec = spec

    def fit(self, X: Any, y: Any = None) -> Cleaner:
        """Learn every step from ``X`` (``y`` is ignored).

        Args:
            X: the training frame (string column names).
            y: ignored; accepted for scikit-learn pipelines.

        Returns:
            self.

        Raises:
            InvalidInputError: the spec is invalid or a step cannot learn from ``X`` (wrong
                dtypes, an all-missing column...); the message names the step.
            SchemaMismatchError: a step names columns that ``X`` lacks.
        """
        self._fit(X)
        return self

    def _fit(self, X: Any) -> pd.DataFrame:
        frame = _as_frame(X)
        spec, names_in = _coerce_spec(self.spec), [str(c) for c in frame.columns]
        fitted: list[FittedStep] = []
        reports: list[StepReport] = []
        rows_in = len(frame)
        for i, step in enumerate(spec.steps):
            where = f"cleaning step {i} ({step.step_name})"
            cols = _resolve(getattr(step, step.columns_option), frame, where)
            problem = step._problem(frame, cols) if cols else None
            if problem:
                raise InvalidInputError(f"{where}: {problem}", details={"step": i})
            before, transformer = frame, None
            if isinstance(step, Deduplicate):
                frame = frame[~frame.duplicated(subset=cols, keep=step.keep)]
            elif cols:
                transformer = _column_transformer(step, frame, cols)
                frame = _run(transformer.fit_transform, frame, where)
            fitted.append(FittedStep(i, step._resolved(cols), transformer))
            reports.append(_report(i, step, cols, before, frame))
        self.spec_ = spec
        self.resolved_spec_ = CleaningSpec(tuple(f.step for f in fitted))
        self.steps_ = tuple(fitted)
        self.feature_names_in_ = np.asarray(names_in, dtype=object)
        self.n_features_in_ = len(names_in)
        self.feature_names_out_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        columns_out = tuple(self.feature_names_out_)
        self.report_ = CleaningReport(
            tuple(reports), rows_in, len(frame), tuple(names_in), columns_out
        )
        return frame

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "steps_")

    def _check_fitted(self) -> None:
        if not hasattr(self, "steps_"):
            raise NotFittedError("this Cleaner is not fitted yet; call fit(X) first")

    def transform(self, X: Any) -> pd.DataFrame:
        """Apply the learned steps (all but :class:`Deduplicate`) to ``X``.

        Args:
            X: a frame with the columns ``fit`` saw, in any order (others are dropped).

        Returns:
            The cleaned frame: same rows and index, columns ``get_feature_names_out()``.

        Raises:
            NotFittedError: ``fit`` has not run.
            SchemaMismatchError: columns ``fit`` saw are missing; the message names them.
            InvalidInputError: values a step cannot take (an unknown category with
                ``handle_unknown="error"``, text in a numeric column...); names the step.
        """
        self._check_fitted()
        frame = _as_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"the data lacks columns the Cleaner was fitted on: {missing}; add them "
                "(values may be missing) or refit without them",
                details={"missing": missing},
            )
        frame = frame[list(self.feature_names_in_)]
        for fitted in self.steps_:
            if fitted.transformer is not None:
                where = f"cleaning step {fitted.index} ({fitted.step.step_name})"
                frame = _run(fitted.transformer.transform, frame, where)
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        """The output column names, in order (``input_features`` is ignored).

        Raises:
            NotFittedError: ``fit`` has not run.
        """
        self._check_fitted()
        return np.asarray(self.feature_names_out_, dtype=object)

    def to_sklearn(self) -> Any:
        """The fitted steps as a plain scikit-learn ``Pipeline`` (no shipyard needed to load).

        Its ``transform`` equals :meth:`transform` on frames with the fitted columns
        (:class:`Deduplicate` is left out, as in :meth:`transform`). Save it with
        :func:`skops.io.dumps`; loading trusts at most :data:`SKOPS_TRUSTED_TYPES`.

        Returns:
            A fitted ``Pipeline`` (pandas output) of copies of the ``ColumnTransformer`` of
            each step, named ``<index>_<step>``.

        Raises:
            NotFittedError: ``fit`` has not run.

        Example::

            >>> import skops.io
            >>> df = pd.DataFrame({"x": [1.0, None, 30.0]})
            >>> cleaner = Cleaner(spec=[Impute(["x"]), ClipOutliers(["x"])]).fit(df)
            >>> data = skops.io.dumps(cleaner.to_sklearn())
            >>> set(skops.io.get_untrusted_types(data=data)) <= set(SKOPS_TRUSTED_TYPES)
            True
        """
        self._check_fitted()
        parts = [
            (f"{f.index}_{f.step.step_name}", copy.deepcopy(f.transformer))
            for f in self.steps_
            if f.transformer is not None
        ]
        if not parts:
            names = list(self.feature_names_in_)
            select = ColumnTransformer(
                [("keep", "passthrough", names)], verbose_feature_names_out=False
            )
            parts = [
                ("select", select.set_output(transform="pandas").fit(pd.DataFrame(columns=names)))
            ]
        return Pipeline(parts).set_output(transform="pandas")


def clean_frame(df: pd.DataFrame, spec: SpecLike) -> tuple[pd.DataFrame, Cleaner, CleaningReport]:
    """Clean a dataset: learn the spec from ``df`` and apply it, deduplication included.

    Args:
        df: the dataset.
        spec: a :class:`CleaningSpec`, its dict form or a list of steps.

    Returns:
        ``(cleaned, cleaner, report)``: the cleaned frame (index kept), the fitted
        :class:`Cleaner` to reuse on new data, and the :class:`CleaningReport`.

    Raises:
        InvalidInputError: the spec is invalid or cannot be learned from ``df``.
        SchemaMismatchError: the spec names columns ``df`` lacks.

    Example::

        >>> df = pd.DataFrame({"x": [1.0, None, 1.0], "id": [1, 2, 1]})
        >>> spec = CleaningSpec([Deduplicate(), Impute(["x"], strategy="mean")])
        >>> cleaned, cleaner, report = clean_frame(df, spec)
        >>> cleaned["x"].tolist(), report.rows_out, report.steps[1].values_imputed
        ([1.0, 1.0], 2, {'x': 1})
    """
    cleaner = Cleaner(spec=spec)
    cleaned = cleaner._fit(df)
    return cleaned, cleaner, cleaner.report_
