"""Train/validation/test splits (random, stratified, time, group) and the leakage check.

:func:`split_frame` cuts one frame into ``train``, optional ``valid`` and ``test`` parts,
deterministically for a seed; :func:`leakage_check` reports rows repeated across parts and
group ids shared by parts. Every part keeps the original index labels and row order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError, SchemaMismatchError

METHODS = ("random", "stratified", "time", "group")
EXAMPLES = 5
"""How many example index labels or group ids a report keeps per pair of parts."""


@dataclass(frozen=True, eq=False)
class SplitResult:
    """The parts of a split and what they hold.

    Attributes:
        train: the training rows.
        valid: the validation rows, or None when ``valid=0``.
        test: the test rows.
        summary: JSON-friendly facts: ``method``, ``seed``, ``rows`` and ``fractions`` per
            part; with a target ``class_counts`` and ``class_fractions`` per part; with a
            time column ``time_range`` (``min``, ``max``) per part; with a group column
            ``groups`` (distinct ids) per part.
    """

    train: pd.DataFrame
    valid: pd.DataFrame | None
    test: pd.DataFrame
    summary: dict[str, Any]

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """``{"train": ..., "valid": ..., "test": ...}`` (``valid`` only if present)."""
        parts = {"train": self.train, "valid": self.valid, "test": self.test}
        return {name: frame for name, frame in parts.items() if frame is not None}


def _fractions(test: Any, valid: Any) -> dict[str, float]:
    for name, value in (("test", test), ("valid", valid)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidInputError(f"{name} must be a fraction such as 0.2; got {value!r}")
    if not 0 < test < 1:
        raise InvalidInputError(f"test must be a fraction between 0 and 1 (exclusive); got {test}")
    if not 0 <= valid < 1:
        raise InvalidInputError(f"valid must be a fraction in [0, 1); got {valid}")
    if test + valid >= 1:
        raise InvalidInputError(
            f"test + valid must be below 1 so that train gets rows; got {test} + {valid}"
        )
    fractions = {"train": 1.0 - float(test) - float(valid), "valid": float(valid)}
    if not valid:
        del fractions["valid"]
    return fractions | {"test": float(test)}


def _sizes(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Rows per part: each held-out part gets ``round(n * fraction)``, at least 1."""
    sizes = {
        name: max(1, math.floor(round(n * f, 9) + 0.5))
        for name, f in fractions.items()
        if name != "train"
    }
    train = n - sum(sizes.values())
    if train < 1:
        raise InvalidInputError(
            f"the frame has {n} rows, too few for a {'/'.join(fractions)} split with these "
            "fractions; add rows or lower test/valid"
        )
    return {"train": train} | sizes


def _random(n: int, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, Any]:
    order = rng.permutation(n)
    return _cut(order, sizes)


def _cut(order: np.ndarray[Any, Any], sizes: Mapping[str, int]) -> dict[str, Any]:
    """Split positions ``order`` into parts: test at the end, valid before it, train first."""
    out, end = {}, len(order)
    for name in reversed(list(sizes)):
        start = 0 if name == "train" else end - sizes[name]
        out[name] = order[start:end]
        end = start
    return out


