"""Turning what a user passes as training or evaluation data into X, y and lineage.

``data`` may be a dataset reference (``"customers@train"``), a
:class:`~shipyard.data._catalog.Dataset`, a :class:`~shipyard.core.entities.DatasetVersion`
or a pandas DataFrame. Every check that can fail runs here, before any model is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import DatasetVersion
from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Features, target and where they came from.

    Attributes:
        X: the feature columns (every column but the target and the group column).
        y: the target.
        groups: the group column's values (for group-aware splits), or None.
        version: the dataset version read, or None for a DataFrame.
        label: how to name the data in runs and reports (``customers@3`` or ``DataFrame``).
    """

    X: pd.DataFrame
    y: pd.Series
    groups: pd.Series | None
    version: DatasetVersion | None
    label: str


def load_frame(data: Any) -> tuple[pd.DataFrame, DatasetVersion | None, str]:
    """The table ``data`` names, its dataset version (if any) and a label.

    Raises:
        InvalidInputError: ``data`` is neither a reference, a version nor a DataFrame.
        NotFoundError: the dataset or version does not exist.
    """
    import pandas as pd

    import shipyard.data as sy_data
    from shipyard.data._catalog import Dataset

    if isinstance(data, pd.DataFrame):
        return data, None, "DataFrame"
    if isinstance(data, DatasetVersion):
        data = data.ref
    if isinstance(data, str):
        data = sy_data.get(data)
    if isinstance(data, Dataset):
        return data.to_pandas(), data.version, data.ref
    raise InvalidInputError(
        f"data must be a dataset reference such as 'customers@train', a DatasetVersion or a "
        f"pandas DataFrame, got {type(data).__name__}"
    )


def split_target(
    frame: pd.DataFrame,
    target: str,
    *,
    label: str,
    group_column: str | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.Series, pd.Series | None]:
    """``(X, y, groups)`` from a table, with clear errors for missing columns.

    Raises:
        InvalidInputError: the target (or the group column) is not a column, or no
            feature column is left.
    """
    columns = [str(c) for c in frame.columns]
    for what, name in (("target", target), ("group column", group_column)):
        if name is not None and name not in frame.columns:
            shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
            raise InvalidInputError(
                f"{what} {name!r} is not a column of {label}; its columns are: {shown}"
            )
    y = frame[target]
    groups = frame[group_column] if group_column is not None else None
    dropped = [target, *(c for c in drop if c in frame.columns)]
    if group_column is not None:
        dropped.append(group_column)
    X = frame.drop(columns=dropped)
    if X.shape[1] == 0:
        raise InvalidInputError(
            f"{label} has no feature column besides the target {target!r}; add features"
        )
    return X, y, groups


def load_training_data(
    data: Any, target: str, *, group_column: str | None = None, drop: tuple[str, ...] = ()
) -> TrainingData:
    """Load ``data`` and split off ``target`` (and ``group_column``).

    Example::

        td = load_training_data("customers@train", "churn")
        td.X.shape, td.label
    """
    frame, version, label = load_frame(data)
    if len(frame) == 0:
        raise InvalidInputError(f"{label} has no rows to train on")
    X, y, groups = split_target(frame, target, label=label, group_column=group_column, drop=drop)
    return TrainingData(X=X, y=y, groups=groups, version=version, label=label)
