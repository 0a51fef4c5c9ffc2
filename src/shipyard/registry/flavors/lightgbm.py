"""The LightGBM flavor: boosters and bare sklearn-API models as LightGBM's text model.

The model is saved with ``model_to_string`` (up to the best iteration when early
stopping found one) and loaded with ``lightgbm.Booster(model_str=...)``. LightGBM has
no public way to rebuild a fitted ``LGBMClassifier`` from a booster, so every model
loads as a :class:`LightGBMModel`: the ``Booster`` plus the class labels kept in the
options, predicting exactly as the ``LGBMClassifier`` / ``LGBMRegressor`` did. A native
``Booster`` with a ``binary`` or ``multiclass`` objective is treated as a classifier
with labels ``0..k-1``; any other objective predicts the booster's raw output.
A pipeline that *contains* a LightGBM model is saved by the ``sklearn`` flavor instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

MODEL_FILE = "model.txt"
WRAPPERS = ("LGBMClassifier", "LGBMRegressor")
_CLASSIFYING = ("binary", "multiclass", "multiclassova")


def _header(model_str: str) -> tuple[str, int]:
    """The objective name and ``num_class`` from a LightGBM text model's header."""
    objective, num_class = "", 1
    for line in model_str.splitlines()[:50]:
        if line.startswith("objective="):
            objective = line.partition("=")[2].split(" ", 1)[0]
        elif line.startswith("num_class="):
            num_class = int(line.partition("=")[2])
        elif line.startswith("Tree="):
            break
    return objective, num_class


def _default_classes(objective: str, num_class: int) -> tuple[int, ...] | None:
    if objective not in _CLASSIFYING:
        return None
    return tuple(range(max(num_class, 2)))


@dataclass(frozen=True)
class LightGBMModel:
    """What the lightgbm flavor loads: a ``lightgbm.Booster`` and its class labels.

    Args:
        booster: The native ``lightgbm.Booster``.
        objective: Its objective (``binary``, ``multiclass``, ``regression``...).
        classes: Class labels in probability-column order, or None (not a classifier).
    """

    booster: Any
    objective: str
    classes: tuple[Any, ...] | None = None

    @classmethod
    def from_booster(cls, booster: Any, classes: tuple[Any, ...] | None = None) -> LightGBMModel:
        """Wrap a native booster; a classifying objective without labels gets ``0..k-1``."""
        objective, num_class = _header(booster.model_to_string(num_iteration=1))
        if classes is None:
            classes = _default_classes(objective, num_class)
        return cls(booster=booster, objective=objective, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray | None:
        """One probability column per class (as ``LGBMClassifier.predict_proba``), or None."""
        import numpy as np

        if self.classes is None:
            return None
        out = np.asarray(self.booster.predict(X))
        if out.ndim == 1:
            return np.vstack((1.0 - out, out)).transpose()
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (most probable class) for a classifier, else the booster's output."""
        import numpy as np

        proba = self.predict_proba(X)
        if proba is None or self.classes is None:
            return np.asarray(self.booster.predict(X))
        return np.asarray(np.asarray(self.classes)[np.argmax(proba, axis=1)])


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster`` and bare ``LGBMClassifier`` / ``LGBMRegressor`` models."""

    name = "lightgbm"
    extra = "lightgbm"
    cacheable = True

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` is a LightGBM Booster or one of :data:`WRAPPERS` (not a subclass)."""
        if module_of(model) != "lightgbm":
            return False
        import lightgbm

        return isinstance(model, lightgbm.Booster) or type(model).__name__ in WRAPPERS

    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """``model.txt`` and the kind and class labels.

        Raises:
            NotFittedError: A sklearn-API model that is not fitted.
        """
        import lightgbm

        if isinstance(model, lightgbm.Booster):
            text = model.model_to_string()
            return {MODEL_FILE: text.encode()}, {"kind": "booster"}
        if not model.__sklearn_is_fitted__():
            raise NotFittedError(
                f"the {type(model).__name__} is not fitted; call fit before saving it"
            )
        text = model.booster_.model_to_string()
        options: dict[str, Any] = {"kind": "sklearn", "class": type(model).__name__}
        regressor = type(model).__name__ == "LGBMRegressor"
        labels = None if regressor else getattr(model, "classes_", None)
        if labels is not None:
            options["classes"] = plain_labels(labels)
        return {MODEL_FILE: text.encode()}, options

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> LightGBMModel:
        """A :class:`LightGBMModel` built from the text model.

        Raises:
            InvalidStateError: LightGBM is missing or cannot read the model.
        """
        lightgbm = import_for("lightgbm", flavor=self.name, extra=self.extra)
        data = one_file(files, MODEL_FILE, flavor=self.name)
        try:
            text = data.decode()
            booster = lightgbm.Booster(model_str=text)
        except (UnicodeDecodeError, lightgbm.basic.LightGBMError) as exc:
            raise InvalidStateError(
                f"LightGBM {lightgbm.__version__} could not read the model ({exc}); install the "
                "lightgbm version in the model's requirements and try again",
                details={"flavor": self.name},
            ) from None
        objective, num_class = _header(text)
        labels = options.get("classes")
        classes = None if labels is None else tuple(labels)
        if classes is None and options.get("kind") == "booster":
            classes = _default_classes(objective, num_class)
        return LightGBMModel(booster=booster, objective=objective, classes=classes)

    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """LightGBM and NumPy."""
        return pinned("lightgbm", "numpy")

    def predict(self, native: Any, X: Any) -> np.ndarray:
        """:meth:`LightGBMModel.predict` (a bare Booster is wrapped first)."""
        return _wrap(native).predict(X)

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """:meth:`LightGBMModel.predict_proba` (None for regressors)."""
        return _wrap(native).predict_proba(X)

    def classes(self, native: Any) -> list[Any] | None:
        """The class labels, or None."""
        labels = _wrap(native).classes
        return None if labels is None else list(labels)


def _wrap(native: Any) -> LightGBMModel:
    return native if isinstance(native, LightGBMModel) else LightGBMModel.from_booster(native)


FLAVOR = LightGBMFlavor()
