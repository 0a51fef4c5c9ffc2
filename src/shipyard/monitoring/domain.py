"""The multivariate drift check: can a classifier tell current rows from reference rows?

Per-column tests miss drift that lives in the joint distribution (two columns that each
look the same but no longer move together). :func:`domain_classifier` labels reference
rows 0 and current rows 1, fits a small gradient-boosting model out of fold, and reports
its ROC-AUC (0.5: indistinguishable) and which columns it leaned on.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.monitoring.drift import (  # the drift module's column readers, shared
    FloatArray,
    _as_floats,
    _category_key,
    _check_present,
    _column,
    _is_real,
    _kind_of,
)

IMPORTANCE_ROWS = 2_000
"""Held-out rows :func:`domain_classifier` computes permutation importances on."""


@dataclass(frozen=True, slots=True)
class DomainClassifierResult:
    """How well a classifier tells current rows from reference rows.

    ``top_features`` holds at most 10 ``(column, importance)`` pairs, best first: the
    mean drop of ROC-AUC when the column is shuffled on held-out rows.
    """

    roc_auc: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    top_features: tuple[tuple[str, float], ...]


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    sample_size: int = 20_000,
    threshold: float = 0.55,
    random_state: int = 0,
) -> DomainClassifierResult:
    """Multivariate drift: can a classifier tell current rows from reference rows?

    At most ``sample_size`` rows per side (a seeded sample) are labelled 0 (reference) and
    1 (current); categorical columns are ordinal-encoded (the 254 most frequent categories
    of both sides, the rest together); a ``HistGradientBoostingClassifier(max_iter=50)``
    gives 3-fold stratified out-of-fold probabilities, whose ROC-AUC is the result: 0.5
    when the tables look alike, 1.0 when every row can be told apart. Feature importances
    are the permutation importances (3 repeats, ROC-AUC drop) of the last fold's model on
    at most 2,000 of its held-out rows (:data:`IMPORTANCE_ROWS`).

    Raises:
        InvalidInputError: a table is empty, a parameter is out of range, or a named
            column is missing from the reference.
        SchemaMismatchError: a column is missing from ``current``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=300)})
        >>> domain_classifier(ref, ref + 5).drifted
        True
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame) or frame.shape[0] < 3:
            raise InvalidInputError(
                f"domain_classifier: {name} must be a DataFrame with at least 3 rows, got "
                f"{type(frame).__name__} of shape {getattr(frame, 'shape', None)}"
            )
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 3:
        raise InvalidInputError(
            f"domain_classifier: sample_size must be an integer >= 3, got {sample_size!r}"
        )
    if not _is_real(threshold) or not 0.0 < float(threshold) <= 1.0:
        raise InvalidInputError(
            f"domain_classifier: threshold must be a ROC-AUC in (0, 1], got {threshold!r}"
        )
    labels: list[Hashable] = list(reference.columns if columns is None else columns)
    if not labels:
        raise InvalidInputError("domain_classifier: no columns to compare")
    _check_present("columns", labels, reference)
    missing = [c for c in labels if c not in current.columns]
    if missing:
        raise SchemaMismatchError(
            f"domain_classifier: the current table lacks column(s) "
            f"{', '.join(map(repr, missing[:20]))}; pass columns= with the shared columns",
            details={"missing_columns": [str(c) for c in missing]},
        )
    rng = np.random.default_rng(random_state)
    ref = _sample_rows(reference, sample_size, rng)
    cur = _sample_rows(current, sample_size, rng)
    n_ref, n_cur = ref.shape[0], cur.shape[0]
    features = np.empty((n_ref + n_cur, len(labels)), dtype=np.float64)
    is_categorical = np.zeros(len(labels), dtype=bool)
    for k, label in enumerate(labels):
        kind, source, _ = _kind_of(ref[label], categorical=False)
        both = pd.concat([_column(ref, label), _column(cur, label)], ignore_index=True)
        if kind == "numeric":
            features[:, k] = _as_floats(both, source, keep_missing=True)
        else:
            features[:, k] = _ordinal_codes(both)
            is_categorical[k] = True
    y = np.concatenate((np.zeros(n_ref, dtype=np.int64), np.ones(n_cur, dtype=np.int64)))
    model = HistGradientBoostingClassifier(
        max_iter=50,
        categorical_features=is_categorical if is_categorical.any() else None,
        random_state=random_state,
    )
    oof = np.empty(y.size)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    fitted = model
    held_out = np.empty(0, dtype=np.int64)
    for train, test in folds.split(features, y):
        fitted = clone(model).fit(features[train], y[train])
        oof[test] = fitted.predict_proba(features[test])[:, 1]
        held_out = test
    auc = float(roc_auc_score(y, oof))
    if held_out.size > IMPORTANCE_ROWS:
        held_out = np.sort(rng.choice(held_out, IMPORTANCE_ROWS, replace=False))
    importance = permutation_importance(
        fitted,
        features[held_out],
        y[held_out],
        scoring="roc_auc",
        n_repeats=3,
        random_state=random_state,
    )
    means = np.asarray(importance.importances_mean, dtype=np.float64)
    best = np.argsort(-means, kind="stable")[:10]
    return DomainClassifierResult(
        roc_auc=auc,
        threshold=float(threshold),
        drifted=auc >= float(threshold),
        n_reference=int(n_ref),
        n_current=int(n_cur),
        top_features=tuple((str(labels[i]), float(means[i])) for i in best),
    )


def _sample_rows(frame: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if frame.shape[0] <= size:
        return frame
    return frame.iloc[np.sort(rng.choice(frame.shape[0], size, replace=False))]


def _ordinal_codes(values: pd.Series, max_codes: int = 255) -> FloatArray:
    """Codes 0..max_codes-1 by frequency (the rarest categories share the last); NaN missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = pd.Index([_category_key(u) for u in uniques], dtype=object)
    key_codes, _ = pd.factorize(keys)
    merged = np.where(codes >= 0, key_codes[np.maximum(codes, 0)], -1)
    counts = np.bincount(merged[merged >= 0], minlength=int(key_codes.max(initial=-1)) + 1)
    rank = np.empty(counts.size, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
    out = np.minimum(rank[np.maximum(merged, 0)], max_codes - 1).astype(np.float64)
    out[merged < 0] = np.nan
    return out
