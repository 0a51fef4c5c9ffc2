"""Candidate model families, their Optuna search spaces and leak-free preprocessing pipelines.

A :class:`ModelFamily` names one kind of model (``"random_forest"``, ``"lightgbm"``...) and
knows, for each task (``"binary"``, ``"multiclass"``, ``"regression"``), which estimator to
build, its default hyperparameters and the space Optuna searches (:meth:`ModelFamily.suggest`).
:func:`build_pipeline` puts the estimator behind a ``ColumnTransformer`` chosen from the
frame's dtypes, so every imputer, scaler and encoder is fitted inside the pipeline: in
cross-validation they learn from the training folds only.

Search spaces (``[low, high]``; *log* means sampled on a log scale):

=========================  ==============================================================
family                     parameters
=========================  ==============================================================
linear                     classifiers (LogisticRegression): C [1e-4, 1e3] log,
                           class_weight {None, balanced}; regressors (Ridge): alpha
                           [1e-4, 1e3] log
random_forest              n_estimators [50, 500], max_depth {None, 2, 4, 8, 16, 32},
                           min_samples_leaf [1, 20] log, max_features {sqrt, log2, 0.5, 1.0};
                           classifiers: class_weight {None, balanced}
hist_gradient_boosting     learning_rate [1e-3, 0.3] log, max_iter [50, 500],
                           max_leaf_nodes [8, 128] log, min_samples_leaf [5, 100] log,
                           l2_regularization [1e-8, 10] log, max_features [0.5, 1.0]
                           (no class_weight: sample weights add seconds to every fit)
knn                        n_neighbors [1, 50] log, weights {uniform, distance}, p {1, 2}
svm                        C [1e-3, 1e3] log, gamma [1e-4, 10] log (RBF kernel);
                           classifiers: class_weight {None, balanced}; regressors: epsilon
                           [1e-3, 1] log
xgboost                    n_estimators [50, 500], learning_rate [1e-3, 0.3] log, max_depth
                           [2, 12], min_child_weight [0.5, 20] log, subsample [0.5, 1],
                           colsample_bytree [0.5, 1], reg_lambda and reg_alpha [1e-8, 10] log
lightgbm                   n_estimators [50, 500], learning_rate [1e-3, 0.3] log, num_leaves
                           [8, 256] log, min_child_samples [5, 100] log, subsample [0.5, 1],
                           colsample_bytree [0.5, 1], reg_lambda and reg_alpha [1e-8, 10] log;
                           classifiers: class_weight {None, balanced}
=========================  ==============================================================

SVM classifiers are ``CalibratedClassifierCV(SVC(...), ensemble=False)``, for probabilities.
Every estimator gets ``random_state=seed`` (where it has one) and ``n_jobs=1`` (where it has
one): a run reproduces exactly, and parallelism belongs to the trials, not the estimators.
Optuna parameter names are prefixed with the family (``"random_forest.max_depth"``) so that
one study can tune several families whose parameters share a name.

scikit-learn, Optuna, LightGBM and XGBoost are imported only inside functions.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import yaml

from shipyard.core.errors import InvalidInputError

Task: TypeAlias = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")

ParamType: TypeAlias = Literal["int", "float", "categorical"]
Choice: TypeAlias = bool | int | float | str | None
"""A value a categorical parameter may take (what Optuna can store)."""

MIN_CATEGORY_FREQUENCY = 0.01
"""One-hot encoding gathers categories rarer than this fraction of the training rows into
one ``infrequent`` column, so rare or high-cardinality values do not each get a column."""

DATETIME_PARTS = ("year", "month", "day", "day_of_week")
"""The numeric features each datetime column becomes."""

_SPEC_KEYS = ("type", "low", "high", "log", "step", "choices")


# ---------------------------------------------------------------------------------------------
# Search-space parameters


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ParamSpec:
    """The range Optuna searches for one hyperparameter.

    Args:
        type: ``"int"`` or ``"float"`` (an interval ``[low, high]``) or ``"categorical"``
            (one of ``choices``).
        low: the smallest value (int and float).
        high: the largest value (int and float).
        log: sample on a log scale (needs ``low > 0``; not with ``step`` for floats).
        step: the spacing between values (int and float; None: 1 for ints, continuous for
            floats).
        choices: the values of a categorical parameter: None, booleans, numbers or strings.

    Raises:
        InvalidInputError: the spec is inconsistent; the message says which field.

    Example::

        >>> ParamSpec("int", 50, 500).to_dict()
        {'type': 'int', 'low': 50, 'high': 500}
        >>> ParamSpec("categorical", choices=(4, 8, None)).choices
        (4, 8, None)
    """

    type: ParamType
    low: float | None = None
    high: float | None = None
    _: KW_ONLY
    log: bool = False
    step: float | None = None
    choices: tuple[Choice, ...] = ()

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise InvalidInputError(f"invalid search-space parameter: {problem}")
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.type == "float":
            object.__setattr__(self, "low", float(self.low))  # type: ignore[arg-type]
            object.__setattr__(self, "high", float(self.high))  # type: ignore[arg-type]

    def _problem(self) -> str | None:
        if self.type not in ("int", "float", "categorical"):
            return f"'type' must be int, float or categorical; got {self.type!r}"
        if self.type == "categorical":
            return self._categorical_problem()
        if self.choices:
            return f"'choices' is only for type categorical, not {self.type}"
        check = _is_integer if self.type == "int" else _is_number
        kind = "an integer" if self.type == "int" else "a number"
        for name in ("low", "high"):
            value = getattr(self, name)
            if not check(value) or (self.type == "float" and not math.isfinite(value)):
                return f"{name!r} must be {kind}; got {value!r}"
        low: Any = self.low
        high: Any = self.high
        if low > high:
            return f"'low' ({low}) must not exceed 'high' ({high})"
        if not isinstance(self.log, bool):
            return f"'log' must be true or false; got {self.log!r}"
        if self.log and low <= 0:
            return f"'log' needs 'low' > 0; got low={low}"
        if self.step is not None:
            if not check(self.step) or self.step <= 0:
                return f"'step' must be {kind} > 0 or null; got {self.step!r}"
            if self.log and (self.type == "float" or self.step != 1):
                return "'step' and 'log' cannot be combined (Optuna refuses it); drop one"
        return None

    def _categorical_problem(self) -> str | None:
        others = [n for n in ("low", "high", "step") if getattr(self, n) is not None]
        if others or self.log:
            return f"type categorical takes only 'choices'; drop {others or ['log']}"
        choices = self.choices
        if isinstance(choices, str | bytes | Mapping) or not isinstance(choices, Sequence):
            return f"'choices' must be a list; got {choices!r}"
        if not choices:
            return "'choices' must list at least one value"
        bad = [c for c in choices if c is not None and not isinstance(c, bool | int | float | str)]
        if bad:
            return f"'choices' may hold null, booleans, numbers and strings; got {bad}"
        return None

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial (``optuna.Trial`` or ``FixedTrial``) for a value called ``name``."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(name, int(self.low), int(self.high), step=step, log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        """The spec as YAML-ready data: only the fields that are set."""
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out = {"type": self.type, "low": self.low, "high": self.high}
        return out | {k: v for k, v in (("log", self.log), ("step", self.step)) if v}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "parameter") -> ParamSpec:
        """Build a spec from ``{type: int, low: 1, high: 9}``-style data (parsed YAML).

        Numbers written as text (PyYAML reads ``1e-4`` as a string) are accepted for float
        parameters.

        Args:
            data: the mapping.
            where: how messages name it, e.g. ``"random_forest.n_estimators"``.

        Returns:
            The validated spec.

        Raises:
            InvalidInputError: ``data`` is not a mapping, has unknown keys or an invalid
                value; the message starts with ``where``.

        Example::

            >>> ParamSpec.from_dict({"type": "float", "low": "1e-4", "high": 1, "log": True}).low
            0.0001
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"{where}: must be a mapping such as {{type: int, low: 1, high: 10}} or "
                f"{{type: categorical, choices: [a, b]}}; got {data!r}",
                details={"key": where},
            )
        unknown = [str(k) for k in data if k not in _SPEC_KEYS]
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown keys {unknown}; a parameter spec has {', '.join(_SPEC_KEYS)}",
                details={"key": where, "allowed": list(_SPEC_KEYS)},
            )
        if "type" not in data:
            raise InvalidInputError(
                f"{where}: 'type' is required (int, float or categorical)", details={"key": where}
            )
        numbers = data["type"] == "float"
        values = {str(k): _number_from_text(v) if numbers else v for k, v in data.items()}
        choices = values.get("choices", ())
        values["choices"] = tuple(choices) if isinstance(choices, list | tuple) else choices
        try:
            return cls(**values)
        except InvalidInputError as exc:
            message = exc.message.removeprefix("invalid search-space parameter: ")
            raise InvalidInputError(f"{where}: {message}", details={"key": where}) from None


