"""Guards: what to warn about before trusting a model's scores.

Each function returns plain sentences (``list[str]``); the trainer and
:func:`~shipyard.training.evaluation.evaluate` record them on the run (tag
``shipyard.warnings`` and ``warnings.json``) and in the HTML report.

- severe class imbalance (the rarest class under 5% of the rows);
- a feature that predicts the target almost perfectly (a single-feature ROC-AUC or
  rank correlation of at least 0.99, or categories that each map to one target
  value), or that looks like an identifier (unique per row): a leak, usually;
- test rows that also appear in the training data (identical feature values);
- a test set too small for its metrics (under 100 rows, or a class with fewer than
  10): the bootstrap intervals say how wide the uncertainty is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

IMBALANCE_SHARE = 0.05
NEAR_PERFECT = 0.99
SMALL_TEST_ROWS = 100
SMALL_CLASS_ROWS = 10
_SAMPLE = 20_000


def _sample(X: pd.DataFrame, y: pd.Series, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    if len(y) <= _SAMPLE:
        return X, y
    rows = y.sample(_SAMPLE, random_state=seed).index
    return X.loc[rows], y.loc[rows]


def _near_perfect(X: pd.DataFrame, y: pd.Series, task: str) -> list[str]:
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    found = []
    classes = pd.unique(y)
    for name in X.columns:
        col = X[name]
        mask = col.notna().to_numpy() & y.notna().to_numpy()
        if mask.sum() < 20:
            continue
        x, t = col[mask], y[mask]
        numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
        if numeric and x.nunique() > 1:
            if task == "regression":
                rho = spearmanr(x.to_numpy(dtype=float), t.to_numpy(dtype=float)).statistic
                score, what = abs(float(rho)), "rank correlation"
            elif len(classes) == 2:
                auc = roc_auc_score(t.to_numpy() == classes[0], x.to_numpy(dtype=float))
                score, what = max(auc, 1 - auc), "ROC-AUC on its own"
            else:
                continue
            if np.isfinite(score) and score >= NEAR_PERFECT:
                found.append(
                    f"feature {name!r} predicts the target almost perfectly ({what} "
                    f"{score:.3f}): check it is known at prediction time, or drop it"
                )
        elif not numeric and task != "regression":
            n_unique = x.nunique()
            if 1 < n_unique <= max(2, len(x) // 2):
                purity = t.groupby(x.astype(str)).agg(lambda s: s.value_counts().iloc[0]).sum()
                if purity / len(t) >= NEAR_PERFECT:
                    found.append(
                        f"feature {name!r}: each of its {n_unique} values maps to one target "
                        "class (a leak, or the target under another name); drop it if it is "
                        "not known at prediction time"
                    )
    return found


def _identifiers(X: pd.DataFrame) -> list[str]:
    import pandas as pd

    found = []
    for name in X.columns:
        col = X[name]
        if len(col) < 50 or col.isna().any():
            continue
        integer = pd.api.types.is_integer_dtype(col)
        text = pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
        if (integer or text) and col.nunique() == len(col):
            found.append(
                f"feature {name!r} is unique per row, like an identifier: a model can only "
                "memorise it; drop it"
            )
    return found


def training_warnings(X: pd.DataFrame, y: pd.Series, *, task: str) -> list[str]:
    """Warnings about training data: imbalance, leaking or identifier-like features.

    Example::

        training_warnings(X, y, task="binary")  # ["class 1 is 2.0% of the rows: ..."]
    """
    out: list[str] = []
    if task != "regression":
        shares = y.value_counts(normalize=True)
        rare = shares.idxmin()
        if shares.min() < IMBALANCE_SHARE:
            out.append(
                f"class {rare!r} is {shares.min():.1%} of the rows: accuracy will look good "
                "for a model that never predicts it; judge by balanced_accuracy, f1_macro or "
                "average_precision, and consider class weights"
            )
    Xs, ys = _sample(X, y)
    out.extend(_near_perfect(Xs, ys, task))
    out.extend(_identifiers(X))
    return out


def evaluation_warnings(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    train_data: pd.DataFrame | None = None,
    classes: Sequence[Any] | None = None,
) -> list[str]:
    """Warnings about test data: overlap with the training rows, too few rows."""
    import pandas as pd

    out: list[str] = []
    if train_data is not None:
        shared = [c for c in X.columns if c in train_data.columns]
        if shared:
            test_rows = pd.util.hash_pandas_object(X[shared], index=False)
            train_rows = set(pd.util.hash_pandas_object(train_data[shared], index=False))
            overlap = int(test_rows.isin(train_rows).sum())
            if overlap:
                out.append(
                    f"{overlap} of {len(X)} test rows ({overlap / len(X):.1%}) also appear in "
                    "the training data: their scores are not held-out scores; deduplicate "
                    "before splitting"
                )
    if len(y) < SMALL_TEST_ROWS:
        out.append(
            f"the test set has only {len(y)} rows: its metrics are uncertain (see the "
            "confidence intervals); use more test data or cross-validated scores"
        )
    elif task != "regression":
        counts = y.value_counts()
        small = counts[counts < SMALL_CLASS_ROWS]
        if len(small):
            out.append(
                f"class(es) {', '.join(map(repr, small.index.tolist()))} have fewer than "
                f"{SMALL_CLASS_ROWS} test rows: per-class metrics for them are unreliable"
            )
    return out
