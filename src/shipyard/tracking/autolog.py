"""Autologging for scikit-learn: ``fit`` calls become runs, scorer calls become metrics.

:func:`autolog` patches ``fit``/``fit_transform``/``fit_predict``, ``predict``/``predict_proba``
and ``score`` on the sklearn classes that define them for sklearn's estimators, and the public
metric functions of :mod:`sklearn.metrics` (as module attributes). Only the outermost patched
call in a thread logs (a thread-local depth counter), so a Pipeline fitting its steps or a
search fitting clones records one run. Logging never breaks the user's code: a
:class:`ShipyardError` while logging becomes a :class:`ShipyardWarning`. Models are saved
with skops, never pickled.
"""

from __future__ import annotations

import functools
import inspect
import logging
import numbers
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, ParamSpec

from shipyard.core.entities import RunStatus
from shipyard.core.errors import (
    InvalidInputError,
    ShipyardError,
    ShipyardWarning,
)
from shipyard.core.validation import PARAM_VALUE_MAX, check_key
from shipyard.tracking.tracker import Tracker

logger = logging.getLogger(__name__)

P = ParamSpec("P")
Call = Callable[..., Any]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Hook = Callable[[Any, Call, Args, Kwargs], Any]

_METRIC_FUNCTIONS = [
    *("accuracy_score", "balanced_accuracy_score", "precision_score", "recall_score"),
    *("f1_score", "fbeta_score", "matthews_corrcoef", "roc_auc_score", "log_loss"),
    *("average_precision_score", "brier_score_loss", "median_absolute_error", "r2_score"),
    *("mean_squared_error", "root_mean_squared_error", "mean_absolute_error"),
    *("mean_absolute_percentage_error", "explained_variance_score"),
]
_REGRESSION_METRICS = ("mean_squared_error", "root_mean_squared_error", "mean_absolute_error")
_PREDICTION_ARGS = ("y_pred", "y_score", "y_proba", "y_prob", "probas_pred")
_MAX_PREDICTIONS = 256
# What computing a metric or saving a model on the user's estimator may raise; the
# user's fit has succeeded by then, so these are logged at debug level (or warned), not raised.
_ESTIMATOR_ERRORS = (ValueError, TypeError, AttributeError, IndexError, ArithmeticError)


ModelLogger = Callable[[Any, str, Any], object]
"""``logger(estimator, run_id, input_example)`` writes the fitted model into the run (the
public API passes the registry's ``log_model``: a model folder with signature and hashes)."""


@dataclass(frozen=True)
class _Config:
    tracker: Tracker
    log_models: bool
    model_logger: ModelLogger | None = None


@dataclass(frozen=True)
class _Origin:
    """The training run of an estimator (``ref``: its training X) or of a prediction
    (``ref``: the prediction itself, so a reused ``id`` never matches; ``dataset``: X's name)."""

    tracker: Tracker
    run_id: str
    ref: Callable[[], object]
    dataset: str = ""


_config: _Config | None = None
_patches: list[tuple[object, str, object]] = []
_patch_lock = threading.Lock()
_local = threading.local()
_registry_lock = threading.Lock()
_fitted: weakref.WeakKeyDictionary[Any, _Origin] = weakref.WeakKeyDictionary()
_predictions: OrderedDict[int, _Origin] = OrderedDict()
_fitting: dict[str, int] = {}  # run id -> outermost fits in progress


