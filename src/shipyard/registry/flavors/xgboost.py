"""The XGBoost flavor: boosters and bare sklearn-API models in XGBoost's own UBJSON format.

A native ``xgboost.Booster`` loads back as a ``Booster``; a bare ``XGBClassifier`` or
``XGBRegressor`` (random-forest variants included) loads back as the same class, with
its JSON-safe constructor parameters restored. A pipeline that *contains* an XGBoost
model is saved by the ``sklearn`` flavor instead.

For a native ``Booster``, predictions follow its objective: ``binary:logistic`` gives
0/1 labels (probability above 0.5) and two probability columns, ``multi:softprob``
gives the most probable class index and one column per class, ``multi:softmax`` gives
labels and no probabilities, anything else gives the booster's raw output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidStateError, NotFittedError
from shipyard.registry.flavors import (
    Flavor,
    import_for,
    module_of,
    one_file,
    pinned,
    plain_labels,
)

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "model.ubj"
# The sklearn-API classes a model folder may name (nothing else is ever instantiated).
WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")


def _json_safe(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _objective(booster: Any) -> tuple[str, int]:
    """The booster's objective name and number of classes (0 when not a classifier)."""
    config = json.loads(booster.save_config())
    learner = config["learner"]
    return str(learner["objective"]["name"]), int(learner["learner_model_param"]["num_class"])


class XGBoostFlavor(Flavor):
    """``xgboost.Booster`` and bare ``XGBClassifier`` / ``XGBRegressor`` models."""

    name = "xgboost"
    extra = "xgboost"
    cacheable = True

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` is a Booster or one of :data:`WRAPPERS` (checked by class)."""
        if module_of(model) != "xgboost":
            return False
        import xgboost

        if isinstance(model, xgboost.Booster):
            return True
        return type(model).__name__ in WRAPPERS  # a subclass of them goes to sklearn

    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """``model.ubj`` (``save_raw("ubj")``) and the kind, class and parameters.

        Raises:
            NotFittedError: A sklearn-API model that is not fitted.
        """
        import xgboost

        if isinstance(model, xgboost.Booster):
            return {MODEL_FILE: bytes(model.save_raw("ubj"))}, {"kind": "booster"}
        if not model.__sklearn_is_fitted__():
            raise NotFittedError(
                f"the {type(model).__name__} is not fitted; call fit before saving it"
            )
        params = {k: v for k, v in model.get_params().items() if _json_safe(v)}
        options: dict[str, Any] = {"kind": "sklearn", "class": type(model).__name__}
        options["params"] = params
        labels = getattr(model, "classes_", None)
        if labels is not None:
            options["classes"] = plain_labels(labels)
        return {MODEL_FILE: bytes(model.get_booster().save_raw("ubj"))}, options

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> Any:
        """A ``Booster``, or the saved sklearn-API class, loaded from the bytes.

        Raises:
            InvalidStateError: XGBoost is missing, the class is not one of
                :data:`WRAPPERS`, or XGBoost cannot read the bytes.
        """
        xgboost = import_for("xgboost", flavor=self.name, extra=self.extra)
        raw = bytearray(one_file(files, MODEL_FILE, flavor=self.name))
        kind = options.get("kind")
        try:
            if kind == "booster":
                booster = xgboost.Booster()
                booster.load_model(raw)
                return booster
            cls_name = options.get("class")
            if kind != "sklearn" or cls_name not in WRAPPERS:
                raise InvalidStateError(
                    f"the xgboost model folder names kind {kind!r} and class {cls_name!r}; "
                    f"expected kind 'booster', or 'sklearn' with one of {', '.join(WRAPPERS)}. "
                    "The metadata is damaged: register the model again",
                    details={"flavor": self.name},
                )
            params = dict(options.get("params") or {})
            model = getattr(xgboost, str(cls_name))(**params)
            model.load_model(raw)
            return model
        except xgboost.core.XGBoostError as exc:
            raise InvalidStateError(
                f"XGBoost {xgboost.__version__} could not read the model ({exc}); install the "
                "xgboost version in the model's requirements and try again",
                details={"flavor": self.name},
            ) from None

    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """XGBoost and NumPy (plus scikit-learn for the sklearn-API classes)."""
        sklearn_api = (options or {}).get("kind") == "sklearn"
        return pinned("xgboost", "numpy", *(["sklearn"] if sklearn_api else []))

    def predict(self, native: Any, X: Any) -> np.ndarray:
        """Predictions: the model's own ``predict``, or by objective for a Booster."""
        import numpy as np

        if not _is_booster(native):
            return np.asarray(native.predict(X))
        objective, _ = _objective(native)
        out = np.asarray(native.predict(_dmatrix(X)))
        if objective == "binary:logistic":
            return (out > 0.5).astype(np.int64)
        if objective == "multi:softprob":
            return np.asarray(np.argmax(out, axis=1), dtype=np.int64)
        if objective == "multi:softmax":
            return out.astype(np.int64)
        return out

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """Class probabilities, or None for regressors and objectives without them."""
        import numpy as np

        if not _is_booster(native):
            if not hasattr(native, "predict_proba"):
                return None
            return np.asarray(native.predict_proba(X))
        objective, _ = _objective(native)
        if objective == "binary:logistic":
            p = np.asarray(native.predict(_dmatrix(X)))
            return np.column_stack([1.0 - p, p])
        if objective == "multi:softprob":
            return np.asarray(native.predict(_dmatrix(X)))
        return None

    def classes(self, native: Any) -> list[Any] | None:
        """``classes_`` of a classifier; 0..k-1 for a classifying Booster; else None."""
        if not _is_booster(native):
            labels = getattr(native, "classes_", None)
            return None if labels is None else plain_labels(labels)
        objective, num_class = _objective(native)
        if objective == "binary:logistic":
            return [0, 1]
        if objective.startswith("multi:"):
            return list(range(num_class))
        return None


def _is_booster(native: Any) -> bool:
    import xgboost

    return isinstance(native, xgboost.Booster)


def _dmatrix(X: Any) -> Any:
    import xgboost

    return X if isinstance(X, xgboost.DMatrix) else xgboost.DMatrix(X)


FLAVOR = XGBoostFlavor()
