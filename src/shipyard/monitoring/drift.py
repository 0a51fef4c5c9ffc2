"""Drift between a reference table and a current one: per-column tests, distances, a verdict.

:class:`DriftDetector` follows the scikit-learn contract: the constructor only stores
its keyword-only parameters, :meth:`~DriftDetector.fit` learns the reference (sorted
values, category counts, quantile bin edges; attributes ending in ``_``) and returns
``self``, and :meth:`~DriftDetector.test` compares a current table with it::

    result = DriftDetector().fit(reference).test(current)
    result.drifted_columns          # ["income", "region"]
    result.to_frame()               # one row per column

Column kinds (decided on the reference at ``fit``):

* **numeric**: float columns; integer columns with more than 20 distinct values;
  datetime and timedelta columns (as int64 nanoseconds). Infinite values count as
  missing. Values of the current table that do not parse as numbers (strings in a
  numeric column) count as missing: type errors are the quality module's business.
* **categorical**: text, ``category`` and boolean columns, integer columns with at most
  20 distinct values in the reference (codes, ratings, counts of a few kinds), and every
  column named in ``categorical=``. Values are compared by their text (``1``, ``1.0``
  and ``"1"`` are the same category, so an integer column that gains missing values and
  turns float still matches).

Default method per column (``method=None`` or ``"auto"``), as Evidently and NannyML
document theirs:

=========================  ==============================================================
numeric                    ``"ks"``: two-sample Kolmogorov-Smirnov test, asymptotic
                           p-value (``scipy.stats.ks_2samp(method="asymp")``'s values)
categorical, 2 categories  ``"ztest"``: two-proportion z-test (both sides together have
                           exactly two categories)
categorical, otherwise     ``"chisquare"``: chi-square test of the 2 x k table of
                           reference and current counts; new categories count; categories
                           whose expected count is below 5 are pooled into one "other" cell
=========================  ==============================================================

Other methods: ``"anderson"`` (k-sample Anderson-Darling on a fixed-seed sample of at
most 5,000 values per side; scipy floors and caps its p-value to 0.001..0.25),
``"wasserstein"`` (Wasserstein-1 distance divided by the reference standard deviation),
``"psi"`` (population stability index; numeric columns use ``bins`` quantile bins of the
reference, empty bins count as 1e-4) and ``"jensenshannon"`` (Jensen-Shannon distance,
base 2, in [0, 1], on the same bins or on the categories).

Tests (``ks``, ``anderson``, ``chisquare``, ``ztest``) flag a column when its p-value,
corrected for testing many columns (Holm's step-down method by default), is below
``alpha``.
Distances (``wasserstein``, ``psi``, ``jensenshannon``) flag a column when the value
reaches its threshold (0.1, 0.2 and 0.1 by default); their p-values are NaN and take no
part in the correction. Every tested column also gets an effect size, ``distance``: the
normalised Wasserstein distance for numeric columns, the Jensen-Shannon distance for
categorical ones, cheap enough to chart over time.

Why Holm and not Benjamini-Hochberg: a monitor opens one alert per drifted column, so
what matters is the chance of *any* false alarm, which Holm bounds by ``alpha`` (like
Bonferroni, but never less powerful). Benjamini-Hochberg bounds the expected *share* of
false alarms among the flagged columns instead: when several columns really drift it
lets more null columns through (on the benchmark's 1,000-row sample it flagged one).
``correction="bh"`` finds more when many columns drift and a few false alarms are
acceptable. With very large tables every test finds tiny, harmless differences
significant; use a distance method to flag only changes of a given size.

:func:`domain_classifier` is the multivariate check: how well a gradient-boosted model
tells reference rows from current ones (ROC-AUC 0.5: indistinguishable).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as pdt

from shipyard.core.errors import (
    InvalidInputError,
    NotFittedError,
    NotFoundError,
    SchemaMismatchError,
)
from shipyard.monitoring._stats import (
    adjust,
    anderson,
    chi_square,
    jensen_shannon,
    ks_p_value,
    ks_wasserstein,
    psi,
    z_test,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METHODS_NUMERIC = ("ks", "wasserstein", "psi", "jensenshannon", "anderson")
"""Methods for numeric columns."""
METHODS_CATEGORICAL = ("chisquare", "psi", "jensenshannon", "ztest")
"""Methods for categorical columns."""
TEST_METHODS = frozenset({"ks", "anderson", "chisquare", "ztest"})
"""Methods that are statistical tests: they decide by the corrected p-value."""
DEFAULT_THRESHOLDS: Mapping[str, float] = {"wasserstein": 0.1, "psi": 0.2, "jensenshannon": 0.1}
"""Default thresholds of the distance methods (a column drifts when value >= threshold)."""
CORRECTIONS = ("bh", "holm", "bonferroni", "none")
"""Multiple-testing corrections: Benjamini-Hochberg, Holm, Bonferroni, none."""
MAX_INTEGER_CATEGORIES = 20
"""Integer columns with at most this many distinct reference values are categorical."""
MAX_LISTED_CATEGORIES = 5
"""Most new or vanished categories named in a column's ``detail``."""