def _stratified_counts(
    class_sizes: np.ndarray[Any, Any], fractions: np.ndarray[Any, Any], rng: np.random.Generator
) -> np.ndarray[Any, Any]:
    """Rows per (class, part): each is ``class size * fraction`` rounded down or up.

    Which cells round up is an integer program (a controlled rounding of the class-by-part
    table): every class keeps its exact size, every part total is ``n * fraction`` rounded
    down or up (at least 1), and larger remainders round up first (ties by the seed).
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    expected = np.round(class_sizes[:, None] * fractions[None, :], 9)
    floor = np.floor(expected)
    remainder = expected - floor
    ups = class_sizes - floor.sum(axis=1)
    k, s = remainder.shape
    per_class = sparse.kron(sparse.eye(k), np.ones((1, s)))
    per_part = sparse.kron(np.ones((1, k)), sparse.eye(s))
    total = np.round(remainder.sum(axis=0), 9)
    low = np.maximum(np.floor(total), 1 - floor.sum(axis=0))
    cost = -(remainder + rng.random((k, s)) * 1e-6).ravel()
    bounds = Bounds(0, (remainder > 0).ravel().astype(float))
    for part_low, part_high in ((low, np.ceil(total)), (low, np.full(s, np.inf))):
        res = milp(
            cost,
            constraints=[
                LinearConstraint(per_class, ups, ups),
                LinearConstraint(per_part, part_low, np.maximum(part_high, part_low)),
            ],
            integrality=np.ones(k * s),
            bounds=bounds,
        )
        if res.x is not None:
            counts: np.ndarray[Any, Any] = floor + np.round(res.x).reshape(k, s)
            return counts.astype(np.int64)
    raise InvalidInputError(
        "cannot give every part at least one row of a stratified split with these fractions; "
        "add rows or raise test/valid"
    )


def _stratified(
    y: pd.Series, target: str, fractions: Mapping[str, float], rng: np.random.Generator
) -> dict[str, Any]:
    codes, classes = pd.factorize(y, use_na_sentinel=False)
    class_sizes = np.bincount(codes, minlength=len(classes))
    parts = list(fractions)
    for cls, size in zip(classes, class_sizes, strict=True):
        if size < len(parts):
            raise InvalidInputError(
                f"class {cls!r} of target {target!r} has {size} row(s); a stratified "
                f"{'/'.join(parts)} split needs at least {len(parts)} per class. Merge or drop "
                "rare classes, or split without stratifying (method='random'; on the command line, "
                "leave out --stratify)",
                details={"class": str(cls), "rows": int(size)},
            )
    counts = _stratified_counts(class_sizes, np.array(list(fractions.values())), rng)
    shuffled = rng.permutation(len(y))
    order = shuffled[np.argsort(codes[shuffled], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(class_sizes)])
    chunks: dict[str, list[Any]] = {name: [] for name in parts}
    for c in range(len(classes)):
        cut = _cut(order[starts[c] : starts[c + 1]], dict(zip(parts, counts[c], strict=True)))
        for name in parts:
            chunks[name].append(cut[name])
    return {name: np.concatenate(chunks[name]) for name in parts}


def _time(times: pd.Series, column: str, sizes: Mapping[str, int]) -> dict[str, Any]:
    missing = int(times.isna().sum())
    if missing:
        raise InvalidInputError(
            f"time_column {column!r} has {missing} missing value(s); drop or fill them first"
        )
    order = times.reset_index(drop=True).argsort(kind="stable").to_numpy()
    ordered = times.iloc[order].reset_index(drop=True)
    # the cut positions that do not separate equal times
    changes = np.flatnonzero(ordered.ne(ordered.shift()).to_numpy()[1:]) + 1
    cuts: dict[str, int] = {}
    end = len(times)
    for name in [n for n in reversed(list(sizes)) if n != "train"]:
        allowed = changes[changes < end]
        if len(allowed) == 0:
            raise InvalidInputError(
                f"time_column {column!r} has too few distinct times for a "
                f"{'/'.join(sizes)} split; use fewer parts or another method"
            )
        end = int(allowed[np.argmin(np.abs(allowed - (end - sizes[name])))])
        cuts[name] = end
    bounds = [0, *sorted(cuts.values()), len(times)]
    names = list(sizes)
    return {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def _take(order: list[int], sizes: np.ndarray[Any, Any], target: int, keep: int) -> list[int]:
    """Groups (from ``order``) whose rows add up close to ``target``, leaving ``keep``."""
    chosen: list[int] = []
    taken = 0
    for g in order:
        if len(order) - len(chosen) <= keep:
            break
        if taken < target and abs(taken + sizes[g] - target) <= abs(taken - target):
            chosen.append(g)
            taken += int(sizes[g])
    if not chosen:
        chosen = [min(order, key=lambda g: abs(int(sizes[g]) - target))]
    return chosen


def _group(
    groups: pd.Series, column: str, sizes: Mapping[str, int], rng: np.random.Generator
) -> dict[str, Any]:
    missing = int(groups.isna().sum())
    if missing:
        raise InvalidInputError(
            f"group_column {column!r} has {missing} missing value(s); fill them (each row "
            "its own group, for example) or drop them first"
        )
    codes, uniques = pd.factorize(groups)
    if len(uniques) < len(sizes):
        raise InvalidInputError(
            f"group_column {column!r} has {len(uniques)} distinct group(s); a "
            f"{'/'.join(sizes)} split needs at least {len(sizes)}"
        )
    group_sizes = np.bincount(codes)
    remaining = [int(g) for g in rng.permutation(len(uniques))]
    part_of = np.zeros(len(uniques), dtype=np.int64)
    held_out = [n for n in reversed(list(sizes)) if n != "train"]
    for i, name in enumerate(held_out):
        chosen = _take(remaining, group_sizes, sizes[name], keep=len(held_out) - i)
        part_of[chosen] = list(sizes).index(name)
        taken = set(chosen)
        remaining = [g for g in remaining if g not in taken]
    row_part = part_of[codes]
    return {name: np.flatnonzero(row_part == i) for i, name in enumerate(sizes)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _summary(
    frames: Mapping[str, pd.DataFrame],
    n: int,
    *,
    method: str,
    seed: int,
    target: str | None,
    time_column: str | None,
    group_column: str | None,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "method": method,
        "seed": seed,
        "rows": {name: len(f) for name, f in frames.items()},
        "fractions": {name: round(len(f) / n, 4) for name, f in frames.items()},
    }
    if target is not None:
        counts = {
            name: {str(k): int(v) for k, v in f[target].value_counts(dropna=False).items()}
            for name, f in frames.items()
        }
        summary["class_counts"] = {name: dict(sorted(c.items())) for name, c in counts.items()}
        summary["class_fractions"] = {
            name: {k: round(v / len(frames[name]), 4) for k, v in c.items()}
            for name, c in summary["class_counts"].items()
        }
    if time_column is not None:
        summary["time_range"] = {
            name: {"min": _jsonable(f[time_column].min()), "max": _jsonable(f[time_column].max())}
            for name, f in frames.items()
        }
    if group_column is not None:
        summary["groups"] = {name: int(f[group_column].nunique()) for name, f in frames.items()}
    return summary


def split_frame(
    df: pd.DataFrame,
    *,
    method: str = "random",
    target: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    test: float = 0.2,
    valid: float = 0.0,
    seed: int = 0,
) -> SplitResult:
    """Split ``df`` into train, validation (when ``valid > 0``) and test parts.

    - ``random``: shuffled with ``seed``; held-out parts get ``round(n * fraction)`` rows.
    - ``stratified``: per class of ``target``, each part gets the class's size times its
      fraction rounded down or up (so class ratios hold within one row); part sizes are
      ``n * fraction`` rounded down or up. Missing target values form a class.
    - ``time``: sorted by ``time_column``, no shuffling: test is the latest rows, valid the
      rows before them, train the earliest. Cuts never separate equal times, so every test
      time is later than every valid time, which is later than every train time.
    - ``group``: every id of ``group_column`` lands in one part only; groups are drawn in a
      seeded order and part sizes approximate the fractions in rows.

    Parts keep the original index labels and row order. The same ``df`` and ``seed`` give
    the same split.

    Args:
        df: the rows to split.
        method: ``"random"``, ``"stratified"``, ``"time"`` or ``"group"``.
        target: the class column (required for ``stratified``; elsewhere only summarised).
        time_column: the time column (required for ``time``).
        group_column: the group id column (required for ``group``).
        test: the test fraction, in (0, 1).
        valid: the validation fraction, in [0, 1); ``test + valid`` must be below 1.
        seed: the random seed.

    Returns:
        A :class:`SplitResult` with ``train``, ``valid`` (or None), ``test`` and ``summary``.

    Raises:
        InvalidInputError: a bad method or fraction, a missing or absent column, a class,
            time or group structure too small for the parts asked for (the message says
            which class or column and how many rows or values it has).

    Example::

        >>> df = pd.DataFrame({"x": range(10), "y": [0, 1] * 5})
        >>> parts = split_frame(df, method="stratified", target="y", test=0.2, seed=1)
        >>> parts.summary["class_counts"]["test"], len(parts.train)
        ({'0': 1, '1': 1}, 8)
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"split_frame needs a pandas DataFrame; got {type(df).__name__}")
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    fractions = _fractions(test, valid)
    options = {"target": target, "time_column": time_column, "group_column": group_column}
    required = {"stratified": "target", "time": "time_column", "group": "group_column"}
    if method in required and options[required[method]] is None:
        raise InvalidInputError(
            f"method {method!r} needs {required[method]}=<column>; columns are {list(df.columns)}"
        )
    for option, column in options.items():
        if column is not None and column not in df.columns:
            raise InvalidInputError(
                f"{option} {column!r} is not a column of the frame; columns are {list(df.columns)}",
                details={"option": option, "column": column},
            )
    n, rng = len(df), np.random.default_rng(seed)
    sizes = _sizes(n, fractions)
    if method == "stratified":
        positions = _stratified(df[str(target)], str(target), fractions, rng)
    elif method == "time":
        positions = _time(df[str(time_column)], str(time_column), sizes)
    elif method == "group":
        positions = _group(df[str(group_column)], str(group_column), sizes, rng)
    else:
        positions = _random(n, sizes, rng)
    frames = {name: df.iloc[np.sort(positions[name])] for name in fractions}
    summary = _summary(frames, n, method=method, seed=seed, **options)
    return SplitResult(frames["train"], frames.get("valid"), frames["test"], summary)


