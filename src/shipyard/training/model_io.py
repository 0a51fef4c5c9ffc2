"""Loading a model a training run logged, safely.

The model file is read through the object store, which checks its BLAKE3 hash, and
loaded with skops, never pickle. skops refuses types it does not know unless told
to trust them; shipyard trusts only *classes* from the libraries its model families
are built from (scikit-learn, NumPy, SciPy, LightGBM, XGBoost), and *functions* only
from shipyard's own training helpers (a ``FunctionTransformer`` may name a function:
``numpy.load`` would read files). A file that needs anything else is refused, with
the names.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidStateError

if TYPE_CHECKING:
    from shipyard.tracking.tracker import Tracker

MODEL_FILE = "model/model.skops"
META_FILE = "model/model.json"
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "shipyard.training.")
TRUSTED_NAMES = frozenset({"collections.OrderedDict"})  # LightGBM models hold one


def trusted_types(data: bytes) -> list[str]:
    """The types a skops file needs that skops does not trust by default, if all of them
    come from :data:`TRUSTED_MODULES` (or are one of :data:`TRUSTED_NAMES`).

    Raises:
        InvalidStateError: some type comes from elsewhere (the file may run other code).
    """
    import skops.io

    needed = list(skops.io.get_untrusted_types(data=data))
    refused = [t for t in needed if not _trusted(t)]
    if refused:
        raise InvalidStateError(
            f"the model file needs types shipyard does not load unreviewed: "
            f"{', '.join(sorted(refused)[:10])}; load it yourself with skops.io.loads after "
            "checking them"
        )
    return needed


def _resolve(name: str) -> Any:
    """The object a dotted name refers to (module, then attributes), or None."""
    import importlib

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


def load_run_model(tracker: Tracker, run_id: str) -> tuple[Any, dict[str, Any]]:
    """The model a run logged (``model/model.skops``) and its ``model/model.json``.

    Raises:
        NotFoundError: the run has no model.
        CorruptObjectError: the file's bytes do not match their hash.
        InvalidStateError: the file needs types outside :data:`TRUSTED_MODULES`.
    """
    import skops.io

    meta = json.loads(tracker.load_artifact(run_id, META_FILE))
    data = tracker.load_artifact(run_id, MODEL_FILE)  # hash-checked by the object store
    return skops.io.loads(data, trusted=trusted_types(data)), meta
