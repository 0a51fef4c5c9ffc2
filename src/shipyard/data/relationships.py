"""The relationship graph of a table: associations, mutual information, redundancy, leakage.

:func:`relationship_graph` measures how every pair of variables is associated
and how much each feature tells about a target, and returns a frozen
:class:`RelationshipGraph`: variables are nodes, associations are weighted
edges. It flags *redundant* features (near-duplicates: one of the pair can be
dropped) and *leakage suspects* (a feature that predicts the target almost
perfectly on its own, or an identifier).

Methods, by the kinds of the two variables (kinds as
:func:`shipyard.data.profiling.detect_kind` reports them; datetimes count as
numbers of seconds, booleans as two categories):

============================  ==========================================  =========
pair                          method                                      range
============================  ==========================================  =========
numeric - numeric             ``pearson`` and ``spearman``                [-1, 1]
categorical - categorical     ``cramers_v`` (bias-corrected, Bergsma)     [0, 1]
numeric - categorical         ``correlation_ratio`` (eta)                 [0, 1]
============================  ==========================================  =========

Missing values: every association uses the *pairwise complete* rows (those
where both variables are present), computed for all pairs at once with matrix
products over the missingness masks. Spearman ranks each column over its own
non-missing values and then takes the pairwise complete Pearson correlation of
the ranks (exactly Spearman's rho when nothing is missing).

Categorical variables with more than ``max_categories`` distinct values, and
text, take part in no pairwise association (their node says so); they can
still be identifiers.

Mutual information with the target uses scikit-learn's
``mutual_info_classif`` (target boolean, categorical or text, or integer with
at most 20 distinct values) or ``mutual_info_regression`` (otherwise), with
categorical, boolean and few-valued integer features marked discrete (missing
values as one more category) and missing numbers filled with the column median.
It is normalised to [0, 1]: ``MI / H(target)`` for classification and the
information coefficient ``sqrt(1 - exp(-2 MI))`` (equal to ``|r|`` for
Gaussian data) for regression.

Sampling: Pearson, Cramer's V and eta use every row. When the table has more
than ``sample_rows`` rows, Spearman and the single-feature predictive score use
a random sample of that many rows (``sampled_rows``); mutual information, a
k-nearest-neighbour estimate, uses at most ``mi_sample_rows`` rows
(``mi_rows``).

Example::

    >>> import numpy as np, pandas as pd
    >>> x = np.arange(100.0)
    >>> g = relationship_graph(pd.DataFrame({"x": x, "x2": 2 * x, "y": x % 7}), target="y")
    >>> [(r.keep, r.drop) for r in g.redundant]
    [('x', 'x2')]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from shipyard.core.errors import InvalidInputError
from shipyard.data.profiling import Kind, _jsonable, detect_kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

Method = Literal["pearson", "spearman", "cramers_v", "correlation_ratio"]
Task = Literal["classification", "regression"]
Role = Literal["feature", "target"]

CLASSIFICATION_MAX_INT_LEVELS = 20
"""An integer target with at most this many distinct values is a classification target."""
DISCRETE_MAX_INT_LEVELS = 20
"""An integer feature with at most this many distinct values counts as discrete for MI."""
IDENTIFIER_MIN_ROWS = 20
"""A column is identifier-like only when it has at least this many rows, all distinct."""
_CHUNK = 131_072
_MAX_BINS = 64

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Node:
    """One variable of the graph.

    Attributes:
        name: the column name.
        kind: its kind (``numeric``, ``categorical``, ``datetime``, ``text``, ``boolean``).
        role: ``target`` for the target column, else ``feature``.
        distinct: distinct non-missing values; ``missing``: missing values.
        used: whether it takes part in pairwise associations.
        note: why it does not (or anything else worth knowing), else ``None``.
        mutual_information: MI with the target in nats (``None`` without a
            target or when it cannot be estimated).
        mi_normalised: MI scaled to [0, 1] (see the module docstring).
        target_association: the strongest pairwise association strength with the target.
        predictive_score: how well this feature alone predicts the target
            (cross-fitted on two halves): balanced accuracy for classification,
            ``sqrt(R^2)`` of per-bin means for regression; 1 is perfect.
        importance_rank: 1 for the highest MI with the target, then 2, ...
    """

    name: str
    kind: Kind
    role: Role
    distinct: int
    missing: int
    used: bool
    note: str | None = None
    mutual_information: float | None = None
    mi_normalised: float | None = None
    target_association: float | None = None
    predictive_score: float | None = None
    importance_rank: int | None = None


@dataclass(frozen=True)
class Edge:
    """An association between variables ``a`` and ``b`` measured with ``method``.

    ``value`` is in [-1, 1] for ``pearson``/``spearman`` and in [0, 1]
    otherwise; ``strength`` is ``abs(value)``; ``n`` is the number of rows both
    variables were present in.
    """

    a: str
    b: str
    method: Method
    value: float
    strength: float
    n: int


@dataclass(frozen=True)
class Redundancy:
    """Two near-duplicate features (association strength at least the redundancy threshold)."""

    a: str
    b: str
    method: Method
    value: float
    keep: str
    drop: str
    reason: str


@dataclass(frozen=True)
class LeakageSuspect:
    """A feature that may leak the target: it predicts it almost perfectly, or is an identifier.

    ``score`` is the highest of the normalised target scores that crossed the
    threshold (``None`` when the column is only identifier-like); ``reason``
    says which checks fired.
    """

    column: str
    identifier: bool
    score: float | None
    reason: str


@dataclass(frozen=True)
class RelationshipGraph:
    """Variables as nodes and their associations as edges, with redundancy and leakage findings.

    ``edges`` holds every association that is defined (weak ones too);
    :meth:`strong_edges` picks the strong ones. ``sampled_rows`` is the number
    of rows Spearman and the predictive scores used when the table was sampled
    (``None`` when every row was used), ``mi_rows`` the rows mutual
    information used.
    """

    target: str | None
    task: Task | None
    n_rows: int
    sampled_rows: int | None
    mi_rows: int | None
    max_categories: int
    seed: int
    redundancy_threshold: float
    leakage_threshold: float
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    redundant: tuple[Redundancy, ...]
    leakage_suspects: tuple[LeakageSuspect, ...]

    def node(self, name: str) -> Node:
        """The node of column ``name``.

        Raises:
            InvalidInputError: no such node (the message lists the nodes).
        """
        for node in self.nodes:
            if node.name == name:
                return node
        names = [n.name for n in self.nodes]
        raise InvalidInputError(
            f"relationship graph has no variable {name!r}; known columns: {names}",
            details={"column": name, "known_columns": names},
        )

    def strongest_edges(self) -> tuple[Edge, ...]:
        """One edge per pair of variables: the method with the highest strength."""
        best: dict[tuple[str, str], Edge] = {}
        for edge in self.edges:
            key = (edge.a, edge.b)
            if key not in best or edge.strength > best[key].strength:
                best[key] = edge
        return tuple(best.values())

    def strong_edges(self, threshold: float = 0.5) -> tuple[Edge, ...]:
        """The strongest edge of each pair at least ``threshold`` strong, strongest first."""
        chosen = [e for e in self.strongest_edges() if e.strength >= threshold]
        return tuple(sorted(chosen, key=lambda e: -e.strength))

    def strength_matrix(self) -> tuple[list[str], FloatArray]:
        """The used variables and the square matrix of their strongest association (NaN: none)."""
        names = [n.name for n in self.nodes if n.used]
        index = {name: i for i, name in enumerate(names)}
        out = np.full((len(names), len(names)), np.nan)
        np.fill_diagonal(out, 1.0)
        for e in self.strongest_edges():
            if e.a in index and e.b in index:
                out[index[e.a], index[e.b]] = out[index[e.b], index[e.a]] = e.strength
        return names, out

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-ready builtins (``NaN`` becomes ``None``)."""
        return cast(dict[str, Any], _jsonable(dataclasses.asdict(self)))

    def to_json(self, *, indent: int | None = None) -> str:
        """The graph as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RelationshipGraph:
        """Rebuild a graph from :meth:`to_dict` (or parsed :meth:`to_json`) output."""
        fields = dict(data)
        fields["nodes"] = tuple(Node(**n) for n in data["nodes"])
        fields["edges"] = tuple(Edge(**e) for e in data["edges"])
        fields["redundant"] = tuple(Redundancy(**r) for r in data["redundant"])
        fields["leakage_suspects"] = tuple(LeakageSuspect(**s) for s in data["leakage_suspects"])
        return cls(**fields)


@dataclass
class _Column:
    """A column as the computations need it (private working state)."""

    name: str
    kind: Kind
    distinct: int
    missing: int
    numbers: FloatArray | None = None  # numeric and datetime
    codes: IntArray | None = None  # categorical and boolean: -1 for missing
    levels: int = 0
    note: str | None = None


def relationship_graph(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    max_categories: int = 50,
    sample_rows: int = 100_000,
    mi_sample_rows: int = 20_000,
    seed: int = 0,
    redundancy_threshold: float = 0.95,
    leakage_threshold: float = 0.98,
) -> RelationshipGraph:
    """Measure the associations between all variables of ``df`` (and with ``target``).

    Args:
        df: the table; column names must be unique (as text).
        target: the column to predict, if any; enables mutual information,
            importance ranks, predictive scores and target-leakage checks.
        max_categories: categorical columns with more distinct values are
            treated as text and skipped for pairwise associations.
        sample_rows: Spearman and predictive scores use a random sample of at
            most this many rows.
        mi_sample_rows: mutual information uses at most this many rows.
        seed: seed of the row samples and of scikit-learn's MI estimator.
        redundancy_threshold: pairs of features at least this associated are redundant.
        leakage_threshold: a normalised target score at least this high makes
            a feature a leakage suspect.

    Returns:
        The frozen :class:`RelationshipGraph`.

    Raises:
        InvalidInputError: ``df`` is not a DataFrame, has duplicate column
            names, ``target`` is not one of its columns (the message lists
            them), or a parameter is out of range.

    Example::

        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": range(50), "y": [0, 1] * 25})
        >>> [s.column for s in relationship_graph(df, target="y").leakage_suspects]
        ['id']
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"relationship_graph() expects a pandas DataFrame, got {type(df).__name__}",
            details={"parameter": "df", "received": type(df).__name__},
        )
    names = [str(c) for c in df.columns]
    _check_params(names, target, max_categories, sample_rows, mi_sample_rows)
    thresholds = {
        "redundancy_threshold": redundancy_threshold,
        "leakage_threshold": leakage_threshold,
    }
    for name, value in thresholds.items():
        if not 0 < value <= 1:
            raise InvalidInputError(
                f"{name} must be in (0, 1], got {value!r}",
                details={"parameter": name, "received": repr(value)},
            )
    frame = df.set_axis(names, axis=1)
    columns = [_prepare(frame[name], name, max_categories) for name in names]
    by_name = {c.name: c for c in columns}
    edges = _pairwise(columns, frame, sample_rows=sample_rows, seed=seed)

    task: Task | None = None
    mi: dict[str, tuple[float, float]] = {}
    predictive: dict[str, float] = {}
    mi_rows: int | None = None
    sampled = len(frame) > sample_rows
    if target is not None:
        tcol = by_name[target]
        task = _task_of(tcol)
        features = [c for c in columns if c.name != target]
        y_full = _target_values(tcol, frame[target], task)
        present = ~np.isnan(y_full)
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero(present)
        if len(rows) > mi_sample_rows:
            rows = np.sort(rng.choice(rows, size=mi_sample_rows, replace=False))
        mi_rows = len(rows)
        mi = _mutual_information(features, y_full, rows, task, seed)
        rows = np.flatnonzero(present)
        if len(rows) > sample_rows:
            rows = np.sort(rng.choice(rows, size=sample_rows, replace=False))
        predictive = {
            c.name: score
            for c in features
            if (score := _predictive_score(c, y_full, rows, task, seed)) is not None
        }

    target_assoc: dict[str, float] = {}
    if target is not None:
        for e in edges:
            if target in (e.a, e.b):
                other = e.b if e.a == target else e.a
                target_assoc[other] = max(target_assoc.get(other, 0.0), e.strength)
    ranks = {
        name: i + 1 for i, name in enumerate(sorted(mi, key=lambda k: (-mi[k][0], names.index(k))))
    }
    nodes = tuple(
        Node(
            name=c.name,
            kind=c.kind,
            role="target" if c.name == target else "feature",
            distinct=c.distinct,
            missing=c.missing,
            used=c.numbers is not None or c.codes is not None,
            note=c.note,
            mutual_information=mi[c.name][0] if c.name in mi else None,
            mi_normalised=mi[c.name][1] if c.name in mi else None,
            target_association=target_assoc.get(c.name),
            predictive_score=predictive.get(c.name),
            importance_rank=ranks.get(c.name),
        )
        for c in columns
    )
    graph_nodes = {n.name: n for n in nodes}
    redundant = _redundancies(edges, graph_nodes, target, redundancy_threshold)
    suspects = _leakage(columns, graph_nodes, frame, target, leakage_threshold)
    return RelationshipGraph(
        target=target,
        task=task,
        n_rows=len(frame),
        sampled_rows=sample_rows if sampled else None,
        mi_rows=mi_rows,
        max_categories=max_categories,
        seed=seed,
        redundancy_threshold=redundancy_threshold,
        leakage_threshold=leakage_threshold,
        nodes=nodes,
        edges=tuple(edges),
        redundant=redundant,
        leakage_suspects=suspects,
    )


