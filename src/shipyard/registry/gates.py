"""Promotion policies (YAML, per model and alias) and the gates they name.

A policy maps alias names to the gates a version must pass to take that alias::

    production:
      min_metrics: {valid_roc_auc: 0.95}        # the version's recorded metrics
      max_metrics: {valid_brier_score: 0.1}
      beat_champion: {data: cancer@test, metric: roc_auc, margin: 0.002}
      validate_data: {data: cancer@test}        # the dataset passes its expectations
      signature_compatible: true                # accepts what the current holder accepts
      approval: {approvers: 1}                  # approvals by users with the approver role
    staging:
      min_metrics: {valid_roc_auc: 0.9}

``"*"`` holds gates for every alias without its own entry. Each gate gives a result
``{"gate", "passed", "detail", ...}``; ``beat_champion`` also stores both scores.
Gates that need models evaluated or data validated get that work from a
:class:`GateContext` the caller provides (the registry decides, training measures).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.core.entities import ModelVersion
from shipyard.core.errors import InvalidInputError

GATES = (
    "min_metrics",
    "max_metrics",
    "beat_champion",
    "validate_data",
    "signature_compatible",
    "approval",
)
_OPTIONS: dict[str, tuple[set[str], set[str]]] = {  # gate -> (required, optional) options
    "beat_champion": ({"data", "metric"}, {"margin", "target"}),
    "validate_data": ({"data"}, {"expectations"}),
    "approval": (set(), {"approvers"}),
}
DEFAULT_ALIAS = "*"


def parse_policy(text_or_data: str | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a policy (YAML text or its data) and return it normalised.

    Raises:
        InvalidInputError: not a mapping of aliases to gates, an unknown gate or option,
            a threshold that is not a number. The message names the place and the fix.
    """
    import yaml

    if isinstance(text_or_data, str):
        try:
            data = yaml.safe_load(text_or_data)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"the policy is not valid YAML: {exc}") from None
    else:
        data = text_or_data
    if not isinstance(data, Mapping) or not data:
        raise InvalidInputError(
            "a policy maps alias names to their gates, e.g. 'production: {min_metrics: "
            "{valid_roc_auc: 0.9}}'"
        )
    policy: dict[str, dict[str, Any]] = {}
    for alias, gates in data.items():
        where = f"policy for alias {alias!r}"
        if not isinstance(alias, str) or not alias:
            raise InvalidInputError(f"policy keys are alias names, got {alias!r}")
        if not isinstance(gates, Mapping):
            raise InvalidInputError(f"{where}: expected a mapping of gates, got {gates!r}")
        policy[alias] = {name: _parse_gate(name, value, where) for name, value in gates.items()}
    return policy


def _parse_gate(name: str, value: Any, where: str) -> Any:
    if name not in GATES:
        import difflib

        close = difflib.get_close_matches(str(name), GATES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInputError(
            f"{where}: unknown gate {name!r}{hint}; the gates are {', '.join(GATES)}"
        )
    if name in ("min_metrics", "max_metrics"):
        if not isinstance(value, Mapping) or not value:
            raise InvalidInputError(f"{where}: {name} maps metric names to numbers")
        out = {}
        for metric, bound in value.items():
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise InvalidInputError(f"{where}: {name}.{metric} must be a number, got {bound!r}")
            out[str(metric)] = float(bound)
        return out
    if name == "signature_compatible":
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where}: signature_compatible is true or false")
        return value
    if value is None and name == "approval":
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where}: {name} takes options, e.g. {{data: cancer@test}}")
    required, optional = _OPTIONS[name]
    unknown = set(value) - required - optional
    if unknown:
        raise InvalidInputError(
            f"{where}: gate {name} has unknown option(s) {', '.join(sorted(map(str, unknown)))}; "
            f"it takes {', '.join(sorted(required | optional))}"
        )
    missing = required - set(value)
    if missing:
        raise InvalidInputError(f"{where}: gate {name} needs {', '.join(sorted(missing))}")
    out = dict(value)
    if name == "beat_champion":
        margin = out.get("margin", 0.0)
        if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
            raise InvalidInputError(f"{where}: beat_champion.margin is a number >= 0")
        out["margin"] = float(margin)
    if name == "approval":
        count = out.get("approvers", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInputError(f"{where}: approval.approvers is a whole number >= 1")
        out["approvers"] = count
    return out


def gates_for(policy: Mapping[str, Any] | None, alias: str) -> dict[str, Any]:
    """The gates ``alias`` must pass under ``policy`` (none without a policy)."""
    if not policy:
        return {}
    return dict(policy.get(alias, policy.get(DEFAULT_ALIAS, {})))


@dataclass(frozen=True)
class GateContext:
    """What the gates need from outside the registry.

    Attributes:
        champion: the version holding the alias now, or None.
        score: ``score(version, data_ref, metric, target) -> float`` evaluates a version
            on a dataset (greater is better, scikit-learn scorer names).
        validate: ``validate(data_ref, expectations) -> (passed, summary)``.
        approvals: ``approvals() -> [(approver, role)]`` for this version and alias.
        compatibility: ``compatibility(old_signature, new_signature) -> problems``.
    """

    champion: ModelVersion | None
    score: Callable[[ModelVersion, str, str, str | None], float]
    validate: Callable[[str, str | None], tuple[bool, str]]
    approvals: Callable[[], list[tuple[str, str]]]
    compatibility: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]