def autolog(
    tracker: Tracker,
    *,
    log_models: bool = True,
    model_logger: ModelLogger | None = None,
    disable: bool = False,
) -> None:
    """Log scikit-learn training and evaluation to ``tracker`` automatically (or stop).

    An outermost ``fit`` starts a run named after the estimator when none is active
    (and ends it FINISHED, or FAILED if ``fit`` raises), else it logs into the active
    run. It logs params, the ``estimator_class``/``estimator_name`` tags, training
    metrics, ``best_cv_score`` and ``best_<param>`` for searches, and the model through
    ``model_logger`` (``sy.autolog`` writes a registrable model folder). Metric functions of
    :mod:`sklearn.metrics` (looked up as module attributes after this call) and
    ``score`` on held-out data log ``<metric>_<X variable name>`` to the training run
    while it is active, else to the active run, else nowhere.

    Args:
        tracker: where runs are written.
        log_models: save each fitted estimator (with ``model_logger``).
        model_logger: writes a fitted estimator into its run, given its training data.
        disable: restore every patched attribute and forget tracked estimators.

    Example::

        sy.autolog()
        model = LogisticRegression().fit(X_train, y_train)  # one run
        sklearn.metrics.accuracy_score(y_test, model.predict(X_test))  # accuracy_score_X_test
    """
    global _config
    with _patch_lock:
        if disable:
            _config = None
            for owner, name, original in reversed(_patches):
                setattr(owner, name, original)
            _patches.clear()
            with _registry_lock:
                _fitted.clear()
                _predictions.clear()
            return
        import sklearn.metrics
        from sklearn.utils import all_estimators

        _config = _Config(tracker, log_models, model_logger)
        if _patches:
            return
        hooks: dict[str, Hook] = {
            **dict.fromkeys(("fit", "fit_transform", "fit_predict"), _fit_hook),
            **dict.fromkeys(("predict", "predict_proba"), _predict_hook),
            "score": _score_hook,
        }
        seen: set[tuple[type, str]] = set()
        for _, cls in all_estimators():
            for name, hook in hooks.items():
                owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
                if owner is None or (owner, name) in seen:
                    continue
                seen.add((owner, name))
                if owner.__module__.startswith("sklearn."):
                    _patch(owner, name, hook)
        for name in _METRIC_FUNCTIONS:
            function = getattr(sklearn.metrics, name, None)
            if callable(function):
                _patches.append((sklearn.metrics, name, function))
                setattr(sklearn.metrics, name, _metric_patch(name, function))


# -- patching -------------------------------------------------------------------------


def _patch(owner: type, name: str, hook: Hook) -> None:
    raw = owner.__dict__[name]
    if inspect.isfunction(raw):
        setattr(owner, name, _function_patch(raw, hook))
    elif hasattr(raw, "__get__") and not isinstance(raw, property | staticmethod | classmethod):
        setattr(owner, name, _DescriptorPatch(raw, hook))  # sklearn's available_if
    else:
        return
    _patches.append((owner, name, raw))


def _function_patch(raw: Call, hook: Hook) -> Call:
    @functools.wraps(raw)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return hook(self, functools.partial(raw, self), args, kwargs)

    return patched


class _DescriptorPatch:
    """Wraps a descriptor such as ``available_if`` so ``hasattr`` answers as before."""

    def __init__(self, raw: Any, hook: Hook) -> None:
        self.raw = raw
        self.hook = hook

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        bound = self.raw.__get__(obj, owner)  # AttributeError when unavailable, as before
        if obj is None:
            return bound
        hook = self.hook

        @functools.wraps(bound)
        def call(*args: Any, **kwargs: Any) -> Any:
            return hook(obj, bound, args, kwargs)

        return call


def _metric_patch(name: str, function: Call) -> Call:
    @functools.wraps(function)
    def patched(*args: Any, **kwargs: Any) -> Any:
        if _config is None or _depth() > 0:
            return function(*args, **kwargs)
        with _inside():
            result = function(*args, **kwargs)
        if len(args) > 1:
            prediction = args[1]
        else:
            prediction = next((kwargs[k] for k in _PREDICTION_ARGS if k in kwargs), None)
        origin = _prediction_origin(prediction)
        if origin is not None:
            _log_eval_metric(origin, f"{name}_{origin.dataset}", result)
        return result

    return patched


def _depth() -> int:
    return int(getattr(_local, "depth", 0))


@contextmanager
def _inside() -> Iterator[None]:
    """Mark this thread as inside a patched call: nested patched calls only pass through."""
    _local.depth = _depth() + 1
    try:
        yield
    finally:
        _local.depth -= 1


# -- hooks ----------------------------------------------------------------------------


def _fit_hook(est: Any, call: Call, args: Args, kwargs: Kwargs) -> Any:
    config = _config
    if config is None or _depth() > 0:
        return call(*args, **kwargs)
    with _inside():
        return _outermost_fit(config, est, call, args, kwargs)


def _outermost_fit(config: _Config, est: Any, call: Call, args: Args, kwargs: Kwargs) -> Any:
    tracker = config.tracker
    active = tracker.active_run()
    if active is not None and active.run_id in _fitting:
        return call(*args, **kwargs)  # a worker thread of a fit in progress (joblib threads)
    owned = active is None
    try:
        run_id = (
            active.run_id if active is not None else tracker.start_run(type(est).__name__).run_id
        )
    except ShipyardError as exc:
        _warn(f"could not start a run for {type(est).__name__}.fit ({exc}); nothing is logged")
        return call(*args, **kwargs)
    inputs = _fit_inputs(call, args, kwargs)
    _guarded(_log_setup, tracker, run_id, est, owned)
    try:
        with _fitting_into(run_id):
            result = call(*args, **kwargs)
    except BaseException as exc:
        if owned:
            failed = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            _guarded(tracker.end_run, failed, run_id=run_id)
        raise
    _guarded(_log_fitted, config, run_id, est, inputs, owned=owned)
    with _registry_lock, suppress(TypeError):  # an unhashable estimator is not tracked
        _fitted[est] = _Origin(tracker, run_id, _reference(inputs[0]))
    if owned:
        _guarded(tracker.end_run, RunStatus.FINISHED, run_id=run_id)
    return result


