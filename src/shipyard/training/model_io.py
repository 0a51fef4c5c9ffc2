"""Loading a model a training run logged, safely.

The model file is read through the object store, which checks its BLAKE3 hash, and
loaded with skops, never pickle. skops refuses types it does not know unless told
to trust them; shipyard trusts only types from the libraries its model families are
built from (scikit-learn, NumPy, SciPy, LightGBM, XGBoost and shipyard's own
training helpers) and refuses a file that needs anything else, naming the types.
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
    refused = [t for t in needed if not t.startswith(TRUSTED_MODULES) and t not in TRUSTED_NAMES]
    if refused:
        raise InvalidStateError(
            f"the model file needs types shipyard does not load unreviewed: "
            f"{', '.join(sorted(refused)[:10])}; load it yourself with skops.io.loads after "
            "checking them"
        )
    return needed


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