def _is_integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _number_from_text(value: Any) -> Any:
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _int(low: int, high: int, *, log: bool = False) -> ParamSpec:
    return ParamSpec("int", low, high, log=log)


def _float(low: float, high: float, *, log: bool = False) -> ParamSpec:
    return ParamSpec("float", low, high, log=log)


def _cat(*choices: Choice) -> ParamSpec:
    return ParamSpec("categorical", choices=choices)


# ---------------------------------------------------------------------------------------------
# Families


@dataclass(frozen=True, eq=False)
class EstimatorSpec:
    """How a family builds its estimator for one kind of task (classification or regression).

    Attributes:
        cls: the estimator class as ``"module.Class"``, imported when first built.
        space: the default search space, by constructor parameter.
        defaults: the parameters used without tuning (also the base that tuned ones update).
        fixed: constructor arguments always passed (``n_jobs=1``, ``verbose=-1``...).
        seeded: whether the estimator takes ``random_state``.
        calibrated: wrap it in ``CalibratedClassifierCV(ensemble=False)`` for probabilities
            (Platt scaling on 5 folds: what ``SVC(probability=True)``, deprecated in
            scikit-learn 1.9, did).
    """

    cls: str
    space: Mapping[str, ParamSpec]
    defaults: Mapping[str, Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    seeded: bool = True
    calibrated: bool = False


@dataclass(frozen=True)
class ModelFamily:
    """One kind of candidate model: its estimators, search spaces and preprocessing needs.

    Attributes:
        name: the family's name (``FAMILIES`` key).
        tasks: the tasks it supports.
        description: one line for people.
        extra: the pip extra that installs its library (``"lightgbm"``), or None.
        max_rows: the most training rows it accepts (SVMs scale quadratically), or None.
        scale: whether it needs standardized numeric inputs.
        ordinal_categoricals: whether categoricals are ordinal-encoded (trees) rather than
            one-hot encoded.
        needs_encoded_labels: whether its classifiers need class labels ``0..k-1`` (XGBoost):
            encode ``y`` with ``sklearn.preprocessing.LabelEncoder`` first.
        classifier: how it builds classifiers (binary and multiclass).
        regressor: how it builds regressors.

    Example::

        >>> family = FAMILIES["random_forest"]
        >>> family.default_params("binary")["n_estimators"]
        100
        >>> family.make_estimator("regression", {"max_depth": 4}, seed=0).max_depth
        4
    """

    name: str
    tasks: tuple[Task, ...]
    description: str
    _: KW_ONLY
    extra: str | None = None
    max_rows: int | None = None
    scale: bool = False
    ordinal_categoricals: bool = False
    needs_encoded_labels: bool = False
    classifier: EstimatorSpec = field(repr=False, compare=False)
    regressor: EstimatorSpec = field(repr=False, compare=False)

    def _spec(self, task: Any) -> EstimatorSpec:
        if task not in TASKS:
            raise InvalidInputError(
                f"task must be one of {', '.join(TASKS)}; got {task!r}",
                details={"allowed": list(TASKS)},
            )
        if task not in self.tasks:
            raise InvalidInputError(
                f"model family {self.name!r} does not support task {task!r}; it supports "
                f"{', '.join(self.tasks)}; choose another family"
            )
        return self.regressor if task == "regression" else self.classifier

    def is_available(self) -> bool:
        """Whether the library this family needs is installed (nothing is imported)."""
        if self.extra is None:
            return True
        return importlib.util.find_spec(self.extra) is not None

    def require(self) -> None:
        """Check that the family's library is installed.

        Raises:
            InvalidInputError: it is not; the message gives the ``pip install`` command.
        """
        if not self.is_available():
            raise InvalidInputError(
                f"model family {self.name!r} needs the {self.extra} package, which is not "
                f"installed; run: pip install 'shipyard[{self.extra}]'",
                details={"family": self.name, "extra": self.extra},
            )

    def search_space(self, task: Task) -> dict[str, ParamSpec]:
        """The default search space for ``task``, by estimator parameter.

        Raises:
            InvalidInputError: the family does not support ``task``.
        """
        return dict(self._spec(task).space)

    def default_params(self, task: Task) -> dict[str, Any]:
        """The hyperparameters used without tuning (one per search-space parameter).

        Raises:
            InvalidInputError: the family does not support ``task``.
        """
        return dict(self._spec(task).defaults)

    def suggest(
        self,
        trial: Any,
        task: Task,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Sample hyperparameters for ``task`` from an Optuna trial.

        Each parameter is asked for as ``"<family>.<parameter>"`` so that families tuned in
        one study never share a name; the returned dict uses the plain parameter names.

        Args:
            trial: an ``optuna.Trial`` (or ``optuna.trial.FixedTrial``).
            task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
            overrides: this family's replacement ranges, ``{parameter: ParamSpec}`` (e.g.
                ``load_search_space_overrides(path).get(family.name)``; spec mappings are
                accepted too). The whole ``{family: {parameter: spec}}`` mapping is also
                accepted: only this family's entry is used. Overrides of parameters this task
                does not use (SVR's ``epsilon`` when classifying) are ignored.

        Returns:
            ``{parameter: value}`` for every parameter of the search space.

        Raises:
            InvalidInputError: unsupported task, or invalid overrides.

        Example::

            >>> import optuna
            >>> trial = optuna.trial.FixedTrial({"knn.n_neighbors": 7, "knn.weights": "distance",
            ...                                  "knn.p": 1})
            >>> FAMILIES["knn"].suggest(trial, "binary")
            {'n_neighbors': 7, 'weights': 'distance', 'p': 1}
        """
        space = self.search_space(task)
        if overrides:
            space.update({k: v for k, v in self._overrides(overrides).items() if k in space})
        return {name: spec.suggest(trial, f"{self.name}.{name}") for name, spec in space.items()}

    def _overrides(self, overrides: Mapping[str, Any]) -> dict[str, ParamSpec]:
        """This family's entry of ``overrides``, in either form :meth:`suggest` accepts."""
        if all(
            isinstance(k, str) and ALIASES.get(k.lower(), k.lower()) in FAMILIES for k in overrides
        ):
            return load_search_space_overrides(overrides).get(self.name, {})
        return load_search_space_overrides({self.name: overrides})[self.name]

    def make_estimator(self, task: Task, params: Mapping[str, Any], seed: int) -> Any:
        """Build the unfitted scikit-learn estimator for ``task``.

        Args:
            task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
            params: hyperparameters; they update :meth:`default_params` and may set any
                other constructor argument (``random_state`` excepted: pass ``seed``).
            seed: the random seed (``random_state``) for a reproducible fit.

        Returns:
            The estimator, with ``random_state=seed`` and ``n_jobs=1`` where it has them
            (wrapped for probabilities if ``calibrated``: its ``estimator`` holds the params).

        Raises:
            InvalidInputError: unsupported task, missing library, a parameter the estimator
                does not have, or an invalid seed.

        Example::

            >>> FAMILIES["linear"].make_estimator("binary", {"C": 0.5}, seed=1)
            LogisticRegression(C=0.5, max_iter=1000, random_state=1)
        """
        spec = self._spec(task)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidInputError(f"seed must be an integer >= 0; got {seed!r}")
        if "random_state" in params:
            raise InvalidInputError(
                f"params for {self.name!r} set random_state; pass the seed argument instead"
            )
        self.require()
        module, _, cls_name = spec.cls.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        estimator = cls(**spec.fixed, **({"random_state": int(seed)} if spec.seeded else {}))
        accepted = estimator.get_params(deep=False)
        unknown = sorted(str(k) for k in params if k not in accepted)
        if unknown:
            raise InvalidInputError(
                f"{cls_name} (family {self.name!r}) has no parameters {unknown}; its "
                f"parameters are {', '.join(sorted(accepted))}",
                details={"family": self.name, "unknown": unknown},
            )
        estimator.set_params(**{**spec.defaults, **params})
        if spec.calibrated:
            from sklearn.calibration import CalibratedClassifierCV

            return CalibratedClassifierCV(estimator, ensemble=False, n_jobs=1)
        return estimator


_CLASS_WEIGHT = {"class_weight": _cat(None, "balanced")}
_NO_CLASS_WEIGHT = {"class_weight": None}
_TREES = {
    "n_estimators": _int(50, 500), "max_depth": _cat(None, 2, 4, 8, 16, 32),
    "min_samples_leaf": _int(1, 20, log=True), "max_features": _cat("sqrt", "log2", 0.5, 1.0),
}  # fmt: skip
_TREE_DEFAULTS = {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1}
_HGB = {
    "learning_rate": _float(1e-3, 0.3, log=True), "max_iter": _int(50, 500),
    "max_leaf_nodes": _int(8, 128, log=True), "min_samples_leaf": _int(5, 100, log=True),
    "l2_regularization": _float(1e-8, 10.0, log=True), "max_features": _float(0.5, 1.0),
}  # fmt: skip
_HGB_DEFAULTS = {
    "learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
    "l2_regularization": 0.0, "max_features": 1.0,
}  # fmt: skip
_KNN = {
    "n_neighbors": _int(1, 50, log=True), "weights": _cat("uniform", "distance"), "p": _cat(1, 2)
}  # fmt: skip
_KNN_DEFAULTS = {"n_neighbors": 5, "weights": "uniform", "p": 2}
_SVM = {"C": _float(1e-3, 1e3, log=True), "gamma": _float(1e-4, 10.0, log=True)}
_SVM_DEFAULTS = {"C": 1.0, "gamma": "scale"}
_BOOSTING = {
    "n_estimators": _int(50, 500), "learning_rate": _float(1e-3, 0.3, log=True),
    "subsample": _float(0.5, 1.0), "colsample_bytree": _float(0.5, 1.0),
    "reg_lambda": _float(1e-8, 10.0, log=True), "reg_alpha": _float(1e-8, 10.0, log=True),
}  # fmt: skip
_BOOSTING_DEFAULTS = {"n_estimators": 100, "subsample": 1.0, "colsample_bytree": 1.0}
_XGB = _BOOSTING | {"max_depth": _int(2, 12), "min_child_weight": _float(0.5, 20.0, log=True)}
_XGB_DEFAULTS = _BOOSTING_DEFAULTS | {
    "learning_rate": 0.3, "reg_lambda": 1.0, "reg_alpha": 0.0, "max_depth": 6,
    "min_child_weight": 1.0,
}  # fmt: skip
_XGB_FIXED = {"n_jobs": 1, "tree_method": "hist", "verbosity": 0}
_LGBM = _BOOSTING | {
    "num_leaves": _int(8, 256, log=True), "min_child_samples": _int(5, 100, log=True)
}  # fmt: skip
_LGBM_DEFAULTS = _BOOSTING_DEFAULTS | {
    "learning_rate": 0.1, "reg_lambda": 0.0, "reg_alpha": 0.0, "num_leaves": 31,
    "min_child_samples": 20,
}  # fmt: skip
_LGBM_FIXED = {"n_jobs": 1, "verbose": -1, "subsample_freq": 1}
_SINGLE_THREAD = {"n_jobs": 1}

_ALL_FAMILIES = (
    ModelFamily(
        "linear", TASKS,
        "Logistic regression (classification) or ridge regression: fast, a baseline.",
        scale=True,
        classifier=EstimatorSpec(
            "sklearn.linear_model.LogisticRegression",
            {"C": _float(1e-4, 1e3, log=True)} | _CLASS_WEIGHT, {"C": 1.0} | _NO_CLASS_WEIGHT,
            {"max_iter": 1000},
        ),
        regressor=EstimatorSpec(
            "sklearn.linear_model.Ridge", {"alpha": _float(1e-4, 1e3, log=True)}, {"alpha": 1.0}
        ),
    ),
    ModelFamily(
        "random_forest", TASKS, "Random forest: robust with little tuning, no scaling needed.",
        ordinal_categoricals=True,
        classifier=EstimatorSpec(
            "sklearn.ensemble.RandomForestClassifier", _TREES | _CLASS_WEIGHT,
            _TREE_DEFAULTS | {"max_features": "sqrt"} | _NO_CLASS_WEIGHT, _SINGLE_THREAD,
        ),
        regressor=EstimatorSpec(
            "sklearn.ensemble.RandomForestRegressor", _TREES,
            _TREE_DEFAULTS | {"max_features": 1.0}, _SINGLE_THREAD,
        ),
    ),
    ModelFamily(
        "hist_gradient_boosting", TASKS,
        "scikit-learn's histogram gradient boosting: strong on tables, handles NaN.",
        ordinal_categoricals=True,
        classifier=EstimatorSpec(
            "sklearn.ensemble.HistGradientBoostingClassifier", _HGB, _HGB_DEFAULTS
        ),
        regressor=EstimatorSpec(
            "sklearn.ensemble.HistGradientBoostingRegressor", _HGB, _HGB_DEFAULTS
        ),
    ),
    ModelFamily(
        "knn", TASKS, "k nearest neighbours: predictions from the closest training rows.",
        scale=True,
        classifier=EstimatorSpec(
            "sklearn.neighbors.KNeighborsClassifier", _KNN, _KNN_DEFAULTS, _SINGLE_THREAD,
            seeded=False,
        ),
        regressor=EstimatorSpec(
            "sklearn.neighbors.KNeighborsRegressor", _KNN, _KNN_DEFAULTS, _SINGLE_THREAD,
            seeded=False,
        ),
    ),
    ModelFamily(
        "svm", TASKS,
        "Support vector machine (RBF kernel): good on small data, slow beyond 20,000 rows.",
        max_rows=20_000, scale=True,
        classifier=EstimatorSpec(
            "sklearn.svm.SVC", _SVM | _CLASS_WEIGHT, _SVM_DEFAULTS | _NO_CLASS_WEIGHT,
            calibrated=True,
        ),
        regressor=EstimatorSpec(
            "sklearn.svm.SVR", _SVM | {"epsilon": _float(1e-3, 1.0, log=True)},
            _SVM_DEFAULTS | {"epsilon": 0.1}, seeded=False,
        ),
    ),
    ModelFamily(
        "xgboost", TASKS, "XGBoost gradient-boosted trees (hist method).",
        extra="xgboost", ordinal_categoricals=True, needs_encoded_labels=True,
        classifier=EstimatorSpec("xgboost.XGBClassifier", _XGB, _XGB_DEFAULTS, _XGB_FIXED),
        regressor=EstimatorSpec("xgboost.XGBRegressor", _XGB, _XGB_DEFAULTS, _XGB_FIXED),
    ),
    ModelFamily(
        "lightgbm", TASKS, "LightGBM gradient-boosted trees: fast on large tables.",
        extra="lightgbm", ordinal_categoricals=True,
        classifier=EstimatorSpec(
            "lightgbm.LGBMClassifier", _LGBM | _CLASS_WEIGHT, _LGBM_DEFAULTS | _NO_CLASS_WEIGHT,
            _LGBM_FIXED,
        ),
        regressor=EstimatorSpec("lightgbm.LGBMRegressor", _LGBM, _LGBM_DEFAULTS, _LGBM_FIXED),
    ),
)  # fmt: skip

FAMILIES: Mapping[str, ModelFamily] = MappingProxyType({f.name: f for f in _ALL_FAMILIES})
"""Every model family by name (whether or not its library is installed)."""

ALIASES: Mapping[str, str] = MappingProxyType({"logreg": "linear"})
"""Other names :func:`get_family` accepts, and the family each stands for."""


def _canonical_name(name: Any, prefix: str = "") -> str:
    if isinstance(name, str):
        key = ALIASES.get(name.strip().lower(), name.strip().lower())
        if key in FAMILIES:
            return key
    known = [*FAMILIES, *ALIASES]
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InvalidInputError(
        f"{prefix}unknown model family {name!r}{hint}; known families: {', '.join(known)}",
        details={"name": str(name), "allowed": known},
    )


def get_family(name: str) -> ModelFamily:
    """The model family called ``name`` (or an alias such as ``"logreg"``), ready to use.

    Args:
        name: a :data:`FAMILIES` key or an :data:`ALIASES` key (case-insensitive).

    Returns:
        The family.

    Raises:
        InvalidInputError: the name is unknown (the message lists the known ones), or the
            family's library is not installed (the message gives the ``pip install``).

    Example::

        >>> get_family("logreg").name
        'linear'
    """
    family = FAMILIES[_canonical_name(name)]
    family.require()
    return family


def available_families(task: Task | None = None) -> list[ModelFamily]:
    """The families whose library is installed (and that support ``task``, if given).

    Example::

        >>> "linear" in [f.name for f in available_families("regression")]
        True
    """
    return [f for f in FAMILIES.values() if f.is_available() and (task is None or task in f.tasks)]


# ---------------------------------------------------------------------------------------------
# Search-space overrides


def load_search_space_overrides(
    source: Mapping[str, Any] | str | os.PathLike[str],
) -> dict[str, dict[str, ParamSpec]]:
    """Read replacement search ranges, by family and parameter, from YAML or a mapping.

    YAML like this narrows the random forest's ``n_estimators`` and ``max_depth``::

        random_forest:
          n_estimators: {type: int, low: 100, high: 300}
          max_depth: {type: categorical, choices: [4, 8, null]}

    A parameter spec has ``type`` (int, float, categorical) and ``low``/``high``/``log``/
    ``step`` or ``choices`` (see :class:`ParamSpec`); fix a value with one choice. Only
    parameters of the family's default space may be overridden.

    Args:
        source: a YAML file path, or the parsed mapping (values may already be
            :class:`ParamSpec`).

    Returns:
        ``{family name: {parameter: ParamSpec}}``, aliases resolved to family names.

    Raises:
        InvalidInputError: the file is missing or not YAML, a family or parameter is unknown,
            or a spec is malformed; the message names the YAML key (``random_forest.max_depth``).

    Example::

        >>> spaces = load_search_space_overrides({"logreg": {"C": {"type": "float",
        ...                                       "low": 0.01, "high": 10, "log": True}}})
        >>> spaces["linear"]["C"].high
        10.0
    """
    data: Any = source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(
                f"search-space overrides file {str(path)!r} does not exist; check the path"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidInputError(
                f"search-space overrides {str(path)!r}: not YAML: {exc}"
            ) from None
        data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            "search-space overrides must map family names to {parameter: spec}; "
            f"got {type(data).__name__}"
        )
    out: dict[str, dict[str, ParamSpec]] = {}
    for family_key, params in data.items():
        name = _canonical_name(family_key, prefix=f"search-space overrides key {family_key!r}: ")
        if not isinstance(params, Mapping):
            raise InvalidInputError(
                f"{family_key}: must map parameter names to specs; got {params!r}",
                details={"key": str(family_key)},
            )
        family = FAMILIES[name]
        known = {**family.classifier.space, **family.regressor.space}
        specs = out.setdefault(name, {})
        for param, spec in params.items():
            where = f"{family_key}.{param}"
            if param not in known:
                close = difflib.get_close_matches(str(param), list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InvalidInputError(
                    f"{where}: {name} has no tunable parameter {param!r}{hint}; its parameters "
                    f"are {', '.join(known)}",
                    details={"key": where, "allowed": list(known)},
                )
            specs[str(param)] = (
                spec if isinstance(spec, ParamSpec) else ParamSpec.from_dict(spec, where=where)
            )
    return out


# ---------------------------------------------------------------------------------------------
# Preprocessing


def datetime_parts(X: Any) -> np.ndarray[Any, Any]:
    """Turn each datetime column into year, month, day and day of week (float, NaN if missing).

    The function of the ``FunctionTransformer`` :func:`build_pipeline` uses for datetime
    columns (module level, so skops can save it by name).

    Args:
        X: a frame or 2-D array of datetimes (or values ``pandas.to_datetime`` parses).

    Returns:
        A float64 array with :data:`DATETIME_PARTS` for each input column, in order.

    Example::

        >>> datetime_parts(pd.DataFrame({"t": pd.to_datetime(["2024-02-29", None])})).tolist()
        [[2024.0, 2.0, 29.0, 3.0], [nan, nan, nan, nan]]
    """
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    blocks: list[np.ndarray[Any, Any]] = []
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            values = pd.to_datetime(values, errors="coerce")
        blocks.extend(
            getattr(values.dt, part).astype("float64").to_numpy(na_value=np.nan)
            for part in DATETIME_PARTS
        )
    if not blocks:
        return np.empty((len(frame), 0))
    return np.column_stack(blocks)


def datetime_part_names(transformer: Any, input_features: Any) -> np.ndarray[Any, Any]:
    """The output names of :func:`datetime_parts`: ``<column>_<part>`` for each part."""
    return np.asarray(
        [f"{column}_{part}" for column in input_features for part in DATETIME_PARTS],
        dtype=object,
    )


def categories_as_text(X: Any) -> np.ndarray[Any, Any]:
    """Make categorical values uniform for the encoders: text, with NaN where missing.

    Booleans, categories, pandas strings (``pd.NA``) and mixed objects all become Python
    strings, so an imputer and encoder fitted on one fold accept any later value.

    Args:
        X: a frame or 2-D array of categorical columns.

    Returns:
        An object array of ``str`` and ``nan``.

    Example::

        >>> categories_as_text(pd.DataFrame({"a": [True, None], "b": ["x", pd.NA]}))
        array([['True', 'x'],
               [nan, nan]], dtype=object)
    """
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    out = frame.astype(object).to_numpy(dtype=object, copy=True)
    missing = pd.isna(out)
    text: np.ndarray[Any, Any] = out.astype(str).astype(object)
    text[missing] = np.nan
    return text


def column_roles(X: pd.DataFrame) -> dict[str, list[str]]:
    """Sort the columns of ``X`` by how :func:`build_pipeline` preprocesses them.

    Args:
        X: the feature frame.

    Returns:
        ``{"numeric": [...], "categorical": [...], "datetime": [...]}``: numbers (not
        booleans); booleans, categories, strings and objects; datetimes (with or without a
        time zone). Each list keeps the frame's column order.

    Raises:
        InvalidInputError: a column has another dtype (timedelta, period, interval...);
            the message names it.

    Example::

        >>> X = pd.DataFrame({"age": [30], "city": ["Oslo"], "at": pd.to_datetime(["2024-01-01"])})
        >>> column_roles(X)
        {'numeric': ['age'], 'categorical': ['city'], 'datetime': ['at']}
    """
    types = pd.api.types
    roles: dict[str, list[str]] = {"numeric": [], "categorical": [], "datetime": []}
    for column in X.columns:
        dtype = X[column].dtype
        categorical = isinstance(dtype, pd.CategoricalDtype | pd.StringDtype)
        if categorical or types.is_bool_dtype(dtype) or types.is_object_dtype(dtype):
            roles["categorical"].append(column)
        elif types.is_datetime64_any_dtype(dtype):
            roles["datetime"].append(column)
        elif types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
            roles["numeric"].append(column)
        else:
            raise InvalidInputError(
                f"column {column!r} has dtype {dtype}, which the model pipeline cannot use; "
                "convert it to numbers, text or datetimes, or drop it",
                details={"column": str(column), "dtype": str(dtype)},
            )
    return roles


def _check_frame(X: Any) -> None:
    if not isinstance(X, pd.DataFrame):
        raise InvalidInputError(
            f"X must be a pandas DataFrame; got {type(X).__name__}; wrap arrays with "
            "pandas.DataFrame(X, columns=[...])"
        )
    bad = [c for c in X.columns if not isinstance(c, str)]
    if bad:
        raise InvalidInputError(
            f"X needs string column names; got {bad[:5]}; rename them, e.g. "
            "X.columns = X.columns.astype(str)"
        )
    if X.columns.has_duplicates:
        repeated = sorted(set(X.columns[X.columns.duplicated()]))
        raise InvalidInputError(f"X column names must be unique; repeated: {repeated}")
    if X.shape[1] == 0:
        raise InvalidInputError("X has no columns; pass at least one feature")


def _preprocessor(family: ModelFamily, X: pd.DataFrame) -> Any:
    """The unfitted ``ColumnTransformer``; its parts come from the data package's steps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from shipyard.data.cleaning import Impute, OneHotEncode, OrdinalEncode, Scale

    roles = column_roles(X)

    def numeric_steps(columns: list[str]) -> list[tuple[str, Any]]:
        steps = [("impute", Impute(columns, strategy="median").transformer(X, columns))]
        if family.scale:
            steps.append(("scale", Scale(columns, method="standard").transformer(X, columns)))
        return steps

    parts: list[tuple[str, Any, list[str]]] = []
    if roles["numeric"]:
        parts.append(("numeric", Pipeline(numeric_steps(roles["numeric"])), roles["numeric"]))
    if roles["datetime"]:
        as_parts = FunctionTransformer(
            datetime_parts, feature_names_out=datetime_part_names, validate=False
        )
        steps = [("parts", as_parts), *numeric_steps(roles["datetime"])]
        parts.append(("datetime", Pipeline(steps), roles["datetime"]))
    if cats := roles["categorical"]:
        if family.ordinal_categoricals:
            encode = OrdinalEncode(cats, unknown_value=-1).transformer(X, cats)
        else:
            encode = OneHotEncode(cats, handle_unknown="ignore").transformer(X, cats)
            encode.set_params(min_frequency=MIN_CATEGORY_FREQUENCY)
        as_text = FunctionTransformer(categories_as_text, feature_names_out="one-to-one")
        impute = Impute(cats, strategy="most_frequent").transformer(X, cats)
        steps = [("as_text", as_text), ("impute", impute), ("encode", encode)]
        parts.append(("categorical", Pipeline(steps), cats))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def build_pipeline(
    family: ModelFamily | str,
    task: Task,
    X: pd.DataFrame,
    params: Mapping[str, Any],
    seed: int,
) -> Any:
    """An unfitted scikit-learn ``Pipeline``: preprocessing chosen from ``X``, then the model.

    Column roles come from the dtypes (:func:`column_roles`):

    - numeric: median imputation, then standard scaling if ``family.scale``;
    - categorical: as text (:func:`categories_as_text`), most-frequent imputation, then
      ``OrdinalEncoder`` (unknown categories -> -1) for tree families, else
      ``OneHotEncoder`` (unknown categories -> all zeros, categories rarer than
      :data:`MIN_CATEGORY_FREQUENCY` grouped);
    - datetime: year, month, day, day of week (:func:`datetime_parts`), then as numeric.

    Nothing is learned here: ``fit`` learns medians, scales and categories from the rows it
    is given, so cross-validating the pipeline never leaks a validation fold into them.
    The transformers are those of :mod:`shipyard.data.cleaning` (``Impute``, ``Scale``,
    ``OneHotEncode``, ``OrdinalEncode``). Save the fitted pipeline with skops.

    Args:
        family: a :class:`ModelFamily` or a family name.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        X: the training features (string column names); only dtypes and row count are read.
        params: hyperparameters (see :meth:`ModelFamily.make_estimator`).
        seed: the random seed.

    Returns:
        ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``.

    Raises:
        InvalidInputError: unknown family or task, missing library, ``X`` is not a frame
            with unique string column names, a column dtype is unusable, or ``X`` has more
            rows than the family accepts (``max_rows``).

    Example::

        >>> X = pd.DataFrame({"age": [31.0, None, 45.0, 52.0], "city": ["a", "b", "a", None]})
        >>> pipe = build_pipeline("linear", "binary", X, {}, seed=0).fit(X, [0, 1, 0, 1])
        >>> pipe.predict(X).shape
        (4,)
    """
    fam = family if isinstance(family, ModelFamily) else get_family(family)
    _check_frame(X)
    if fam.max_rows is not None and len(X) > fam.max_rows:
        raise InvalidInputError(
            f"model family {fam.name!r} accepts at most {fam.max_rows:,} training rows (its "
            f"fit time grows with the square of the rows); got {len(X):,}; sample the rows "
            "or choose another family such as hist_gradient_boosting",
            details={"family": fam.name, "rows": len(X), "max_rows": fam.max_rows},
        )
    from sklearn.pipeline import Pipeline

    estimator = fam.make_estimator(task, params, seed)
    if fam.needs_encoded_labels and task != "regression":
        from shipyard.training.estimators import LabelEncodedClassifier

        estimator = LabelEncodedClassifier(estimator)  # any labels, not only 0..k-1
    return Pipeline([("preprocess", _preprocessor(fam, X)), ("model", estimator)])