@contextmanager
def _fitting_into(run_id: str) -> Iterator[None]:
    """Mark ``run_id`` as receiving a fit, so fits in other threads meanwhile are nested ones."""
    with _registry_lock:
        _fitting[run_id] = _fitting.get(run_id, 0) + 1
    try:
        yield
    finally:
        with _registry_lock:
            _fitting[run_id] -= 1
            if not _fitting[run_id]:
                del _fitting[run_id]


def _predict_hook(est: Any, call: Call, args: Args, kwargs: Kwargs) -> Any:
    origin, result, x = _tracked_call(est, call, args, kwargs)
    if origin is not None:
        entry = replace(origin, ref=_reference(result), dataset=_dataset_name(x))
        with _registry_lock:
            _predictions[id(result)] = entry
            _predictions.move_to_end(id(result))
            while len(_predictions) > _MAX_PREDICTIONS:
                _predictions.popitem(last=False)
    return result


def _score_hook(est: Any, call: Call, args: Args, kwargs: Kwargs) -> Any:
    origin, result, x = _tracked_call(est, call, args, kwargs)
    if origin is not None and x is not None and x is not origin.ref():  # training X: skip
        _log_eval_metric(origin, f"score_{_dataset_name(x)}", result)
    return result


def _tracked_call(
    est: Any, call: Call, args: Args, kwargs: Kwargs
) -> tuple[_Origin | None, Any, Any]:
    """Call ``predict``/``score``; the training run of ``est`` if the call is to be tracked."""
    origin = None
    if _config is not None and _depth() == 0:
        with _registry_lock, suppress(TypeError):  # unhashable estimators are not tracked
            origin = _fitted.get(est)
    if origin is None:
        return None, call(*args, **kwargs), None
    with _inside():
        result = call(*args, **kwargs)
    return origin, result, args[0] if args else kwargs.get("X")


# -- what gets logged -----------------------------------------------------------------


def _log_setup(tracker: Tracker, run_id: str, est: Any, owned: bool) -> None:
    cls = type(est)
    tracker.set_tags(
        {"estimator_class": f"{cls.__module__}.{cls.__qualname__}", "estimator_name": cls.__name__},
        run_id=run_id,
    )
    try:
        params = est.get_params(deep=True)
    except _ESTIMATOR_ERRORS as exc:
        logger.debug("autolog could not read the params of %s: %s", cls.__name__, exc)
        return
    _log_params(tracker, run_id, _param_values(params), owned)


def _log_fitted(
    config: _Config, run_id: str, est: Any, inputs: tuple[Any, Any, Any], *, owned: bool
) -> None:
    tracker = config.tracker
    metrics = _training_metrics(est, *inputs) if inputs[0] is not None else {}
    best_score = getattr(est, "best_score_", None)
    if isinstance(best_score, numbers.Real):
        metrics["best_cv_score"] = float(best_score)
    if metrics:
        tracker.log_metrics(metrics, run_id=run_id)
    best_params = getattr(est, "best_params_", None)
    if isinstance(best_params, Mapping):
        _log_params(tracker, run_id, _param_values(best_params, prefix="best_"), owned)
    if config.log_models and config.model_logger is not None:
        _log_model(config.model_logger, run_id, est, inputs[0])