_ALL_METHODS = tuple(dict.fromkeys(METHODS_NUMERIC + METHODS_CATEGORICAL))
_METHOD_LABELS = {
    "ks": "KS D",
    "anderson": "Anderson-Darling A2",
    "chisquare": "chi-square X2",
    "ztest": "z",
    "wasserstein": "Wasserstein/std",
    "psi": "PSI",
    "jensenshannon": "Jensen-Shannon",
}
_CORRECTION_LABELS = {"bh": "BH", "holm": "Holm", "bonferroni": "Bonferroni"}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's drift: the method, its statistic and p-value, the verdict, an effect size.

    ``p_value`` and ``adjusted_p_value`` are NaN for distance methods and for columns not
    tested (``status`` ``"not_enough_data"`` or ``"all_missing"``). ``threshold`` is
    ``alpha`` for tests and the distance threshold otherwise. ``statistic`` of ``"ztest"``
    is signed: positive when the current share of the tested category is higher.
    ``n_reference`` and ``n_current`` count the non-missing values.
    """

    column: str
    kind: str
    method: str
    statistic: float
    p_value: float
    adjusted_p_value: float
    threshold: float
    drifted: bool
    distance: float
    n_reference: int
    n_current: int
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Every column's drift and the table's verdict.

    ``drift_share`` is the share of tested columns (``status == "ok"``) that drifted;
    ``dataset_drift`` is whether it reached ``threshold_share``. ``n_reference`` and
    ``n_current`` are the row counts of the two tables.

    Example:
        >>> r = DriftResult(columns=(), drift_share=0.0, dataset_drift=False,
        ...                 threshold_share=0.5, n_reference=0, n_current=0,
        ...                 correction="bh", alpha=0.05)
        >>> r.drifted_columns
        []
    """

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    dataset_drift: bool
    threshold_share: float
    n_reference: int
    n_current: int
    correction: str
    alpha: float

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, in table order."""
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: Hashable) -> ColumnDrift:
        """The result of column ``name``.

        Raises:
            NotFoundError: no column of that name was tested.
        """
        for c in self.columns:
            if c.column == str(name):
                return c
        known = ", ".join(repr(c.column) for c in self.columns[:20])
        raise NotFoundError(
            f"DriftResult has no column {str(name)!r}; tested columns: {known or 'none'}",
            details={"column": str(name)},
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column, with the :class:`ColumnDrift` field names as columns."""
        names = [f.name for f in dataclasses.fields(ColumnDrift)]
        return pd.DataFrame([[getattr(c, n) for n in names] for c in self.columns], columns=names)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: the fields, ``drifted_columns``; non-finite floats -> None."""
        return {
            "columns": [
                {f.name: _plain(getattr(c, f.name)) for f in dataclasses.fields(ColumnDrift)}
                for c in self.columns
            ],
            "drifted_columns": self.drifted_columns,
            "drift_share": _plain(self.drift_share),
            "dataset_drift": self.dataset_drift,
            "threshold_share": self.threshold_share,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "correction": self.correction,
            "alpha": self.alpha,
        }


# --------------------------------------------------------------------------- learned state


@dataclass(frozen=True, slots=True)
class _NumericReference:
    values: FloatArray  # sorted, finite
    mean: float
    std: float
    edges: FloatArray  # inner quantile bin edges (unique, sorted)
    bin_counts: IntArray
    source: str  # "number" | "datetime" | "timedelta"


@dataclass(frozen=True, slots=True)
class _CategoricalReference:
    counts: pd.Series  # index: category text; most frequent first


@dataclass(frozen=True, slots=True)
class _ColumnReference:
    label: Hashable
    name: str
    kind: str
    method: str  # a method name, or "auto" (categorical: decided when testing)
    n: int
    numeric: _NumericReference | None = None
    categorical: _CategoricalReference | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    method: str
    statistic: float = math.nan
    p_value: float = math.nan
    distance: float = math.nan
    n_reference: int = 0
    n_current: int = 0
    status: str = "ok"
    notes: str = ""


# --------------------------------------------------------------------------- detector


class DriftDetector:
    """Per-column drift of a current table against a reference table.

    Args:
        method: ``None`` or ``"auto"`` picks a method per column (see the module
            docstring); a method name applies to every column whose kind it suits (the
            others keep the automatic choice); a mapping ``column -> method`` sets
            single columns (its values may be ``"auto"``) and the rest are automatic.
        alpha: Significance level of the tests.
        correction: ``"holm"`` (the default), ``"bh"`` (Benjamini-Hochberg),
            ``"bonferroni"`` or ``"none"``, applied over the p-values of all tested columns.
        thresholds: Distance thresholds by method name, overriding
            :data:`DEFAULT_THRESHOLDS` (``wasserstein`` is in reference standard
            deviations).
        columns: Columns to compare (default: every column of the reference).
        categorical: Columns to treat as categorical whatever their dtype.
        drift_share: The table drifts when at least this share of the tested columns do.
        bins: Quantile bins of the reference for ``psi`` and ``jensenshannon`` on numeric
            columns (fewer when the reference has ties).
        min_rows: A column with fewer non-missing values on either side is not tested
            (``status="not_enough_data"``).

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=500), "y": rng.choice(["a", "b"], 500)})
        >>> cur = pd.DataFrame({"x": rng.normal(1.0, size=500), "y": rng.choice(["a", "b"], 500)})
        >>> DriftDetector().fit(ref).test(cur).drifted_columns
        ['x']
    """

    def __init__(
        self,
        *,
        method: str | Mapping[str, str] | None = None,
        alpha: float = 0.05,
        correction: str = "holm",
        thresholds: Mapping[str, float] | None = None,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        drift_share: float = 0.5,
        bins: int = 10,
        min_rows: int = 30,
    ) -> None:
        self.method = method
        self.alpha = alpha
        self.correction = correction
        self.thresholds = thresholds
        self.columns = columns
        self.categorical = categorical
        self.drift_share = drift_share
        self.bins = bins
        self.min_rows = min_rows

    def fit(self, reference: pd.DataFrame) -> DriftDetector:
        """Learn the reference: per column its kind, method and summary (sorted values...).

        Sets ``columns_`` (the tested column labels), ``kinds_`` and ``methods_`` (by
        column; ``"auto"`` for categorical columns whose test is chosen when testing),
        ``thresholds_``, ``n_reference_`` and ``reference_`` (the per-column state).

        Returns:
            ``self``.

        Raises:
            InvalidInputError: the reference is empty or not a DataFrame, a parameter is
                out of range, a method name is unknown or does not suit its column's
                kind, or a named column is not in the reference.
        """
        self._check_params()
        if not isinstance(reference, pd.DataFrame):
            raise InvalidInputError(
                f"DriftDetector.fit: reference must be a pandas DataFrame, got "
                f"{type(reference).__name__}"
            )
        if reference.shape[0] == 0 or reference.shape[1] == 0:
            raise InvalidInputError(
                f"DriftDetector.fit: the reference table is empty ({reference.shape[0]} rows, "
                f"{reference.shape[1]} columns); fit on the data the model was trained or "
                "validated on"
            )
        labels = self._selected_columns(reference)
        forced = set(self.categorical or ())
        _check_present("categorical", forced, reference)
        per_column: dict[Hashable, str] = {}
        if isinstance(self.method, Mapping):
            per_column.update(self.method)
        _check_present("method", per_column.keys(), reference)
        for label, m in per_column.items():
            _check_method(m, where=f"method[{label!r}]")
        global_method = "auto"
        if self.method is not None and not isinstance(self.method, Mapping):
            _check_method(self.method, where="method")
            global_method = self.method

        state: dict[Hashable, _ColumnReference] = {}
        for label in labels:
            series = reference[label]
            kind, source, counts = _kind_of(series, categorical=label in forced)
            requested = per_column.get(label, "auto")
            if requested == "auto" and global_method in _suited(kind):
                requested = global_method
            if requested not in ("auto", *_suited(kind)):
                raise InvalidInputError(
                    f"DriftDetector: method {requested!r} does not suit column {label!r}, "
                    f"which is {kind}; methods for {kind} columns: "
                    f"{', '.join(_suited(kind))}"
                    + (" (or pass it in categorical=)" if kind == "numeric" else ""),
                    details={"column": str(label), "method": requested, "kind": kind},
                )
            if requested == "auto" and kind == "numeric":
                requested = "ks"
            state[label] = _fit_column(
                label,
                series,
                kind=kind,
                source=source,
                counts=counts,
                method=requested,
                bins=self.bins,
            )
        if global_method != "auto" and not any(
            s.kind in _kinds_of_method(global_method) for s in state.values()
        ):
            kinds = " or ".join(_kinds_of_method(global_method))
            raise InvalidInputError(
                f"DriftDetector: method={global_method!r} applies to {kinds} columns and "
                f"none of the tested columns is one; pick another method or pass "
                "categorical=",
                details={"method": global_method},
            )
        self.columns_: tuple[Hashable, ...] = tuple(labels)
        self.kinds_: dict[Hashable, str] = {k: s.kind for k, s in state.items()}
        self.methods_: dict[Hashable, str] = {k: s.method for k, s in state.items()}
        self.thresholds_: dict[str, float] = {**DEFAULT_THRESHOLDS, **(self.thresholds or {})}
        self.n_reference_: int = int(reference.shape[0])
        self.reference_: dict[Hashable, _ColumnReference] = state
        return self

    def test(self, current: pd.DataFrame) -> DriftResult:
        """Compare ``current`` with the fitted reference, column by column.

        Columns of ``current`` that were not fitted are ignored.

        Raises:
            NotFittedError: :meth:`fit` was not called.
            InvalidInputError: ``current`` is not a DataFrame.
            SchemaMismatchError: a fitted column is missing from ``current``.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError(
                "This DriftDetector is not fitted yet: call fit(reference) before test(current)"
            )
        if not isinstance(current, pd.DataFrame):
            raise InvalidInputError(
                f"DriftDetector.test: current must be a pandas DataFrame, got "
                f"{type(current).__name__}"
            )
        missing = [c for c in self.columns_ if c not in current.columns]
        if missing:
            raise SchemaMismatchError(
                f"DriftDetector.test: the current table lacks {len(missing)} fitted "
                f"column(s): {', '.join(map(repr, missing[:20]))}; add them or fit the "
                "detector with columns= set to the columns both tables have",
                details={"missing_columns": [str(c) for c in missing]},
            )
        outcomes = [
            _test_column(ref, _column(current, ref.label), min_rows=self.min_rows)
            for ref in self.reference_.values()
        ]
        tested = np.array(
            [
                o.p_value if o.method in TEST_METHODS and o.status == "ok" else math.nan
                for o in outcomes
            ],
            dtype=np.float64,
        )
        adjusted = adjust(tested, self.correction)
        columns = tuple(
            self._verdict(ref, o, float(adj))
            for ref, o, adj in zip(self.reference_.values(), outcomes, adjusted, strict=True)
        )
        ok = [c for c in columns if c.status == "ok"]
        share = sum(c.drifted for c in ok) / len(ok) if ok else 0.0
        return DriftResult(
            columns=columns,
            drift_share=float(share),
            dataset_drift=bool(ok) and share >= self.drift_share,
            threshold_share=float(self.drift_share),
            n_reference=self.n_reference_,
            n_current=int(current.shape[0]),
            correction=self.correction,
            alpha=float(self.alpha),
        )

    # ---------------------------------------------------------------- helpers

    def _verdict(self, ref: _ColumnReference, o: _Outcome, adjusted: float) -> ColumnDrift:
        is_test = o.method in TEST_METHODS
        threshold = float(self.alpha) if is_test else self.thresholds_[o.method]
        label = _METHOD_LABELS[o.method]
        if o.status != "ok":
            drifted = False
            why = (
                "no values on one side"
                if o.status == "all_missing"
                else f"fewer than {self.min_rows} values on one side"
            )
            detail = f"not tested: {why} ({o.n_reference} reference, {o.n_current} current)"
            adjusted = math.nan
        elif is_test:
            drifted = bool(adjusted < threshold)
            corrected = ""
            if self.correction != "none":
                name = _CORRECTION_LABELS[self.correction]
                corrected = f" ({name}-adjusted {adjusted:.2g})"
            sign = "<" if drifted else ">="
            detail = f"{label}={o.statistic:.3g}, p={o.p_value:.2g}{corrected} {sign} {threshold:g}"
        else:
            drifted = bool(o.statistic >= threshold)
            detail = f"{label}={o.statistic:.3g} {'>=' if drifted else '<'} {threshold:g}"
            adjusted = math.nan
        if o.notes:
            detail = f"{detail}; {o.notes}"
        return ColumnDrift(
            column=ref.name,
            kind=ref.kind,
            method=o.method,
            statistic=float(o.statistic),
            p_value=float(o.p_value),
            adjusted_p_value=float(adjusted),
            threshold=threshold,
            drifted=drifted,
            distance=float(o.distance),
            n_reference=int(o.n_reference),
            n_current=int(o.n_current),
            status=o.status,
            detail=detail,
        )

    def _check_params(self) -> None:
        def bad(name: str, expected: str, got: Any) -> InvalidInputError:
            return InvalidInputError(
                f"DriftDetector: {name} must be {expected}, got {got!r}",
                details={"parameter": name},
            )

        if not _is_real(self.alpha) or not 0.0 < float(self.alpha) < 1.0:
            raise bad("alpha", "a number between 0 and 1 (e.g. 0.05)", self.alpha)
        if self.correction not in CORRECTIONS:
            raise bad("correction", f"one of {', '.join(map(repr, CORRECTIONS))}", self.correction)
        if not _is_real(self.drift_share) or not 0.0 < float(self.drift_share) <= 1.0:
            raise bad("drift_share", "a share in (0, 1]", self.drift_share)
        if not _is_integer(self.bins) or self.bins < 2:
            raise bad("bins", "an integer >= 2", self.bins)
        if not _is_integer(self.min_rows) or self.min_rows < 1:
            raise bad("min_rows", "an integer >= 1", self.min_rows)
        for name, value in (self.thresholds or {}).items():
            if name not in DEFAULT_THRESHOLDS:
                raise bad(
                    "thresholds",
                    f"keyed by distance methods ({', '.join(DEFAULT_THRESHOLDS)})",
                    name,
                )
            if not _is_real(value) or not math.isfinite(float(value)) or float(value) <= 0:
                raise bad(f"thresholds[{name!r}]", "a positive number", value)

    def _selected_columns(self, reference: pd.DataFrame) -> list[Hashable]:
        if reference.columns.has_duplicates:
            dupes = reference.columns[reference.columns.duplicated()].unique().tolist()
            raise InvalidInputError(
                f"DriftDetector.fit: the reference has duplicate column names {dupes[:10]}; "
                "rename them",
            )
        if self.columns is None:
            return list(reference.columns)
        if isinstance(self.columns, str):
            raise InvalidInputError(
                f"DriftDetector: columns must be a list of names, got the string "
                f"{self.columns!r}; write columns=[{self.columns!r}]"
            )
        labels: list[Hashable] = list(dict.fromkeys(self.columns))
        if not labels:
            raise InvalidInputError("DriftDetector: columns is empty; name at least one column")
        _check_present("columns", labels, reference)
        return labels


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, **detector_params: Any
) -> DriftResult:
    """Fit a :class:`DriftDetector` (built with ``detector_params``) and test ``current``.

    Example:
        >>> import pandas as pd
        >>> ref = pd.DataFrame({"x": range(100)})
        >>> drift_table(ref, ref + 1000, method="psi").drifted_columns
        ['x']
    """
    return DriftDetector(**detector_params).fit(reference).test(current)


