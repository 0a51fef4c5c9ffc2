"""The scikit-learn flavor: any estimator or pipeline, saved with skops, never pickle.

skops refuses types it does not know unless told to trust them. shipyard trusts only
*classes* from the libraries its model families are built from (scikit-learn, NumPy,
SciPy, LightGBM, XGBoost), anything from shipyard's own training helpers, and
``collections.OrderedDict`` (LightGBM models hold one). A *function* from NumPy is not
trusted (a ``FunctionTransformer(numpy.load)`` would read files). A file that needs
anything else is refused, with the names.

Example:
    >>> from sklearn.linear_model import LinearRegression
    >>> flavor = FLAVOR
    >>> files, options = flavor.save(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]))
    >>> sorted(files)
    ['model.skops']
    >>> flavor.predict(flavor.load(files, options), [[2.0]]).round(6).tolist()
    [4.0]
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidStateError, NotFittedError
from shipyard.registry.flavors import Flavor, import_for, one_file, pinned, plain_labels

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "model.skops"
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "shipyard.training.")
TRUSTED_NAMES = frozenset({"collections.OrderedDict"})
# Packages whose types a pipeline may hold, each pinned in the requirements when it does.
_OPTIONAL_PACKAGES = ("lightgbm", "xgboost", "scipy")


def trusted_types(data: bytes) -> list[str]:
    """The types a skops file needs beyond skops' defaults, if shipyard trusts all of them.

    Args:
        data: The skops bytes.

    Returns:
        The type names to pass to ``skops.io.loads(data, trusted=...)``.

    Raises:
        InvalidStateError: Some type comes from elsewhere (the file may run other code);
            the message lists them.
    """
    import skops.io

    return check_trusted(list(skops.io.get_untrusted_types(data=data)))


def check_trusted(needed: list[str]) -> list[str]:
    """``needed`` if shipyard trusts every type in it (see :func:`trusted_types`).

    Raises:
        InvalidStateError: some type comes from elsewhere; the message lists them.
    """
    refused = sorted(t for t in needed if not _trusted(t))
    if refused:
        raise InvalidStateError(
            f"the scikit-learn model file needs types shipyard does not load unreviewed: "
            f"{', '.join(refused[:10])}{' ...' if len(refused) > 10 else ''}; shipyard trusts "
            f"only classes from {', '.join(m.rstrip('.') for m in TRUSTED_MODULES)}. Check "
            "them, then load the file yourself with skops.io.loads(data, trusted=[...])",
            details={"untrusted": refused},
        )
    return needed


def _resolve(name: str) -> Any:
    """The object a dotted name refers to (module, then attributes), or None."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr, None)
            if target is None:
                return None
        return target
    return None


def _trusted(name: str) -> bool:
    if name in TRUSTED_NAMES or name.startswith("shipyard.training."):
        return True
    return name.startswith(TRUSTED_MODULES) and isinstance(_resolve(name), type)


def _is_sklearn_estimator(model: Any) -> bool:
    if isinstance(model, type) or not any(
        c.__module__.startswith("sklearn.") for c in type(model).__mro__
    ):
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines (including XGBoost/LightGBM wrappers inside)."""

    name = "sklearn"
    extra = ""
    cacheable = True

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` is a scikit-learn estimator (an instance of ``BaseEstimator``)."""
        return _is_sklearn_estimator(model)

    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """``model.skops`` and the top-level packages its types come from.

        Raises:
            NotFittedError: The estimator is not fitted.
            InvalidStateError: It holds types shipyard would refuse to load.
        """
        import skops.io
        from sklearn.exceptions import NotFittedError as SklearnNotFitted
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except SklearnNotFitted:
            raise NotFittedError(
                f"the {type(model).__name__} is not fitted; call fit before saving it"
            ) from None
        data = skops.io.dumps(model)
        needed = trusted_types(data)  # refuse now what could not be loaded later
        packages = sorted({t.split(".", 1)[0] for t in needed} & set(_OPTIONAL_PACKAGES))
        # the types loading must trust, recorded now so a load need not walk the file twice
        options: dict[str, Any] = {"packages": packages, "trusted_types": sorted(needed)}
        labels = getattr(model, "classes_", None)
        if labels is not None:
            options["classes"] = plain_labels(labels)
        return {MODEL_FILE: data}, options

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> Any:
        """The estimator, with skops and only the trusted types.

        Raises:
            InvalidStateError: The file needs an untrusted type, or skops cannot read it.
        """
        skops_io = import_for("skops.io", flavor=self.name, extra=self.extra)
        data = one_file(files, MODEL_FILE, flavor=self.name)
        recorded = options.get("trusted_types")
        # skops still refuses any type outside the list; the list itself is checked against
        # the trust rules (it comes from metadata whose hash the registry checked)
        trusted = (
            check_trusted([str(t) for t in recorded])
            if isinstance(recorded, list)
            else trusted_types(data)
        )
        try:
            return skops_io.loads(data, trusted=trusted)
        except skops_io.exceptions.UntrustedTypesFoundException:
            # the file needs more than its metadata lists: walk it, refusing what shipyard
            # does not trust (the error names the types)
            return skops_io.loads(data, trusted=trusted_types(data))
        except (ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
            raise InvalidStateError(
                f"skops could not load the scikit-learn model ({type(exc).__name__}: {exc}); "
                "install the versions in the model's requirements and try again",
                details={"flavor": self.name},
            ) from None

    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """scikit-learn, skops, NumPy, plus whatever the saved pipeline holds."""
        extra = [str(p) for p in (options or {}).get("packages", [])]
        return pinned("sklearn", "skops", "numpy", *extra)

    def predict(self, native: Any, X: Any) -> np.ndarray:
        """``native.predict(X)`` as a NumPy array."""
        import numpy as np

        return np.asarray(native.predict(X))

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """``native.predict_proba(X)``, or None if the estimator has no probabilities."""
        import numpy as np

        if not hasattr(native, "predict_proba"):  # also False where it is unavailable
            return None
        return np.asarray(native.predict_proba(X))

    def classes(self, native: Any) -> list[Any] | None:
        """``native.classes_`` as a list, or None."""
        labels = getattr(native, "classes_", None)
        return None if labels is None else plain_labels(labels)


FLAVOR = SklearnFlavor()