@dataclass(frozen=True)
class DuplicateLeak:
    """Rows of one part whose content (the checked columns) repeats in another part.

    Attributes:
        first, second: the two parts, in the order given.
        rows_first: rows of ``first`` that also occur in ``second``.
        rows_second: rows of ``second`` that also occur in ``first``.
        examples: up to ``EXAMPLES`` ``(first index label, second index label)`` pairs.
    """

    first: str
    second: str
    rows_first: int
    rows_second: int
    examples: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True)
class GroupLeak:
    """Group ids present in two parts.

    Attributes:
        first, second: the two parts, in the order given.
        count: how many distinct ids both parts hold.
        examples: up to ``EXAMPLES`` of those ids.
    """

    first: str
    second: str
    count: int
    examples: tuple[Any, ...]


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`leakage_check` found; ``ok`` when nothing is shared.

    Attributes:
        rows: rows per part.
        columns: the columns whose values identify a row.
        group_column: the group id column checked, or None.
        duplicates: one :class:`DuplicateLeak` per pair of parts sharing rows.
        shared_groups: one :class:`GroupLeak` per pair of parts sharing group ids.
    """

    rows: dict[str, int]
    columns: tuple[str, ...]
    group_column: str | None
    duplicates: tuple[DuplicateLeak, ...]
    shared_groups: tuple[GroupLeak, ...]

    @property
    def ok(self) -> bool:
        """True when no row and no group id is shared by two parts."""
        return not self.duplicates and not self.shared_groups

    def describe(self) -> list[str]:
        """One sentence per finding, for people (empty when ``ok``)."""
        lines = [
            f"{d.rows_second} row(s) of {d.second!r} repeat {d.rows_first} row(s) of "
            f"{d.first!r} (e.g. {d.second} {d.examples[0][1]!r} = {d.first} {d.examples[0][0]!r})"
            for d in self.duplicates
        ]
        lines += [
            f"{g.count} {self.group_column} id(s) are in both {g.first!r} and {g.second!r} "
            f"(e.g. {', '.join(map(repr, g.examples))})"
            for g in self.shared_groups
        ]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (index labels and ids that are not JSON become strings)."""
        return {
            "ok": self.ok,
            "rows": dict(self.rows),
            "columns": list(self.columns),
            "group_column": self.group_column,
            "duplicates": [
                {
                    "first": d.first,
                    "second": d.second,
                    "rows_first": d.rows_first,
                    "rows_second": d.rows_second,
                    "examples": [[_jsonable(a), _jsonable(b)] for a, b in d.examples],
                }
                for d in self.duplicates
            ],
            "shared_groups": [
                {
                    "first": g.first,
                    "second": g.second,
                    "count": g.count,
                    "examples": [_jsonable(e) for e in g.examples],
                }
                for g in self.shared_groups
            ],
        }