# --------------------------------------------------------------------------- fitting


def _kind_of(series: pd.Series, *, categorical: bool) -> tuple[str, str, pd.Series | None]:
    """``(kind, source, counts)``: counts are the category counts when already computed."""
    dtype = series.dtype
    if categorical:
        return "categorical", "value", None
    if pdt.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", "value", None
    if pdt.is_datetime64_any_dtype(dtype):
        return "numeric", "datetime", None
    if pdt.is_timedelta64_dtype(dtype):
        return "numeric", "timedelta", None
    if pdt.is_integer_dtype(dtype):
        raw = series.value_counts(dropna=True, sort=False)
        if len(raw) <= MAX_INTEGER_CATEGORIES:
            return "categorical", "value", _category_counts(series, raw)
        return "numeric", "number", None
    if pdt.is_numeric_dtype(dtype) and not pdt.is_complex_dtype(dtype):
        return "numeric", "number", None
    return "categorical", "value", None


def _fit_column(
    label: Hashable,
    series: pd.Series,
    *,
    kind: str,
    source: str,
    counts: pd.Series | None,
    method: str,
    bins: int,
) -> _ColumnReference:
    if kind == "categorical":
        if counts is None:
            counts = _category_counts(series)
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        return _ColumnReference(
            label=label,
            name=str(label),
            kind=kind,
            method=method,
            n=int(counts.sum()),
            categorical=_CategoricalReference(counts=counts),
        )
    values = np.sort(_as_floats(series, source))
    n = values.size
    if n:
        mean = float(values.mean())
        std = float(values.std())
        edges = np.unique(_quantiles_of_sorted(values, np.linspace(0, 1, bins + 1)[1:-1]))
    else:
        mean, std, edges = math.nan, math.nan, np.empty(0)
    return _ColumnReference(
        label=label,
        name=str(label),
        kind=kind,
        method=method,
        n=n,
        numeric=_NumericReference(
            values=values,
            mean=mean,
            std=std,
            edges=edges,
            bin_counts=_bin_counts(values, edges),
            source=source,
        ),
    )