def check_gates(
    version: ModelVersion, gates: Mapping[str, Any], context: GateContext
) -> list[dict[str, Any]]:
    """Run each gate; a gate that cannot run (no such dataset, say) fails with the reason."""
    from shipyard.core.errors import ShipyardError

    results = []
    for name, options in gates.items():
        try:
            result = _RUNNERS[name](version, options, context)
        except (
            ShipyardError,
            ValueError,
            TypeError,
            KeyError,
        ) as exc:  # a gate that cannot run fails
            result = {"passed": False, "detail": f"could not run: {exc}"}
        results.append({"gate": name, **result})
    return results


def _metric_gate(
    version: ModelVersion, bounds: Mapping[str, float], *, low: bool
) -> dict[str, Any]:
    failures, checked = [], {}
    for metric, bound in bounds.items():
        value = version.metrics.get(metric)
        if value is None or math.isnan(value):
            known = ", ".join(sorted(version.metrics)[:12]) or "none"
            failures.append(f"{metric} is not recorded for {version.ref} (it has: {known})")
            continue
        checked[metric] = value
        if (value < bound) if low else (value > bound):
            op = ">=" if low else "<="
            failures.append(f"{metric} = {value:.4g}, needs {op} {bound:.4g}")
    if failures:
        return {"passed": False, "detail": "; ".join(failures), "values": checked}
    shown = ", ".join(f"{k} = {v:.4g}" for k, v in checked.items())
    return {"passed": True, "detail": shown, "values": checked}


def _min_metrics(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    return _metric_gate(version, options, low=True)


def _max_metrics(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    return _metric_gate(version, options, low=False)


def _beat_champion(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    champion = context.champion
    data, metric, margin = options["data"], options["metric"], options["margin"]
    target = options.get("target")
    challenger_score = context.score(version, data, metric, target)
    if champion is None:
        return {
            "passed": True, "detail": f"no current holder; {metric} = {challenger_score:.4g}",
            "challenger": challenger_score, "champion": None, "data": data, "metric": metric,
        }  # fmt: skip
    if champion.version == version.version:
        return {"passed": True, "detail": f"{version.ref} holds the alias already"}
    champion_score = context.score(champion, data, metric, target)
    passed = challenger_score >= champion_score + margin
    verb = "beats" if passed else "does not beat"
    return {
        "passed": bool(passed),
        "detail": (
            f"{version.ref} {verb} {champion.ref} on {data}: {metric} {challenger_score:.4g} "
            f"vs {champion_score:.4g} (margin {margin:g})"
        ),
        "challenger": challenger_score, "champion": champion_score,
        "champion_version": champion.version, "data": data, "metric": metric, "margin": margin,
    }  # fmt: skip


def _validate_data(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    passed, summary = context.validate(options["data"], options.get("expectations"))
    return {"passed": passed, "detail": summary, "data": options["data"]}


def _signature(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    if not options:
        return {"passed": True, "detail": "not required"}
    champion = context.champion
    if champion is None or champion.version == version.version:
        return {"passed": True, "detail": "no other holder to stay compatible with"}
    if champion.signature is None or version.signature is None:
        missing = champion.ref if version.signature is not None else version.ref
        return {"passed": False, "detail": f"{missing} has no signature to compare"}
    problems = context.compatibility(champion.signature, version.signature)
    if problems:
        return {"passed": False, "detail": f"incompatible with {champion.ref}: "
                + "; ".join(problems)}  # fmt: skip
    return {"passed": True, "detail": f"accepts every input {champion.ref} accepts"}


def _approval(version: ModelVersion, options: Any, context: GateContext) -> dict[str, Any]:
    needed = options.get("approvers", 1)
    valid = sorted({name for name, role in context.approvals() if role in ("approver", "admin")})
    if len(valid) >= needed:
        return {"passed": True, "detail": f"approved by {', '.join(valid)}", "approvers": valid}
    return {
        "passed": False,
        "detail": (
            f"{len(valid)} of {needed} approval(s) by an approver; one runs `shipyard models "
            f"approve {version.name} {version.version} --alias ALIAS`"
        ),
        "approvers": valid,
    }


_RUNNERS: dict[str, Callable[[ModelVersion, Any, GateContext], dict[str, Any]]] = {
    "min_metrics": _min_metrics,
    "max_metrics": _max_metrics,
    "beat_champion": _beat_champion,
    "validate_data": _validate_data,
    "signature_compatible": _signature,
    "approval": _approval,
}