def cramers_v(table: npt.ArrayLike) -> float | None:
    """Bias-corrected Cramer's V (Bergsma 2013) of a contingency table; ``None`` if undefined.

    Empty rows and columns are dropped first; a table with fewer than two
    non-empty rows or columns has no defined V.
    """
    counts = np.asarray(table, dtype=np.float64)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    r, k = counts.shape if counts.ndim == 2 else (0, 0)
    n = float(counts.sum())
    if r < 2 or k < 2 or n < 2:
        return None
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denom = min(k_corr - 1, r_corr - 1)
    if denom <= 0:
        return None
    return min(1.0, math.sqrt(phi2 / denom))


def correlation_ratio(codes: npt.ArrayLike, values: npt.ArrayLike) -> float | None:
    """Correlation ratio (eta) of numbers ``values`` grouped by integer ``codes`` (-1: missing).

    ``eta**2`` is the share of the variance of ``values`` explained by the
    group means; ``None`` when the values do not vary.
    """
    c = np.asarray(codes, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64).reshape(len(c), -1)
    eta = _eta([c], [int(c.max(initial=-1)) + 1], x)[0][0]
    return None if np.isnan(eta[0]) else float(eta[0])


def _check_params(
    names: list[str],
    target: str | None,
    max_categories: int,
    sample_rows: int,
    mi_sample_rows: int,
) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(
            f"column names must be unique for a relationship graph; repeated: {dupes}",
            details={"parameter": "df", "duplicate_columns": dupes},
        )
    if target is not None and target not in names:
        raise InvalidInputError(
            f"target column {target!r} is not in the data; known columns: {names}. "
            "Pass one of them as target=, or target=None for no target.",
            details={"parameter": "target", "received": target, "known_columns": names},
        )
    for pname, value in (
        ("max_categories", max_categories),
        ("sample_rows", sample_rows),
        ("mi_sample_rows", mi_sample_rows),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise InvalidInputError(
                f"{pname} must be an integer of at least 2, got {value!r}",
                details={"parameter": pname, "received": repr(value)},
            )


def _prepare(series: pd.Series, name: str, max_categories: int) -> _Column:
    import pandas as pd

    kind = detect_kind(series)
    missing = int(series.isna().sum())
    col = _Column(name=name, kind=kind, distinct=0, missing=missing)
    if kind in ("numeric", "datetime"):
        x = numeric_values(series)
        x = np.where(np.isfinite(x), x, np.nan)
        col.numbers = x
        present = x[~np.isnan(x)]
        col.distinct = int(pd.unique(present).size)
        if col.distinct < 2:
            col.note = "constant: no association is defined"
        return col
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists, dicts)
        codes, uniques = pd.factorize(series.map(repr).where(series.notna()))
    col.distinct = len(uniques)
    if kind == "text":
        col.note = "text: skipped for pairwise associations"
    elif kind == "categorical" and col.distinct > max_categories:
        col.kind = "text"
        col.note = (
            f"high-cardinality: {col.distinct} distinct values > max_categories="
            f"{max_categories}; treated as text and skipped for pairwise associations"
        )
    else:
        col.codes = np.asarray(codes, dtype=np.int64)
        col.levels = len(uniques)
        if col.distinct < 2:
            col.note = "constant: no association is defined"
    return col