def _as_floats(series: pd.Series, source: str, *, keep_missing: bool = False) -> FloatArray:
    """The column as float64 (datetimes as int64 ns); non-finite and unparsable dropped."""
    dtype = series.dtype
    out: FloatArray
    if source in ("datetime", "timedelta"):
        is_time = (
            pdt.is_datetime64_any_dtype(dtype)
            if source == "datetime"
            else pdt.is_timedelta64_dtype(dtype)
        )
        s = series
        if not is_time:
            s = (
                pd.to_datetime(series, errors="coerce", utc=True)
                if source == "datetime"
                else pd.to_timedelta(series, errors="coerce")
            )
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        raw = s.to_numpy(dtype="datetime64[ns]" if source == "datetime" else "timedelta64[ns]")
        out = raw.view(np.int64).astype(np.float64)
        out[np.isnat(raw)] = np.nan
    elif (
        pdt.is_numeric_dtype(dtype)  # bool included
        and not pdt.is_complex_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    ):
        out = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    else:
        parsed = pd.to_numeric(series.astype(object), errors="coerce")
        out = np.asarray(parsed.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    if keep_missing:
        out = out.copy()  # to_numpy may share memory with the caller's frame
        out[~np.isfinite(out)] = np.nan
        return out
    finite = np.isfinite(out)
    return out if finite.all() else out[finite]


def _category_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def _category_counts(series: pd.Series, raw: pd.Series | None = None) -> pd.Series:
    """Counts of the non-missing values by their text (``1``, ``1.0`` and ``"1"`` are one).

    ``raw`` is the column's ``value_counts(dropna=True)`` when already computed.
    """
    vc = series.value_counts(dropna=True, sort=False) if raw is None else raw
    if isinstance(series.dtype, pd.CategoricalDtype):
        vc = vc[vc > 0]
    if vc.index.inferred_type != "string":
        keys = vc.index.map(_category_key)
        vc = vc.groupby(np.asarray(keys, dtype=object), sort=False).sum()
    return vc.astype(np.int64)


def _quantiles_of_sorted(values: FloatArray, qs: FloatArray) -> FloatArray:
    """Linear-interpolated quantiles (numpy's default) of an already sorted array."""
    pos = qs * (values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, values.size - 1)
    frac = pos - lo
    return np.asarray(values[lo] + frac * (values[hi] - values[lo]), dtype=np.float64)


def _bin_counts(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts in the bins (-inf, e1], (e1, e2], ..., (ek, inf) of a sorted array."""
    below = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], below, [sorted_values.size]))).astype(np.int64)


# --------------------------------------------------------------------------- testing


def _column(frame: pd.DataFrame, label: Hashable) -> pd.Series:
    col = frame[label]
    if isinstance(col, pd.DataFrame):  # duplicate names in the current table: the first
        col = col.iloc[:, 0]
    return col


def _test_column(ref: _ColumnReference, series: pd.Series, *, min_rows: int) -> _Outcome:
    if ref.numeric is not None:
        return _test_numeric(ref.method, ref.numeric, series, min_rows=min_rows)
    if ref.categorical is None:  # pragma: no cover - every state has one of the two
        raise InvalidInputError(f"column {ref.name!r} has no fitted state")
    return _test_categorical(ref.method, ref.categorical, series, min_rows=min_rows)


def _status(n_ref: int, n_cur: int, min_rows: int) -> str:
    if n_ref == 0 or n_cur == 0:
        return "all_missing"
    if n_ref < min_rows or n_cur < min_rows:
        return "not_enough_data"
    return "ok"


def _test_numeric(
    method: str,
    ref: _NumericReference,
    series: pd.Series,
    *,
    min_rows: int,
) -> _Outcome:
    a = ref.values
    b = np.sort(_as_floats(series, ref.source))
    status = _status(a.size, b.size, min_rows)
    if status != "ok":
        return _Outcome(method=method, n_reference=a.size, n_current=b.size, status=status)
    d, w1 = ks_wasserstein(a, b)
    distance = _normalised(w1, ref.std)
    p = math.nan
    if method == "ks":
        statistic = d
        p = ks_p_value(d, a.size, b.size)
    elif method == "wasserstein":
        statistic = distance
    elif method == "anderson":
        statistic, p = anderson(a, b)
    else:
        pr = ref.bin_counts / a.size
        pc = _bin_counts(b, ref.edges) / b.size
        statistic = psi(pr, pc) if method == "psi" else jensen_shannon(pr, pc)
    return _Outcome(
        method=method,
        statistic=float(statistic),
        p_value=float(p),
        distance=distance,
        n_reference=a.size,
        n_current=b.size,
    )


def _normalised(w1: float, std: float) -> float:
    if std > 0:
        return w1 / std
    return 0.0 if w1 == 0 else math.inf


def _test_categorical(
    method: str, ref: _CategoricalReference, series: pd.Series, *, min_rows: int
) -> _Outcome:
    ref_counts = ref.counts
    cur_counts = _category_counts(series)
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    new = cur_counts[~cur_counts.index.isin(ref_counts.index)]
    r = np.concatenate((ref_counts.to_numpy(), np.zeros(len(new), dtype=np.int64)))
    c = np.concatenate(
        (cur_counts.reindex(ref_counts.index, fill_value=0).to_numpy(), new.to_numpy())
    )
    if method == "auto":
        method = "ztest" if r.size == 2 else "chisquare"
    status = _status(n_ref, n_cur, min_rows)
    if status != "ok":
        return _Outcome(method=method, n_reference=n_ref, n_current=n_cur, status=status)
    categories = [*ref_counts.index, *new.index]
    pr, pc = r / n_ref, c / n_cur
    distance = jensen_shannon(pr, pc)
    notes = _category_notes(categories, r, c, n_cur)
    p = math.nan
    if method == "chisquare":
        statistic, p, pooled = chi_square(r, c)
        if pooled:
            notes.append(f"{pooled} rare categories pooled into 'other'")
    elif method == "ztest":
        statistic, p = z_test(r, c)
        notes.append(f"share of {str(categories[0])!r} {pr[0]:.1%} -> {pc[0]:.1%}")
    elif method == "psi":
        statistic = psi(pr, pc)
    else:
        statistic = distance
    return _Outcome(
        method=method,
        statistic=statistic,
        p_value=p,
        distance=distance,
        n_reference=n_ref,
        n_current=n_cur,
        notes="; ".join(notes),
    )


def _category_notes(
    categories: Sequence[Hashable], r: IntArray, c: IntArray, n_cur: int
) -> list[str]:
    notes = []
    for what, mask, counts, total in (
        ("new", r == 0, c, n_cur),
        ("vanished", c == 0, r, 0),
    ):
        idx = np.flatnonzero(mask)
        if not idx.size:
            continue
        idx = idx[np.argsort(-counts[idx], kind="stable")]
        shown = [
            f"{str(categories[i])!r} ({counts[i] / total:.1%} of current)"
            if total
            else repr(str(categories[i]))
            for i in idx[:MAX_LISTED_CATEGORIES]
        ]
        extra = idx.size - MAX_LISTED_CATEGORIES
        more = f" and {extra} more" if extra > 0 else ""
        notes.append(f"{what} categories: {', '.join(shown)}{more}")
    return notes


# --------------------------------------------------------------------------- small helpers


def _suited(kind: str) -> tuple[str, ...]:
    return METHODS_NUMERIC if kind == "numeric" else METHODS_CATEGORICAL


def _kinds_of_method(method: str) -> tuple[str, ...]:
    return tuple(
        k
        for k, methods in (("numeric", METHODS_NUMERIC), ("categorical", METHODS_CATEGORICAL))
        if method in methods
    )


def _check_method(method: Any, *, where: str) -> None:
    if method != "auto" and method not in _ALL_METHODS:
        raise InvalidInputError(
            f"DriftDetector: {where}={method!r} is not a known method; valid methods: "
            f"'auto', {', '.join(map(repr, _ALL_METHODS))} (numeric: "
            f"{', '.join(METHODS_NUMERIC)}; categorical: {', '.join(METHODS_CATEGORICAL)})",
            details={"method": str(method), "valid": ["auto", *_ALL_METHODS]},
        )


def _check_present(parameter: str, names: Any, reference: pd.DataFrame) -> None:
    missing = [c for c in names if c not in reference.columns]
    if missing:
        raise InvalidInputError(
            f"DriftDetector: {parameter} names column(s) the reference does not have: "
            f"{', '.join(map(repr, missing[:20]))}; reference columns: "
            f"{', '.join(map(repr, list(reference.columns)[:20]))}",
            details={"parameter": parameter, "missing_columns": [str(c) for c in missing]},
        )


def _is_integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