def _param_values(params: Mapping[str, Any], *, prefix: str = "") -> dict[str, str]:
    """Params as text: estimators themselves are skipped, long values cut to the limit."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            continue
        text = str(value)
        if len(text) > PARAM_VALUE_MAX:
            text = text[: PARAM_VALUE_MAX - 3] + "..."
        out[f"{prefix}{key}"] = text
    return out


def _log_params(tracker: Tracker, run_id: str, params: dict[str, str], owned: bool) -> None:
    valid: dict[str, str] = {}
    for key, value in params.items():
        try:
            valid[check_key(key, what="param key")] = value
        except InvalidInputError:
            logger.debug("autolog skips param %r: not a valid key", key)
    if not owned and valid:  # a run the user started may hold these keys with other values
        logged = tracker.get_run(run_id).params
        clash = sorted(k for k, v in valid.items() if logged.get(k, v) != v)
        if clash:
            _warn(
                f"run {run_id} already has params {', '.join(clash[:5])} with other values; "
                "they are kept and the new values are not logged (fit each model in its own run)"
            )
            valid = {k: v for k, v in valid.items() if k not in clash}
    if valid:
        tracker.log_params(valid, run_id=run_id)


def _training_metrics(est: Any, x: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    w = {} if sample_weight is None else {"sample_weight": sample_weight}
    pred = functools.cache(lambda: est.predict(x))
    proba = functools.cache(lambda: est.predict_proba(x))

    def metric(fn: Call, source: Callable[[], Any], **kw: Any) -> Callable[[], Any]:
        return lambda: fn(y, source(), **kw, **w)

    specs: dict[str, Callable[[], Any]] = {}
    if y is not None and is_classifier(est):
        specs["training_accuracy_score"] = metric(m.accuracy_score, pred)
        for name in ("precision", "recall", "f1"):
            fn = getattr(m, f"{name}_score")
            specs[f"training_{name}_score"] = metric(fn, pred, average="weighted", zero_division=0)
        if hasattr(est, "predict_proba"):
            specs["training_roc_auc"] = metric(_roc_auc, proba, est=est)
            specs["training_log_loss"] = lambda: m.log_loss(y, proba(), labels=est.classes_, **w)
    elif y is not None and is_regressor(est):
        for name in (*_REGRESSION_METRICS, "r2_score"):
            specs[f"training_{name}"] = metric(getattr(m, name), pred)
    if sample_weight is None and hasattr(est, "score"):
        specs["training_score"] = lambda: est.score(x, y)
    out: dict[str, float] = {}
    for key, compute in specs.items():
        try:
            value = compute()
        except _ESTIMATOR_ERRORS as exc:
            logger.debug("autolog could not compute %s: %s", key, exc)
            continue
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def _roc_auc(y: Any, proba: Any, *, est: Any, sample_weight: Any = None) -> Any:
    """Binary: on ``proba[:, 1]``; multiclass: one-vs-rest, weighted by support."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    classes, w = est.classes_, {"sample_weight": sample_weight}
    if len(classes) == 2:
        return roc_auc_score(np.asarray(y) == classes[1], proba[:, 1], **w)
    return roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes, **w)


def _log_model(model_logger: ModelLogger, run_id: str, est: Any, X: Any) -> None:
    try:
        model_logger(est, run_id, X)
    except (ShipyardError, *_ESTIMATOR_ERRORS) as exc:
        _warn(f"could not save the {type(est).__name__} model ({exc}); not logged")


def _log_eval_metric(origin: _Origin, key: str, value: Any) -> None:
    """Log to the run that trained the model, even after it ended (as MLflow does)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return
    _guarded(origin.tracker.log_evaluation_metric, key, float(value), run_id=origin.run_id)


# -- helpers --------------------------------------------------------------------------


def _prediction_origin(prediction: Any) -> _Origin | None:
    """The remembered prediction ``prediction`` is, or is a view of (``proba[:, 1]``)."""
    candidate = prediction
    with _registry_lock:
        for _ in range(3):
            if candidate is None:
                return None
            origin = _predictions.get(id(candidate))
            if origin is not None and origin.ref() is candidate:
                return origin
            candidate = getattr(candidate, "base", None)
    return None


def _fit_inputs(call: Call, args: Args, kwargs: Kwargs) -> tuple[Any, Any, Any]:
    """X, y and sample_weight of a fit call, by the names in its signature."""
    try:
        signature = inspect.signature(call)
        arguments = signature.bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return None, None, None  # fit itself will say what is wrong
    values: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            values.update(arguments.get(parameter.name, {}))
    values.update(arguments)
    first = next(iter(signature.parameters), "X")
    return values.get(first), values.get("y", values.get("Y")), values.get("sample_weight")


def _dataset_name(x: object) -> str:
    """The name of the caller's local variable holding ``x``, or ``eval``."""
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back
        if frame is not None and x is not None:
            for name, value in frame.f_locals.items():
                if value is x and not name.startswith("_"):
                    return name
    finally:
        del frame
    return "eval"


def _reference(obj: object) -> Callable[[], object]:
    """A weak reference when ``obj`` allows one, else a strong one (kept in a bounded map)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _guarded(fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
    """Call ``fn``; a shipyard or disk error becomes a warning, never the user's problem."""
    try:
        fn(*args, **kwargs)
    except (ShipyardError, OSError) as exc:
        _warn(f"{exc}")


def _warn(message: str) -> None:
    warnings.warn(f"shipyard autolog: {message}", ShipyardWarning, stacklevel=3)