def _pairwise(
    columns: list[_Column], frame: pd.DataFrame, *, sample_rows: int, seed: int
) -> list[Edge]:
    """Every defined association between used columns, in column order."""
    import pandas as pd

    num = [c for c in columns if c.numbers is not None]
    cat = [c for c in columns if c.codes is not None]
    order = {c.name: i for i, c in enumerate(columns)}
    edges: list[Edge] = []

    def add(a: str, b: str, method: Method, value: float, n: int) -> None:
        if not math.isfinite(value):
            return
        if order[a] > order[b]:
            a, b = b, a
        edges.append(Edge(a=a, b=b, method=method, value=value, strength=abs(value), n=n))

    matrix = np.column_stack([cast(FloatArray, c.numbers) for c in num]) if num else None
    if matrix is not None and len(num) >= 2:
        r, counts = _pairwise_pearson(matrix)
        rows = np.arange(len(frame))
        if len(frame) > sample_rows:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(len(frame), size=sample_rows, replace=False))
        ranks = pd.DataFrame(matrix[rows]).rank(method="average").to_numpy(dtype=np.float64)
        rho, rho_counts = _pairwise_pearson(ranks)
        for i in range(len(num)):
            for j in range(i + 1, len(num)):
                add(num[i].name, num[j].name, "pearson", float(r[i, j]), int(counts[i, j]))
                add(num[i].name, num[j].name, "spearman", float(rho[i, j]), int(rho_counts[i, j]))
    for i in range(len(cat)):
        ci = cast(IntArray, cat[i].codes)
        for j in range(i + 1, len(cat)):
            cj = cast(IntArray, cat[j].codes)
            both = (ci >= 0) & (cj >= 0)
            flat = ci[both] * cat[j].levels + cj[both]
            table = np.bincount(flat, minlength=cat[i].levels * cat[j].levels)
            v = cramers_v(table.reshape(cat[i].levels, cat[j].levels))
            if v is not None:
                add(cat[i].name, cat[j].name, "cramers_v", v, int(both.sum()))
    if matrix is not None and cat:
        codes = [cast(IntArray, c.codes) for c in cat]
        etas = _eta(codes, [c.levels for c in cat], matrix)
        for c, (eta, counts) in zip(cat, etas, strict=True):
            for k, x in enumerate(num):
                add(x.name, c.name, "correlation_ratio", float(eta[k]), int(counts[k]))
    edges.sort(key=lambda e: (order[e.a], order[e.b]))
    return edges


