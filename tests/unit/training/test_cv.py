"""Cross-validation gives the same scores, and the same per-fold values to a pruner,
whether later folds run in other processes or one after the other."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from shipyard.training import cv
from shipyard.training.cv import cross_validate, cv_splits


class Stop(Exception):
    pass


def _job() -> dict[str, Any]:
    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame["target"]
    splits = cv_splits("binary", y, folds=5, seed=0)
    return {"X": X, "y": y, "splits": splits}


def _run(job: dict[str, Any], fold_jobs: int, on_fold: Any = None) -> Any:
    return cross_validate(
        lambda: RandomForestClassifier(n_estimators=15, random_state=0),
        job["X"], job["y"], job["splits"], task="binary", classes=[0, 1],
        metrics=["roc_auc", "accuracy"], primary="roc_auc", on_fold=on_fold,
        fold_jobs=fold_jobs,
    )  # fmt: skip


def test_parallel_folds_give_the_sequential_scores_and_running_means(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cv, "FOLD_PARALLEL_MIN_S", 0.0)  # always hand folds to processes
    job = _job()
    seen: dict[int, list[tuple[int, float]]] = {1: [], 2: []}
    results = {
        jobs: _run(job, jobs, on_fold=lambda i, m, jobs=jobs: seen[jobs].append((i, m)))
        for jobs in (1, 2)
    }
    assert results[1][0] == results[2][0]
    assert seen[1] == seen[2] and [i for i, _ in seen[2]] == [0, 1, 2, 3, 4]


def test_a_pruned_trial_stops_at_the_same_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "FOLD_PARALLEL_MIN_S", 0.0)
    job = _job()
    calls: list[int] = []

    def prune_after_second(i: int, _mean: float) -> None:
        calls.append(i)
        if i == 1:
            raise Stop

    with pytest.raises(Stop):
        _run(job, 2, on_fold=prune_after_second)
    assert calls == [0, 1]


def test_quick_folds_stay_in_this_process() -> None:
    job = _job()
    scores, fit_time = _run(job, 2)  # each fold takes well under the threshold
    assert 0.9 < scores["roc_auc"][0] <= 1.0 and np.isfinite(fit_time)
