"""Model flavors: how each kind of model is saved to bytes and loaded back, safely.

A :class:`Flavor` turns a fitted model into named files (bytes) plus JSON-safe options,
and turns those bytes back into the native model, in memory, without ``pickle``.
The flavors shipped with shipyard are found by name in a registry and imported only
when first used, so ``import shipyard`` never imports scikit-learn, XGBoost or
LightGBM:

=========  ==========  ===============================================================
name       extra       models
=========  ==========  ===============================================================
pyfunc     (base)      a :class:`~shipyard.registry.flavors.pyfunc.PythonModel` subclass
xgboost    xgboost     ``xgboost.Booster``, a bare ``XGBClassifier`` / ``XGBRegressor``
lightgbm   lightgbm    ``lightgbm.Booster``, a bare ``LGBMClassifier`` / ``LGBMRegressor``
onnx       onnx        ONNX bytes or an ``onnx.ModelProto``
sklearn    (base)      any scikit-learn estimator or pipeline (saved with skops)
=========  ==========  ===============================================================

:func:`detect_flavor` asks them in that order, so a bare XGBoost classifier is saved
natively while a pipeline holding one goes to ``sklearn``.

Example:
    >>> get_flavor("sklearn").name
    'sklearn'
    >>> "onnx" in flavor_names()
    True
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, InvalidStateError

if TYPE_CHECKING:
    import numpy as np

# Built-in flavors, in detection order, by the module that defines ``FLAVOR``.
_BUILTIN: dict[str, str] = {
    "pyfunc": "shipyard.registry.flavors.pyfunc",
    "xgboost": "shipyard.registry.flavors.xgboost",
    "lightgbm": "shipyard.registry.flavors.lightgbm",
    "onnx": "shipyard.registry.flavors.onnx",
    "sklearn": "shipyard.registry.flavors.sklearn",
}
_REGISTERED: dict[str, Flavor] = {}


class Flavor(ABC):
    """How one kind of model is saved to bytes and loaded back from bytes.

    Subclasses set :attr:`name` and :attr:`extra` and implement the abstract methods.
    ``load`` receives the bytes in memory (already checked against their digests by
    :func:`shipyard.registry.model_folder.load_model_files`), never a path, and must
    not execute code stored in them (no ``pickle``).
    """

    name: str = ""
    """The flavor's registry name (stored in each model folder's metadata)."""
    extra: str = ""
    """The pip extra that installs what the flavor needs (``""``: shipyard's base install)."""
    cacheable: bool = False
    """Loaded models can be kept in memory and handed out as deep copies: True where a
    copy is cheap and independent (scikit-learn, XGBoost, LightGBM)."""

    @abstractmethod
    def accepts(self, model: Any) -> bool:
        """Whether this flavor can save ``model``; must not import heavy libraries needlessly."""

    @abstractmethod
    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The model as files (relative name -> bytes) and JSON-safe options."""

    @abstractmethod
    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> Any:
        """The native model from the bytes :meth:`save` produced (in memory)."""

    @abstractmethod
    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """Pinned ``package==version`` strings of what loading needs, as installed now.

        ``options`` (what :meth:`save` returned) lets a flavor add packages a particular
        model needs, such as XGBoost inside a scikit-learn pipeline.
        """

    @abstractmethod
    def predict(self, native: Any, X: Any) -> np.ndarray:
        """Predictions of the native model for ``X`` (a DataFrame or 2-D array)."""

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """Class probabilities (one column per class), or None if the model has none."""
        return None

    def classes(self, native: Any) -> list[Any] | None:
        """The class labels, in probability-column order, or None (regressors)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def register_flavor(flavor: Flavor) -> None:
    """Add (or replace) a flavor under ``flavor.name``.

    A flavor registered here is asked by :func:`detect_flavor` before the built-in ones.

    Args:
        flavor: A :class:`Flavor` instance with a non-empty ``name``.

    Raises:
        InvalidInputError: ``flavor`` is not a Flavor or has no name.

    Example:
        >>> register_flavor(get_flavor("sklearn"))
    """
    if not isinstance(flavor, Flavor):
        raise InvalidInputError(
            f"register_flavor expects a Flavor instance, got {type(flavor).__name__}; "
            "subclass shipyard.registry.flavors.Flavor"
        )
    if not isinstance(flavor.name, str) or not flavor.name:
        raise InvalidInputError(
            f"flavor {type(flavor).__name__} has no name; set the class attribute `name`"
        )
    _REGISTERED[flavor.name] = flavor


def flavor_names() -> list[str]:
    """Names of all known flavors: registered ones, then the built-in ones, in detection order.

    Returns:
        The names, each once.
    """
    extra = [n for n in _REGISTERED if n not in _BUILTIN]
    return [*extra, *_BUILTIN]


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (a built-in flavor's module is imported on first use).

    Args:
        name: A flavor name such as ``"sklearn"``.

    Returns:
        The :class:`Flavor`.

    Raises:
        InvalidInputError: No flavor has that name; the message lists the known ones.

    Example:
        >>> get_flavor("sklearn").extra
        ''
    """
    flavor = _REGISTERED.get(name)
    if flavor is not None:
        return flavor
    module = _BUILTIN.get(name) if isinstance(name, str) else None
    if module is None:
        raise InvalidInputError(
            f"unknown model flavor {name!r}; known flavors: {', '.join(flavor_names())}. "
            "Register a custom one with shipyard.registry.flavors.register_flavor",
            details={"flavor": str(name), "known": flavor_names()},
        )
    found = importlib.import_module(module).FLAVOR
    if not isinstance(found, Flavor):  # pragma: no cover - a broken built-in module
        raise InvalidStateError(f"{module}.FLAVOR is not a Flavor; reinstall shipyard")
    _REGISTERED[name] = found
    return found


def detect_flavor(model: Any) -> Flavor:
    """The first flavor (in :func:`flavor_names` order) that accepts ``model``.

    Args:
        model: A fitted model.

    Returns:
        The :class:`Flavor` to save it with.

    Raises:
        InvalidInputError: No flavor accepts it; the message names the type and the fix.
    """
    for name in flavor_names():
        flavor = get_flavor(name)
        if flavor.accepts(model):
            return flavor
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise InvalidInputError(
        f"no model flavor can save a {kind}; shipyard saves scikit-learn estimators and "
        "pipelines, XGBoost and LightGBM models, ONNX models, and subclasses of "
        "shipyard.registry.flavors.pyfunc.PythonModel. Wrap the model in a PythonModel "
        "subclass (see its docstring) or pass flavor=... explicitly",
        details={"type": kind, "known": flavor_names()},
    )


def import_for(module: str, *, flavor: str, extra: str) -> Any:
    """Import ``module`` for ``flavor``, or say which extra to install.

    Raises:
        InvalidStateError: The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'shipyard[{extra}]'" if extra else f"pip install {module}"
        raise InvalidStateError(
            f"the {flavor} model flavor needs the {module!r} package, which is not installed "
            f"({exc}); install it with: {hint}",
            details={"flavor": flavor, "module": module},
        ) from None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def pinned(*modules: str) -> list[str]:
    """``distribution==version`` for each installed top-level module (missing ones left out).

    The distribution is the one that installed the module (``xgboost`` may come from
    ``xgboost-cpu``), so the pins say exactly what this environment has.

    Example:
        >>> pinned("numpy")[0].startswith("numpy==")
        True
    """
    out: list[str] = []
    for module in modules:
        for dist in _distributions().get(module, [module])[:1]:
            try:
                out.append(f"{dist}=={importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                continue
    return sorted(set(out))


def plain_labels(labels: Any) -> list[Any]:
    """Class labels as JSON-safe Python values (numpy scalars unwrapped).

    Raises:
        InvalidInputError: A label is not a string, number or boolean.
    """
    import numpy as np

    out = []
    for label in np.asarray(labels).tolist():
        if not isinstance(label, (str, int, float, bool)):
            raise InvalidInputError(
                f"class label {label!r} ({type(label).__name__}) cannot be stored; use string, "
                "integer or boolean labels"
            )
        out.append(label)
    return out


def module_of(model: Any) -> str:
    """The top-level package of the model's class (``"xgboost"`` for ``XGBClassifier``)."""
    return type(model).__module__.split(".", 1)[0]


def one_file(files: Mapping[str, bytes], name: str, *, flavor: str) -> bytes:
    """``files[name]``, or an InvalidStateError saying the model folder is incomplete."""
    try:
        return files[name]
    except KeyError:
        raise InvalidStateError(
            f"the {flavor} model folder has no {name!r} (it has: {', '.join(sorted(files))}); "
            "the model was saved by another flavor or is incomplete: register it again",
            details={"flavor": flavor, "file": name},
        ) from None


__all__ = [
    "Flavor",
    "detect_flavor",
    "flavor_names",
    "get_flavor",
    "import_for",
    "module_of",
    "one_file",
    "pinned",
    "plain_labels",
    "register_flavor",
]