def _pairwise_pearson(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Pearson correlation of every pair of columns over their pairwise complete rows.

    Sums over rows where both columns are present come from matrix products of
    the zero-filled, centred values and the presence masks, accumulated over
    row chunks to bound memory. Returns ``(r, n)``; ``r`` is NaN where a pair
    has fewer than three complete rows or a column does not vary on them.
    """
    p = x.shape[1]
    center = np.zeros(p)
    present_any = ~np.all(np.isnan(x), axis=0)
    if present_any.any():
        center[present_any] = np.nanmean(x[:, present_any], axis=0)
    n = np.zeros((p, p))
    sx = np.zeros((p, p))
    sxx = np.zeros((p, p))
    sxy = np.zeros((p, p))
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start : start + _CHUNK]
        mask = ~np.isnan(block)
        m = mask.astype(np.float64)
        x0 = np.where(mask, block - center, 0.0)
        n += m.T @ m
        sx += x0.T @ m
        sxx += (x0 * x0).T @ m
        sxy += x0.T @ x0
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sx.T / n
        var = sxx - sx * sx / n
        r = cov / np.sqrt(var * var.T)
    r[(n < 3) | ~(var > 0) | ~(var.T > 0)] = np.nan
    return np.clip(r, -1.0, 1.0), n


def _eta(
    codes: Sequence[IntArray], levels: Sequence[int], x: FloatArray
) -> list[tuple[FloatArray, FloatArray]]:
    """Correlation ratio of each column of ``x`` grouped by each code array, and the rows used.

    One pass over row chunks accumulates, per category, the count, sum and sum
    of squares of every (centred) column through a sparse one-hot product.
    """
    from scipy import sparse

    mask_all = ~np.isnan(x)
    center = np.where(mask_all, x, 0.0).sum(axis=0) / np.maximum(mask_all.sum(axis=0), 1)
    del mask_all
    p = x.shape[1]
    acc = [np.zeros((3, n_levels, p)) for n_levels in levels]
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start : start + _CHUNK]
        mask = ~np.isnan(block)
        x0 = np.where(mask, block - center, 0.0)
        stacked = np.hstack([mask.astype(np.float64), x0, x0 * x0])
        for k, (c, n_levels) in enumerate(zip(codes, levels, strict=True)):
            part = c[start : start + _CHUNK]
            valid = np.flatnonzero(part >= 0)
            onehot = sparse.csr_matrix(
                (np.ones(len(valid)), (part[valid], valid)), shape=(n_levels, len(part))
            )
            acc[k] += np.asarray(onehot @ stacked).reshape(n_levels, 3, p).transpose(1, 0, 2)
    out = []
    for cnt, sums, squares in acc:
        total_n = cnt.sum(axis=0)
        total = sums.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sst = squares.sum(axis=0) - total**2 / total_n
            ssb = np.where(cnt > 0, sums**2 / np.where(cnt > 0, cnt, 1.0), 0.0).sum(axis=0)
            ssb = ssb - total**2 / total_n
            eta = np.sqrt(np.clip(ssb / sst, 0.0, 1.0))
        groups_seen = (cnt > 0).sum(axis=0)
        eta[~(sst > 0) | (groups_seen < 2) | (total_n < 3)] = np.nan
        out.append((eta, total_n))
    return out


def _task_of(col: _Column) -> Task:
    if col.kind in ("categorical", "text", "boolean"):
        return "classification"
    if col.kind == "numeric" and col.numbers is not None:
        x = col.numbers[~np.isnan(col.numbers)]
        if col.distinct <= CLASSIFICATION_MAX_INT_LEVELS and np.all(x == np.round(x)):
            return "classification"
    return "regression"


def _target_values(col: _Column, series: pd.Series, task: Task) -> FloatArray:
    """The target as floats with NaN for missing: class codes or numbers."""
    import pandas as pd

    if col.numbers is not None:
        if task == "regression":
            return col.numbers
        present = ~np.isnan(col.numbers)
        out = np.full(len(col.numbers), np.nan)
        out[present] = np.unique(col.numbers[present], return_inverse=True)[1]
        return out
    codes = col.codes
    if codes is None:  # text, or more categories than max_categories
        codes = np.asarray(pd.factorize(series.astype(str).where(series.notna()))[0])
    return np.where(codes >= 0, codes, np.nan).astype(np.float64)


def _mutual_information(
    features: Sequence[_Column], y: FloatArray, rows: IntArray, task: Task, seed: int
) -> dict[str, tuple[float, float]]:
    """``{name: (MI in nats, normalised MI)}`` for every feature MI can be estimated for."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    blocks: list[FloatArray] = []
    discrete: list[bool] = []
    used: list[str] = []
    for c in features:
        if c.codes is not None:
            codes = c.codes[rows]
            blocks.append(np.where(codes >= 0, codes, c.levels).astype(np.float64))
            discrete.append(True)
        elif c.numbers is not None:
            x = c.numbers[rows]
            present = ~np.isnan(x)
            if present.sum() < 2:
                continue
            x = np.where(present, x, np.median(x[present]))
            few = c.distinct <= DISCRETE_MAX_INT_LEVELS and bool(np.all(x == np.round(x)))
            blocks.append(x)
            discrete.append(few)
        else:
            continue
        used.append(c.name)
    target = y[rows]
    if not used or len(rows) < 4 or np.unique(target).size < 2:
        return {}
    matrix = np.column_stack(blocks)
    mask = np.asarray(discrete)
    if task == "classification":
        with warnings.catch_warnings():  # many classes for few rows is the caller's choice
            warnings.filterwarnings("ignore", message="The number of unique classes")
            values = mutual_info_classif(
                matrix,
                target.astype(np.int64),
                discrete_features=mask,
                n_neighbors=3,
                random_state=seed,
            )
        _, freq = np.unique(target, return_counts=True)
        prob = freq / freq.sum()
        entropy = float(-(prob * np.log(prob)).sum())
        normalised = np.clip(values / entropy, 0.0, 1.0)
    else:
        values = mutual_info_regression(
            matrix, target, discrete_features=mask, n_neighbors=3, random_state=seed
        )
        normalised = np.sqrt(1.0 - np.exp(-2.0 * np.maximum(values, 0.0)))
    return {
        name: (float(v), float(nv)) for name, v, nv in zip(used, values, normalised, strict=True)
    }


def _predictive_score(
    col: _Column, y_full: FloatArray, rows: IntArray, task: Task, seed: int
) -> float | None:
    """How well ``col`` alone predicts the target, cross-fitted on two random halves.

    The feature is cut into groups (its categories, or up to 64 quantile bins,
    missing values as one more group); each half predicts the other from
    per-group statistics: the class with the highest within-class share
    (scored by balanced accuracy) or the group mean (scored by ``sqrt(R^2)``).
    """
    groups = _groups(col, rows)
    if groups is None or len(rows) < 8:
        return None
    y = y_full[rows]
    n_groups = int(groups.max()) + 1
    fold = np.random.default_rng(seed).permutation(len(rows)) % 2
    if task == "classification":
        labels = y.astype(np.int64)
        k = int(labels.max()) + 1
        pred = np.empty(len(rows), dtype=np.int64)
        for f in (0, 1):
            train, test = fold != f, fold == f
            table = np.bincount(groups[train] * k + labels[train], minlength=n_groups * k).reshape(
                n_groups, k
            )
            class_total = np.maximum(table.sum(axis=0), 1)
            best = np.argmax(table / class_total, axis=1)
            best[table.sum(axis=1) == 0] = int(np.argmax(table.sum(axis=0)))
            pred[test] = best[groups[test]]
        recalls = [np.mean(pred[labels == c] == c) for c in range(k) if np.any(labels == c)]
        return float(np.mean(recalls)) if len(recalls) >= 2 else None
    pred_r = np.empty(len(rows))
    for f in (0, 1):
        train, test = fold != f, fold == f
        cnt = np.bincount(groups[train], minlength=n_groups)
        sums = np.bincount(groups[train], weights=y[train], minlength=n_groups)
        means = np.where(cnt > 0, sums / np.maximum(cnt, 1), y[train].mean())
        pred_r[test] = means[groups[test]]
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 0:
        return None
    r2 = 1.0 - float(((y - pred_r) ** 2).sum()) / sst
    return math.sqrt(max(r2, 0.0))


def _groups(col: _Column, rows: IntArray) -> IntArray | None:
    if col.codes is not None:
        codes = col.codes[rows]
        return np.where(codes >= 0, codes, col.levels)
    if col.numbers is None:
        return None
    x = col.numbers[rows]
    present = ~np.isnan(x)
    if present.sum() < 2:
        return None
    bins = min(_MAX_BINS, max(2, len(rows) // 40))
    cuts = np.unique(np.quantile(x[present], np.linspace(0, 1, bins + 1)[1:-1]))
    out = np.searchsorted(cuts, x, side="right").astype(np.int64)
    out[~present] = len(cuts) + 1
    return out


def _redundancies(
    edges: Sequence[Edge], nodes: Mapping[str, Node], target: str | None, threshold: float
) -> tuple[Redundancy, ...]:
    best: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if target in (e.a, e.b) or e.strength < threshold:
            continue
        if (e.a, e.b) not in best or e.strength > best[(e.a, e.b)].strength:
            best[(e.a, e.b)] = e
    out = []
    for (a, b), e in best.items():
        na, nb = nodes[a], nodes[b]
        mia, mib = na.mutual_information, nb.mutual_information
        if mia is not None and mib is not None and mia != mib:
            keep, drop = (a, b) if mia > mib else (b, a)
            why = (
                f"it carries less mutual information with {target!r} "
                f"({min(mia, mib):.3g} vs {max(mia, mib):.3g})"
            )
        elif na.missing != nb.missing:
            keep, drop = (a, b) if na.missing < nb.missing else (b, a)
            why = "it has more missing values"
        else:
            keep, drop, why = a, b, "it comes later in the table"
        reason = (
            f"{a!r} and {b!r} are near-duplicates ({e.method} {e.value:.3f}); drop {drop!r}: {why}"
        )
        out.append(
            Redundancy(
                a=a, b=b, method=e.method, value=e.value, keep=keep, drop=drop, reason=reason
            )
        )
    return tuple(out)


def _leakage(
    columns: Sequence[_Column],
    nodes: Mapping[str, Node],
    frame: pd.DataFrame,
    target: str | None,
    threshold: float,
) -> tuple[LeakageSuspect, ...]:
    out = []
    n_rows = len(frame)
    for c in columns:
        if c.name == target:
            continue
        node = nodes[c.name]
        reasons: list[str] = []
        scores: list[float] = []
        identifier = _identifier_like(c, n_rows)
        if identifier:
            what = "integers" if c.kind == "numeric" else "values"
            reasons.append(f"identifier-like: all {n_rows} {what} are unique")
        for label, value in (
            ("association with the target", node.target_association),
            ("normalised mutual information with the target", node.mi_normalised),
            ("single-feature predictive score", node.predictive_score),
        ):
            if value is not None and value >= threshold:
                reasons.append(f"{label} is {value:.3f} (>= {threshold:g})")
                scores.append(value)
        if reasons:
            out.append(
                LeakageSuspect(
                    column=c.name,
                    identifier=identifier,
                    score=max(scores) if scores else None,
                    reason="; ".join(reasons),
                )
            )
    return tuple(out)


def _identifier_like(col: _Column, n_rows: int) -> bool:
    if n_rows < IDENTIFIER_MIN_ROWS or col.missing or col.distinct != n_rows:
        return False
    if col.kind in ("categorical", "text"):
        return True
    if col.kind == "numeric" and col.numbers is not None:
        return bool(np.all(col.numbers == np.round(col.numbers)))
    return False
