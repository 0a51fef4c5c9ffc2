"""The one exception tree every shipyard failure belongs to.

::

    ShipyardError                      code             http
    ├── NotFoundError                  NOT_FOUND         404
    ├── AlreadyExistsError             ALREADY_EXISTS    409
    ├── InvalidInputError (ValueError) INVALID_INPUT     400
    │   ├── FilterSyntaxError          FILTER_SYNTAX     400
    │   └── SchemaMismatchError        SCHEMA_MISMATCH   400
    ├── InvalidStateError              INVALID_STATE     409
    ├── NotFittedError                 NOT_FITTED        409
    ├── GateFailedError                GATE_FAILED       412
    ├── UnauthenticatedError           UNAUTHENTICATED   401
    ├── PermissionDeniedError          PERMISSION_DENIED 403
    └── StoreUnavailableError          STORE_UNAVAILABLE 503

Each class carries a stable ``code`` and ``http_status`` so that an error
raised by a server can be raised again, as the same class, by a client
(:func:`error_from_code`). A message says what was wrong, what was expected,
what was received and what to do next.
"""

from __future__ import annotations

from typing import Any


class ShipyardWarning(UserWarning):
    """Warnings shipyard emits (for example a run left RUNNING by a dead process)."""


class ShipyardError(Exception):
    """Root of every error shipyard raises on purpose."""

    code: str = "INTERNAL"
    http_status: int = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body a server answers with: ``{"error": {code, message, details}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFoundError(ShipyardError):
    """The named run, experiment, artifact or object does not exist."""

    code = "NOT_FOUND"
    http_status = 404


class AlreadyExistsError(ShipyardError):
    """Something with that name or key exists already (and differs)."""

    code = "ALREADY_EXISTS"
    http_status = 409


class InvalidInputError(ShipyardError, ValueError):
    """The caller passed a value shipyard cannot accept as it is."""

    code = "INVALID_INPUT"
    http_status = 400


class FilterSyntaxError(InvalidInputError):
    """A search filter or order-by clause does not parse; ``details`` has the position."""

    code = "FILTER_SYNTAX"
    http_status = 400


class SchemaMismatchError(InvalidInputError):
    """Data does not match the schema or signature it is checked against."""

    code = "SCHEMA_MISMATCH"
    http_status = 400


class InvalidStateError(ShipyardError):
    """The object is in a state that forbids the operation (e.g. logging to a finished run)."""

    code = "INVALID_STATE"
    http_status = 409


class NotFittedError(ShipyardError):
    """An estimator-like object was used before ``fit``."""

    code = "NOT_FITTED"
    http_status = 409


class GateFailedError(ShipyardError):
    """A promotion gate refused the change."""

    code = "GATE_FAILED"
    http_status = 412


class UnauthenticatedError(ShipyardError):
    """No credentials, or credentials that are not valid (a missing or unknown token)."""

    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDeniedError(ShipyardError):
    """The caller's identity may not do this."""

    code = "PERMISSION_DENIED"
    http_status = 403


class StoreUnavailableError(ShipyardError):
    """The metadata database or object store cannot be reached or is unusable."""

    code = "STORE_UNAVAILABLE"
    http_status = 503


_BY_CODE: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        ShipyardError,
        NotFoundError,
        AlreadyExistsError,
        InvalidInputError,
        FilterSyntaxError,
        SchemaMismatchError,
        InvalidStateError,
        NotFittedError,
        GateFailedError,
        UnauthenticatedError,
        PermissionDeniedError,
        StoreUnavailableError,
    )
}


def error_from_code(
    code: str, message: str, details: dict[str, Any] | None = None
) -> ShipyardError:
    """Rebuild the error class named by ``code`` (unknown codes give ``ShipyardError``)."""
    return _BY_CODE.get(code, ShipyardError)(message, details=details)