def leakage_check(
    splits: Mapping[str, pd.DataFrame | None],
    *,
    group_column: str | None = None,
    exclude_columns: Sequence[str] = (),
) -> LeakageReport:
    """Find rows repeated across parts and group ids shared by parts.

    Rows are compared by content over the columns all parts have, minus
    ``exclude_columns``, with vectorised 64-bit hashes
    (:func:`pandas.util.hash_pandas_object`; parts are concatenated first, so an integer
    column in one part and a float column in another compare by value). Repeats within one
    part are not leakage and are not reported. Exclude an id column that makes every row
    unique; exclude the target to also catch equal features with different labels.

    Args:
        splits: the parts by name (``SplitResult.frames``); None values are skipped.
        group_column: a group id column that must not span parts, or None.
        exclude_columns: columns to leave out of the row comparison.

    Returns:
        A :class:`LeakageReport`; its ``ok`` is True when nothing is shared.

    Raises:
        InvalidInputError: a part is not a DataFrame, the parts share no column, or an
            excluded column is in no part.
        SchemaMismatchError: ``group_column`` is missing from a part (the message names it).

    Example::

        >>> train = pd.DataFrame({"x": [1, 2, 3], "user": ["a", "b", "c"]})
        >>> test = pd.DataFrame({"x": [3, 4], "user": ["c", "d"]}, index=[10, 11])
        >>> report = leakage_check({"train": train, "test": test}, group_column="user")
        >>> report.ok, report.duplicates[0].examples, report.shared_groups[0].examples
        (False, ((2, 10),), ('c',))
    """
    frames = {str(k): v for k, v in splits.items() if v is not None}
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(f"part {name!r} is not a DataFrame: {type(frame).__name__}")
    lacking = [n for n, f in frames.items() if group_column is not None and group_column not in f]
    if lacking:
        raise SchemaMismatchError(
            f"group_column {group_column!r} is missing from part(s) {lacking}",
            details={"missing": [group_column], "parts": lacking},
        )
    unknown = [c for c in exclude_columns if not any(c in f.columns for f in frames.values())]
    if unknown:
        raise InvalidInputError(f"exclude_columns {unknown} are in no part; check the names")
    names = list(frames)
    first_columns = frames[names[0]].columns if names else pd.Index([])
    columns = [
        str(c)
        for c in first_columns
        if c not in exclude_columns and all(c in f.columns for f in frames.values())
    ]
    if len(names) > 1 and not columns:
        raise InvalidInputError("the parts have no column in common to compare rows by")
    hashes: dict[str, np.ndarray[Any, Any]] = {}
    if len(names) > 1:
        combined = pd.concat([frames[n][columns] for n in names], ignore_index=True)
        flat = pd.util.hash_pandas_object(combined, index=False).to_numpy()
        start = 0
        for name in names:
            hashes[name] = flat[start : start + len(frames[name])]
            start += len(frames[name])
    duplicates: list[DuplicateLeak] = []
    shared: list[GroupLeak] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            leak = _duplicates(a, b, hashes, frames)
            if leak is not None:
                duplicates.append(leak)
            if group_column is not None:
                ids_a = pd.Index(frames[a][group_column].dropna().unique())
                ids_b = pd.Index(frames[b][group_column].dropna().unique())
                both = ids_b[ids_b.isin(ids_a)]
                if len(both):
                    examples = tuple(_scalar(v) for v in both[:EXAMPLES])
                    shared.append(GroupLeak(a, b, len(both), examples))
    return LeakageReport(
        rows={n: len(f) for n, f in frames.items()},
        columns=tuple(columns),
        group_column=group_column,
        duplicates=tuple(duplicates),
        shared_groups=tuple(shared),
    )


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _duplicates(
    a: str, b: str, hashes: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]
) -> DuplicateLeak | None:
    hash_a, hash_b = hashes[a], hashes[b]
    index_a, index_b = frames[a].index, frames[b].index
    in_b = np.isin(hash_b, hash_a)
    if not in_b.any():
        return None
    unique_a, first_a = np.unique(hash_a, return_index=True)
    rows_b = np.flatnonzero(in_b)[:EXAMPLES]
    rows_a = first_a[np.searchsorted(unique_a, hash_b[rows_b])]
    examples = tuple(
        (_scalar(index_a[i]), _scalar(index_b[j])) for i, j in zip(rows_a, rows_b, strict=True)
    )
    rows_first = int(np.isin(hash_a, hash_b).sum())
    return DuplicateLeak(a, b, rows_first, int(in_b.sum()), examples)
