"""Alert rules: parse them from YAML and evaluate them on a monitor's observations.

A monitor measures each window of production traffic and produces
:class:`Observations`: dataset metrics (``drift_share``, ``accuracy``...) and column
metrics (``drifted``, ``missing_rate``...). Rules, written in YAML, say which
observations are worth an alert::

    rules:
      - name: dataset drift
        when: drift_share > 0.3          # "<metric> <op> <number>"
        severity: critical               # info | warning | critical (default warning)
        action: retrain                  # retrain | none (default none)
      - name: income drifted
        when: drifted                    # a yes/no column metric alone means "== 1"
        column: income                   # a column name, or "*" for every column
      - name: accuracy fell
        when: accuracy < 0.8
        for: 2                           # only when it held in the last 2 evaluations
    notify:
      - webhook: https://hooks.example.com/alerts
        headers: {Authorization: "Bearer xyz"}
        min_severity: warning
      - log

:func:`parse_rules` checks all of it and says where (rule, line) and how to fix what
it cannot accept. :func:`evaluate_rules` is pure: it turns observations (and the
previous ones, for ``for:``) into an :class:`Evaluation` of firing conditions, the
fingerprints of conditions that no longer hold, and the rules it could not evaluate
yet. Opening, de-duplicating and resolving alerts is the alert store's job.

Example::

    ruleset = parse_rules("- {name: drift, when: drift_share > 0.3}")
    result = evaluate_rules(ruleset, Observations(dataset={"drift_share": 0.4}))
    result.firing[0].message  # 'drift_share = 0.40 > 0.3'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from shipyard.core.errors import InvalidInputError
from shipyard.core.yamltext import load_yaml

# The metric vocabulary and the field checks live with the parser; the public names are
# re-exported here (see __all__).
from shipyard.monitoring._rules_parse import (
    _COMPARE,
    _WHEN_HELP,
    BOOLEAN_METRICS,
    COLUMN_METRICS,
    DATASET_METRICS,
    OPERATORS,
    PERFORMANCE_METRICS,
    _as_list,
    _check_choice,
    _check_column,
    _check_for,
    _check_headers,
    _check_metric,
    _check_name,
    _check_threshold,
    _check_timeout,
    _check_webhook_url,
    _fail,
    _format_number,
    _Locator,
    _parse_when,
    _Problem,
    _unknown_keys,
)

__all__ = [
    "ACTIONS",
    "ALL_COLUMNS",
    "BOOLEAN_METRICS",
    "COLUMN_METRICS",
    "DATASET_METRICS",
    "DEFAULT_RULES",
    "OPERATORS",
    "PERFORMANCE_METRICS",
    "SEVERITIES",
    "Evaluation",
    "Firing",
    "NotifySpec",
    "Observations",
    "Rule",
    "RuleSet",
    "alert_fingerprint",
    "evaluate_rules",
    "parse_rules",
    "severity_rank",
]

SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("none", "retrain")
ALL_COLUMNS = "*"
NOTIFY_KINDS = ("webhook", "log")

RULE_KEYS = ("name", "when", "column", "severity", "action", "for")
TOP_LEVEL_KEYS = ("rules", "notify")
WEBHOOK_KEYS = ("webhook", "headers", "min_severity", "timeout_s")
LOG_KEYS = ("log", "min_severity")


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (info 0, warning 1, critical 2).

    Raises:
        InvalidInputError: ``severity`` is not one of :data:`SEVERITIES`.
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise InvalidInputError(
            f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}"
        ) from None


def alert_fingerprint(rule_name: str, column: str | None = None) -> str:
    """The stable identity of one condition: ``"<rule name>|<column or empty>"``."""
    return f"{rule_name}|{column or ''}"


# ------------------------------------------------------------------------ entities


@dataclass(frozen=True)
class Rule:
    """One alert rule: ``<metric> <op> <threshold>``, for a column or the whole dataset.

    Build rules with :func:`parse_rules`; constructing one directly checks it the same way.

    Attributes:
        name: unique within its rule set; part of every alert's fingerprint.
        metric: one of :data:`DATASET_METRICS` or :data:`COLUMN_METRICS`.
        op: one of :data:`OPERATORS`.
        threshold: the number the metric is compared with.
        severity: one of :data:`SEVERITIES`.
        column: a column name or ``"*"`` for column metrics, ``None`` for dataset ones.
        action: ``"none"`` or ``"retrain"``.
        for_windows: how many evaluations in a row the condition must hold to fire.

    Raises:
        InvalidInputError: a field is not acceptable (the message says which and why).
    """

    name: str
    metric: str
    op: str
    threshold: float
    severity: str = "warning"
    column: str | None = None
    action: str = "none"
    for_windows: int = 1

    def __post_init__(self) -> None:
        try:
            _check_name(self.name)
            _check_metric(self.metric)
            if self.op not in _COMPARE:
                raise _Problem("when", f"unknown op {self.op!r}; use one of {' '.join(OPERATORS)}")
            object.__setattr__(self, "threshold", _check_threshold(self.threshold))
            object.__setattr__(self, "column", _check_column(self.metric, self.column))
            object.__setattr__(
                self, "severity", _check_choice("severity", self.severity, SEVERITIES)
            )
            object.__setattr__(self, "action", _check_choice("action", self.action, ACTIONS))
            object.__setattr__(self, "for_windows", _check_for(self.for_windows))
        except _Problem as problem:
            raise InvalidInputError(
                f"rule {self.name!r}: {problem.message}", details={"rule": self.name}
            ) from None

    @property
    def when(self) -> str:
        """The condition as written in YAML, e.g. ``"drift_share > 0.3"``."""
        return f"{self.metric} {self.op} {_format_number(self.threshold)}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` of the rule's metric satisfies the condition."""
        return _COMPARE[self.op](value, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """The rule as YAML-style data (:func:`parse_rules` reads it back)."""
        data: dict[str, Any] = {"name": self.name, "when": self.when}
        if self.column is not None:
            data["column"] = self.column
        data["severity"] = self.severity
        data["action"] = self.action
        data["for"] = self.for_windows
        return data


@dataclass(frozen=True)
class NotifySpec:
    """Where alert events go: a webhook (``url``) or the log.

    ``headers`` (often a secret token) is left out of ``repr`` so that it never reaches
    a log line by accident.
    """

    kind: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    min_severity: str = "info"
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", _check_choice("notifier", self.kind, NOTIFY_KINDS))
            if self.kind == "webhook":
                _check_webhook_url(self.url)
            elif self.url is not None:
                raise _Problem("log", "a log notifier takes no url")
            object.__setattr__(self, "headers", _check_headers(self.headers))
            min_severity = _check_choice("min_severity", self.min_severity, SEVERITIES)
            object.__setattr__(self, "min_severity", min_severity)
            object.__setattr__(self, "timeout_s", _check_timeout(self.timeout_s))
        except _Problem as problem:
            raise InvalidInputError(f"notifier {self.kind!r}: {problem.message}") from None

    def to_dict(self) -> dict[str, Any]:
        """The notifier as YAML-style data, headers included (store it as a secret)."""
        if self.kind == "log":
            return {"log": True, "min_severity": self.min_severity}
        return {
            "webhook": self.url,
            "headers": dict(self.headers),
            "min_severity": self.min_severity,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class RuleSet:
    """A monitor's alert rules and the notifiers its alert events go to."""

    rules: tuple[Rule, ...] = ()
    notify: tuple[NotifySpec, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise InvalidInputError(
                    f"two rules are named {rule.name!r}; rule names identify alerts, "
                    "so make them unique",
                    details={"rule": rule.name},
                )
            seen.add(rule.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data that :meth:`from_dict` (or :func:`parse_rules`) reads back."""
        return {
            "rules": [rule.to_dict() for rule in self.rules],
            "notify": [spec.to_dict() for spec in self.notify],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Rebuild a rule set from :meth:`to_dict` output, checking it like YAML.

        Raises:
            InvalidInputError: ``data`` is not a valid rule set.
        """
        return parse_rules(data, origin="stored rules")


@dataclass(frozen=True)
class Observations:
    """What a monitor measured on one window: dataset metrics and per-column metrics."""

    dataset: Mapping[str, float] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    """A rule whose condition holds (for one column, for column rules)."""

    rule: Rule
    column: str | None
    value: float
    fingerprint: str
    message: str


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate_rules`.

    Attributes:
        firing: conditions that hold (for ``for:`` rules: held long enough).
        clear: fingerprints of conditions evaluated and not holding; open alerts with
            these fingerprints may be resolved.
        unknown: names of rules whose metric was absent or NaN (e.g. ``accuracy`` before
            labels arrive); they neither fire nor clear.
        pending: fingerprints of conditions that hold now but not yet for as many
            evaluations as their rule's ``for:`` asks; they neither fire nor clear.
    """

    firing: tuple[Firing, ...]
    clear: tuple[str, ...]
    unknown: tuple[str, ...]
    pending: tuple[str, ...] = ()


# ------------------------------------------------------------------------- parsing


def _parse_rule(index: int, raw: object, lines: _Locator, origin: str) -> Rule:
    name: str | None = None
    try:
        if not isinstance(raw, Mapping):
            raise _Problem(
                None,
                f"must be a mapping with at least `name` and `when`, got {raw!r}; write e.g. "
                "`- {name: dataset drift, when: drift_share > 0.3}`",
            )
        if isinstance(raw.get("name"), str):
            name = raw["name"]
        _unknown_keys(raw, RULE_KEYS)
        if "name" not in raw:
            raise _Problem(None, "has no `name`; give every rule a unique name")
        name = _check_name(raw["name"])
        if "when" not in raw:
            raise _Problem(None, f"has no `when`; {_WHEN_HELP}")
        metric, op, threshold = _parse_when(raw["when"])
        column = _check_column(metric, raw.get("column"))
        severity = _check_choice("severity", raw.get("severity", "warning"), SEVERITIES)
        action = _check_choice("action", raw.get("action", "none"), ACTIONS)
        for_windows = _check_for(raw.get("for", 1))
    except _Problem as problem:
        label = f"rule {index + 1}" + (f" {name!r}" if name else "")
        path: tuple[str | int, ...] = ("rules", index)
        if problem.key is not None:
            path = (*path, problem.key)
        raise _fail(
            origin,
            label,
            lines.line(*path),
            problem.message,
            {"rule_number": index + 1, "rule": name, "field": problem.key},
        ) from None
    return Rule(
        name=name,
        metric=metric,
        op=op,
        threshold=threshold,
        severity=severity,
        column=column,
        action=action,
        for_windows=for_windows,
    )


def _parse_notify(index: int, raw: object, lines: _Locator, origin: str) -> NotifySpec:
    kind: str | None = None
    try:
        if isinstance(raw, str) and raw.strip() == "log":
            return NotifySpec(kind="log")
        if not isinstance(raw, Mapping):
            raise _Problem(
                None,
                f"unknown notifier {raw!r}; write `- log` or `- webhook: https://...`",
            )
        kinds = [k for k in NOTIFY_KINDS if k in raw]
        if len(kinds) != 1:
            raise _Problem(
                None,
                "needs exactly one of `webhook: <url>` or `log`, "
                f"got keys {', '.join(map(str, raw)) or 'none'}",
            )
        kind = kinds[0]
        _unknown_keys(raw, WEBHOOK_KEYS if kind == "webhook" else LOG_KEYS)
        min_severity = _check_choice("min_severity", raw.get("min_severity", "info"), SEVERITIES)
        if kind == "log":
            if raw["log"] not in (None, True):
                raise _Problem("log", "`log` takes no value; write `- log`")
            return NotifySpec(kind="log", min_severity=min_severity)
        return NotifySpec(
            kind="webhook",
            url=_check_webhook_url(raw["webhook"]),
            headers=_check_headers(raw.get("headers")),
            min_severity=min_severity,
            timeout_s=_check_timeout(raw.get("timeout_s", 5.0)),
        )
    except _Problem as problem:
        label = f"notify entry {index + 1}" + (f" ({kind})" if kind else "")
        path: tuple[str | int, ...] = ("notify", index)
        if problem.key is not None:
            path = (*path, problem.key)
        raise _fail(
            origin,
            label,
            lines.line(*path),
            problem.message,
            {"notify_number": index + 1, "field": problem.key},
        ) from None


def parse_rules(
    source: str | Mapping[str, Any] | Sequence[Any], *, origin: str = "rules"
) -> RuleSet:
    """Read and check alert rules from YAML text or from already-loaded data.

    Args:
        source: YAML text; or a mapping with ``rules`` (and optionally ``notify``); or
            just the list of rules.
        origin: what to call the source in messages, e.g. the file name.

    Returns:
        The checked :class:`RuleSet`.

    Raises:
        InvalidInputError: the YAML does not parse, or a rule or notifier is malformed.
            The message names the rule (number and name), the YAML line when known,
            what was wrong and the accepted values; ``details`` has the same as fields.

    Example::

        parse_rules("rules:\\n  - {name: drift, when: drift_share > 0.3}\\n", origin="a.yaml")
    """
    node: yaml.Node | None = None
    data: Any = source
    if isinstance(source, str):
        data, node = load_yaml(source, origin)
    if data is None:
        raise InvalidInputError(
            f"{origin} is empty; write a `rules:` list such as "
            "`rules: [{name: drift, when: drift_share > 0.3}]`",
            details={"origin": origin},
        )
    lines = _Locator(node, rules_at_root=not isinstance(data, Mapping))
    if isinstance(data, Mapping):
        unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
        if unknown:
            line = lines.line(str(unknown[0]))
            raise InvalidInputError(
                f"{origin}{f' (line {line})' if line else ''}: unknown top-level key "
                f"{unknown[0]!r}; allowed keys: {', '.join(TOP_LEVEL_KEYS)}",
                details={"origin": origin, "line": line},
            )
        if "rules" not in data:
            raise InvalidInputError(
                f"{origin} has no `rules:` list; add one, e.g. "
                "`rules: [{name: drift, when: drift_share > 0.3}]`",
                details={"origin": origin},
            )
        raw_rules = _as_list(data["rules"], "rules", origin, lines.line("rules"))
        raw_notify = _as_list(data.get("notify"), "notify", origin, lines.line("notify"))
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        raw_rules, raw_notify = data, ()
    else:
        hint = (
            " (if it is a file path, read the file and pass its text)"
            if isinstance(data, str)
            else ""
        )
        raise InvalidInputError(
            f"{origin} must be a mapping with `rules:` (and optionally `notify:`) or a list "
            f"of rules, got {type(data).__name__} {str(data)[:80]!r}{hint}",
            details={"origin": origin},
        )

    rules: list[Rule] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        rule = _parse_rule(index, raw, lines, origin)
        if rule.name in first_index:
            raise _fail(
                origin,
                f"rule {index + 1} {rule.name!r}",
                lines.line("rules", index, "name"),
                f"has the same name as rule {first_index[rule.name] + 1}; rule names "
                "identify alerts, so make them unique",
                {"rule_number": index + 1, "rule": rule.name, "field": "name"},
            )
        first_index[rule.name] = index
        rules.append(rule)
    notify = tuple(_parse_notify(index, raw, lines, origin) for index, raw in enumerate(raw_notify))
    return RuleSet(rules=tuple(rules), notify=notify)


DEFAULT_RULES = RuleSet(
    rules=(
        Rule("dataset drift", "drift_share", ">", 0.5, severity="critical"),
        Rule("column drifted", "drifted", "==", 1.0, severity="warning", column=ALL_COLUMNS),
        Rule("prediction drift", "prediction_drift", "==", 1.0, severity="warning"),
        Rule("missing values", "missing_rate", ">", 0.2, severity="warning", column=ALL_COLUMNS),
        Rule("dropped predictions", "prediction_log_drops", ">", 0.0, severity="warning"),
    ),
    notify=(NotifySpec(kind="log"),),
)
"""The rules a monitor uses when it was given none (alert events go to the log)."""


# ---------------------------------------------------------------------- evaluation


def _number(value: object, metric: str) -> float | None:
    """A metric value as a float; ``None`` when absent or NaN."""
    if value is None:
        return None
    if not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"observation {metric!r} must be a number, got {type(value).__name__} {value!r}; "
            "the monitor should record numbers (NaN when unknown)"
        )
    number = float(value)
    return None if math.isnan(number) else number


def _observed(observations: Observations, metric: str, column: str | None) -> float | None:
    if column is None:
        return _number(observations.dataset.get(metric), metric)
    return _number(observations.columns.get(column, {}).get(metric), f"{column}.{metric}")


def _targets(rule: Rule, observations: Observations) -> list[tuple[str | None, float]]:
    """The (column, value) pairs the rule is evaluated on; empty when its metric is absent."""
    if rule.column != ALL_COLUMNS:
        value = _observed(observations, rule.metric, rule.column)
        return [] if value is None else [(rule.column, value)]
    targets: list[tuple[str | None, float]] = []
    for column in observations.columns:
        value = _observed(observations, rule.metric, column)
        if value is not None:
            targets.append((column, value))
    return targets


def _held_before(rule: Rule, column: str | None, history: Sequence[Observations]) -> bool:
    """Whether the condition held in each of the last ``for_windows - 1`` evaluations."""
    needed = rule.for_windows - 1
    if needed == 0:
        return True
    if len(history) < needed:
        return False
    for past in history[-needed:]:
        value = _observed(past, rule.metric, column)
        if value is None or not rule.holds(value):
            return False
    return True


def _format_value(rule: Rule, value: float) -> str:
    """The shortest readable form of ``value`` that compares to the threshold as it does."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    candidates = [f"{value:.2f}"] if 0.01 <= abs(value) < 1e6 else []
    candidates += [f"{value:.{digits}g}" for digits in range(3, 18)]
    for text in candidates:
        if rule.holds(float(text)) == rule.holds(value) and float(text) != 0.0:
            return text
    return repr(value)


def _message(rule: Rule, column: str | None, value: float) -> str:
    prefix = "" if column is None else f"column {column!r}: "
    if rule.metric in BOOLEAN_METRICS and rule.op == "==" and rule.threshold == 1.0:
        text = f"{prefix}{rule.metric} = 1"
    else:
        text = (
            f"{prefix}{rule.metric} = {_format_value(rule, value)} {rule.op} "
            f"{_format_number(rule.threshold)}"
        )
    if rule.for_windows > 1:
        text += f" for {rule.for_windows} evaluations"
    return text


def evaluate_rules(
    rules: RuleSet,
    observations: Observations,
    *,
    history: Sequence[Observations] = (),
) -> Evaluation:
    """Which rules' conditions hold on ``observations``.

    Args:
        rules: the rule set (see :func:`parse_rules`).
        observations: the current window's metrics.
        history: previous evaluations' observations, most recent last; ``for: N`` rules
            fire only when their condition also held in the last ``N - 1`` of them.

    Returns:
        An :class:`Evaluation`. A metric that is absent or NaN makes its rule
        ``unknown`` (neither firing nor clearing). A ``column: "*"`` rule is evaluated
        on every column that has the metric, giving one firing or clear fingerprint per
        column.

    Raises:
        InvalidInputError: an observation is not a number.

    Example::

        result = evaluate_rules(DEFAULT_RULES, Observations(dataset={"drift_share": 0.7}))
        [f.fingerprint for f in result.firing]  # ['dataset drift|']
    """
    firing: list[Firing] = []
    clear: list[str] = []
    unknown: list[str] = []
    pending: list[str] = []
    for rule in rules.rules:
        targets = _targets(rule, observations)
        if not targets:
            unknown.append(rule.name)
            continue
        for column, value in targets:
            fingerprint = alert_fingerprint(rule.name, column)
            if not rule.holds(value):
                clear.append(fingerprint)
            elif not _held_before(rule, column, history):
                pending.append(fingerprint)
            else:
                firing.append(
                    Firing(
                        rule=rule,
                        column=column,
                        value=value,
                        fingerprint=fingerprint,
                        message=_message(rule, column, value),
                    )
                )
    return Evaluation(
        firing=tuple(firing), clear=tuple(clear), unknown=tuple(unknown), pending=tuple(pending)
    )
