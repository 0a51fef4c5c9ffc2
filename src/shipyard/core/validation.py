"""Checks on user input shared by the client, the stores and (later) the server.

Each check raises :class:`InvalidInputError` naming the value, the limit and the fix.
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re

from shipyard.core.errors import InvalidInputError

KEY_MAX = 250
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000
NAME_MAX = 250
ARTIFACT_PATH_MAX = 1024
_KEY_RE = re.compile(r"^[\w\-. /:]+$")


def check_key(key: object, *, what: str = "key") -> str:
    """A metric, param or tag key: 1-250 characters of letters, digits, ``_ - . / :`` or space."""
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} must be a string, got {type(key).__name__} {key!r}")
    if not key or len(key) > KEY_MAX:
        raise InvalidInputError(
            f"{what} {key[:60]!r}{'...' if len(key) > 60 else ''} has {len(key)} characters; "
            f"keys must have 1 to {KEY_MAX}"
        )
    if not _KEY_RE.match(key) or ".." in key.split("/") or key.startswith("/"):
        raise InvalidInputError(
            f"{what} {key!r} has characters that are not allowed; use letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes"
        )
    return key


def check_metric_value(key: str, value: object) -> float:
    """A real number. NaN and +/-inf are accepted (and stored as they are); text is not."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"metric {key!r} must be a real number, got {type(value).__name__} {value!r}; "
            "convert it with float() if it is numeric, or log it as a param or tag"
        )
    return float(value)


def check_step(key: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInputError(
            f"step of metric {key!r} must be an integer, got {type(step).__name__} {step!r}"
        )
    return int(step)


def check_timestamp(key: str, timestamp: object) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidInputError(
            f"timestamp of metric {key!r} must be integer milliseconds since the epoch, "
            f"got {timestamp!r}"
        )
    return int(timestamp)


def _stringify(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


def check_param_value(key: str, value: object) -> str:
    text = _stringify(value)
    if len(text) > PARAM_VALUE_MAX:
        raise InvalidInputError(
            f"param {key!r} has a value of {len(text)} characters; the limit is "
            f"{PARAM_VALUE_MAX}. Log long values as an artifact (sy.log_text / sy.log_dict)."
        )
    return text


def check_tag_value(key: str, value: object) -> str:
    text = _stringify(value)
    if len(text) > TAG_VALUE_MAX:
        raise InvalidInputError(
            f"tag {key!r} has a value of {len(text)} characters; the limit is {TAG_VALUE_MAX}"
        )
    return text


def check_name(name: object, *, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"{what} has {len(name)} characters; the limit is {NAME_MAX}")
    return name


_PLAIN_PATH = re.compile(r"(?:[^/\\\x00]+/)*[^/\\\x00]+")
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_normal_artifact_path(path: str) -> bool:
    """True when :func:`check_artifact_path` would accept ``path`` unchanged.

    The fast yes for manifests of 100,000 paths; False means "check it with
    :func:`check_artifact_path`" (for the error, or the normal form).
    """
    return (
        _PLAIN_PATH.fullmatch(path) is not None
        and len(path) <= ARTIFACT_PATH_MAX
        and bool(path.strip())
        and _DRIVE.match(path) is None
        and not {".", ".."}.intersection(path.split("/"))
    )


def check_artifact_path(path: object) -> str:
    """A relative POSIX path inside a run: no ``..``, no absolute path, no backslash.

    Returns the normalised path (``a//b/./c`` gives ``a/b/c``).
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(f"artifact path must be a non-empty string, got {path!r}")
    if "\\" in path or "\x00" in path:
        raise InvalidInputError(
            f"artifact path {path!r} contains a backslash or NUL; use forward slashes"
        )
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidInputError(
            f"artifact path {path!r} is absolute; give a path relative to the run, e.g. "
            "'plots/roc.png'"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidInputError(f"artifact path {path!r} goes outside the run with '..'; remove it")
    norm = posixpath.join(*parts) if parts else ""
    if not norm:
        raise InvalidInputError(f"artifact path {path!r} names no file")
    if len(norm) > ARTIFACT_PATH_MAX:
        raise InvalidInputError(
            f"artifact path has {len(norm)} characters; the limit is {ARTIFACT_PATH_MAX}"
        )
    return norm
