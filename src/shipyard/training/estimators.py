"""Small scikit-learn estimators the model families need.

:class:`LabelEncodedClassifier` lets a classifier that only takes labels ``0..k-1``
(XGBoost) train on any labels: strings, booleans, or integers that do not start at
zero. It is a module-level class so skops can save and load it (and shipyard's
loader trusts classes from ``shipyard.training``).
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, clone


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fit ``estimator`` on labels encoded as ``0..k-1``; predict the original labels.

    Args:
        estimator: the classifier to wrap (cloned on fit).

    Example::

        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = LabelEncodedClassifier(LogisticRegression()).fit(X, ["no", "no", "yes", "yes"])
        >>> clf.classes_.tolist(), clf.predict(X).tolist()
        (['no', 'yes'], ['no', 'no', 'yes', 'yes'])
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:
        import numpy as np

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator_ = clone(self.estimator).fit(X, codes, **fit_params)
        return self

    def predict(self, X: Any) -> Any:
        import numpy as np

        return self.classes_[np.asarray(self.estimator_.predict(X), dtype=int)]

    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self) -> Any:
        return self.estimator_.feature_importances_
