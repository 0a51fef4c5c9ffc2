"""Alert rules: parsing (and its error messages) and evaluation on observations."""

from __future__ import annotations

import json
import math

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.rules import (
    COLUMN_METRICS,
    DATASET_METRICS,
    DEFAULT_RULES,
    NotifySpec,
    Observations,
    Rule,
    RuleSet,
    alert_fingerprint,
    evaluate_rules,
    parse_rules,
)

EXAMPLE = """\
rules:
  - name: dataset drift
    when: drift_share > 0.3          # "<metric> <op> <number>", op in > >= < <= == !=
    severity: critical               # info | warning | critical (default warning)
    action: retrain                  # optional: retrain | none (default none)
  - name: income drifted
    when: drifted                    # a boolean column metric alone means "== 1"
    column: income                   # a column name or "*"
  - name: accuracy fell
    when: accuracy < 0.8
    for: 2                           # fire only when it held in the last N evaluations
  - name: missing values
    when: missing_rate > 0.1
    column: "*"
  - name: dropped predictions
    when: prediction_log_drops > 0
notify:
  - webhook: http://127.0.0.1:9000/hook
    headers: {Authorization: "Bearer xyz"}
    min_severity: warning
  - log
"""


def _error(source: object, origin: str = "rules.yaml") -> str:
    with pytest.raises(InvalidInputError) as caught:
        parse_rules(source, origin=origin)  # type: ignore[arg-type]
    return caught.value.message


# ------------------------------------------------------------------------- parsing


def test_the_documented_example_parses() -> None:
    ruleset = parse_rules(EXAMPLE, origin="monitor.yaml")
    assert ruleset.rules == (
        Rule("dataset drift", "drift_share", ">", 0.3, severity="critical", action="retrain"),
        Rule("income drifted", "drifted", "==", 1.0, column="income"),
        Rule("accuracy fell", "accuracy", "<", 0.8, for_windows=2),
        Rule("missing values", "missing_rate", ">", 0.1, column="*"),
        Rule("dropped predictions", "prediction_log_drops", ">", 0.0),
    )
    assert all(r.severity == "warning" for r in ruleset.rules[1:])
    assert all(r.action == "none" for r in ruleset.rules[1:])
    webhook, log = ruleset.notify
    assert webhook == NotifySpec(
        kind="webhook",
        url="http://127.0.0.1:9000/hook",
        headers={"Authorization": "Bearer xyz"},
        min_severity="warning",
        timeout_s=5.0,
    )
    assert log == NotifySpec(kind="log", min_severity="info")
    assert "Bearer" not in repr(webhook)


def test_a_bare_list_of_rules_and_loaded_data_are_accepted() -> None:
    text = "- {name: drift, when: 'drift_share >= 0.25', severity: INFO}\n"
    from_text = parse_rules(text)
    assert from_text == RuleSet(rules=(Rule("drift", "drift_share", ">=", 0.25, severity="info"),))
    assert parse_rules([{"name": "drift", "when": "drift_share >= 0.25"}]).rules[0].severity == (
        "warning"
    )
    assert parse_rules({"rules": [], "notify": None}) == RuleSet()


@pytest.mark.parametrize(
    ("when", "metric", "op", "threshold"),
    [
        ("drift_share>0.3", "drift_share", ">", 0.3),
        ("r2_change <= -0.05", "r2_change", "<=", -0.05),
        ("p_value < 1e-3", "p_value", "<", 0.001),
        ("n_rows != 0", "n_rows", "!=", 0.0),
        ("dataset_drift == 0", "dataset_drift", "==", 0.0),
        ("target_drift", "target_drift", "==", 1.0),
    ],
)
def test_conditions_parse(when: str, metric: str, op: str, threshold: float) -> None:
    column = "x" if metric in COLUMN_METRICS else None
    (rule,) = parse_rules([{"name": "r", "when": when, "column": column}]).rules
    assert (rule.metric, rule.op, rule.threshold) == (metric, op, threshold)


def test_every_performance_metric_has_a_change_metric() -> None:
    assert "accuracy_change" in DATASET_METRICS
    assert "mape_change" in DATASET_METRICS
    assert not set(DATASET_METRICS) & set(COLUMN_METRICS)


def test_a_rule_set_survives_a_json_round_trip() -> None:
    ruleset = parse_rules(EXAMPLE)
    assert RuleSet.from_dict(json.loads(json.dumps(ruleset.to_dict()))) == ruleset
    assert RuleSet.from_dict(DEFAULT_RULES.to_dict()) == DEFAULT_RULES


def test_the_default_rules() -> None:
    by_name = {r.name: r for r in DEFAULT_RULES.rules}
    assert by_name["dataset drift"].when == "drift_share > 0.5"
    assert by_name["dataset drift"].severity == "critical"
    assert (by_name["column drifted"].metric, by_name["column drifted"].column) == ("drifted", "*")
    assert by_name["missing values"].when == "missing_rate > 0.2"
    assert by_name["dropped predictions"].when == "prediction_log_drops > 0"
    assert all(r.severity == "warning" for r in DEFAULT_RULES.rules if r.name != "dataset drift")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "rules:\n  - name: ok\n    when: n_rows > 1\n  - name: drift\n"
            "    when: drift_shar > 0.3\n",
            [
                "rules.yaml",
                "rule 2 'drift'",
                "line 5",
                "unknown metric 'drift_shar'",
                "did you mean 'drift_share'",
                "missing_rate",
                "accuracy_change",
            ],
            id="unknown metric",
        ),
        pytest.param(
            "- name: income\n  when: drifted\n",
            ["rule 1 'income'", "line 1", "drifted is a column metric", "column:", '"*"'],
            id="column metric without column",
        ),
        pytest.param(
            "- name: rows\n  when: n_rows < 100\n  column: age\n",
            ["rule 1 'rows'", "line 3", "n_rows is a dataset metric", "remove `column: age`"],
            id="column for a dataset metric",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share => 0.3\n",
            ["rule 1 'drift'", "line 2", "unknown comparison '=>'", "> >= < <= == !="],
            id="bad operator",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share = 0.3\n",
            ["unknown comparison '='", "== for equality"],
            id="single equals",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > lots\n",
            ["rule 1 'drift'", "line 2", "threshold 'lots'", "not a number", "drift_share > 0.3"],
            id="non-numeric threshold",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share\n",
            ["no comparison", "drift_share is not a yes/no metric", "drift_share > 0.5"],
            id="non-boolean metric alone",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > 0.3\n  severity: high\n",
            ["rule 1 'drift'", "line 3", "unknown severity 'high'", "info, warning, critical"],
            id="unknown severity",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > 0.3\n  action: page\n",
            ["line 3", "unknown action 'page'", "none, retrain"],
            id="unknown action",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > 0.3\n  for: 0\n",
            ["line 3", "`for` must be a whole number", "1 or more"],
            id="for below one",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > 0.3\n- name: drift\n  when: n_rows < 5\n",
            ["rule 2 'drift'", "line 3", "same name as rule 1", "unique"],
            id="duplicate names",
        ),
        pytest.param(
            "- name: drift\n  when: drift_share > 0.3\n  severty: info\n",
            [
                "rule 1 'drift'",
                "line 3",
                "unknown key 'severty'",
                "did you mean 'severity'",
                "allowed keys: name, when, column, severity, action, for",
            ],
            id="unknown rule key",
        ),
        pytest.param(
            "- when: drift_share > 0.3\n",
            ["rule 1", "has no `name`"],
            id="missing name",
        ),
        pytest.param(
            "- name: drift\n",
            ["rule 1 'drift'", "has no `when`", "drift_share > 0.3"],
            id="missing when",
        ),
        pytest.param(
            "- drift_share > 0.3\n",
            ["rule 1", "must be a mapping", "name", "when"],
            id="rule not a mapping",
        ),
        pytest.param(
            "rules: []\nnotify:\n  - webhook: ftp://example.com/hook\n",
            ["notify entry 1 (webhook)", "line 3", "not an http(s) URL", "https://"],
            id="non-http webhook",
        ),
        pytest.param(
            "rules: []\nnotify:\n  - webhook: https://example.com/hook\n    header: {A: b}\n",
            [
                "notify entry 1 (webhook)",
                "line 4",
                "unknown key 'header'",
                "did you mean 'headers'",
                "webhook, headers, min_severity, timeout_s",
            ],
            id="unknown notify key",
        ),
        pytest.param(
            "rules: []\nnotify:\n  - email: me@example.com\n",
            ["notify entry 1", "line 3", "exactly one of `webhook: <url>` or `log`"],
            id="unknown notifier",
        ),
        pytest.param(
            "rules: []\nnotify:\n  - log:\n    min_severity: loud\n",
            ["notify entry 1 (log)", "line 4", "unknown min_severity 'loud'", "info, warning"],
            id="bad min_severity",
        ),
        pytest.param(
            "rules: []\nalerts: []\n",
            ["rules.yaml (line 2)", "unknown top-level key 'alerts'", "rules, notify"],
            id="unknown top-level key",
        ),
        pytest.param(
            "notify: [log]\n",
            ["has no `rules:` list"],
            id="no rules key",
        ),
        pytest.param("", ["rules.yaml is empty", "rules:"], id="empty"),
        pytest.param(
            "rules.yaml",
            ["must be a mapping with `rules:`", "read the file and pass its text"],
            id="a path instead of text",
        ),
    ],
)
def test_malformed_rules_say_where_what_and_how_to_fix(source: str, expected: list[str]) -> None:
    message = _error(source)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_a_yaml_syntax_error_reports_its_line() -> None:
    message = _error("rules:\n  - name: drift\n    when: drift_share > 0.3\n   severity: info\n")
    assert "line 4" in message and "not valid YAML" in message
    assert "indentation" in message
    with pytest.raises(InvalidInputError) as caught:
        parse_rules('- name: "drift\n', origin="x.yaml")
    assert caught.value.details["line"] is not None


def test_a_key_given_twice_is_reported_on_its_second_line() -> None:
    message = _error("- name: drift\n  when: drift_share > 0.3\n  when: drift_share > 0.5\n")
    assert "line 3" in message and "'when' is given twice" in message


def test_errors_from_loaded_data_name_the_rule_without_a_line() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_rules({"rules": [{"name": "a", "when": "accuracy < x"}]}, origin="api")
    assert caught.value.message.startswith("api: rule 1 'a': threshold 'x'")
    assert caught.value.details == {
        "origin": "api",
        "line": None,
        "rule_number": 1,
        "rule": "a",
        "field": "when",
    }


def test_rules_built_directly_are_checked_too() -> None:
    with pytest.raises(InvalidInputError, match="rule 'x': unknown severity 'urgent'"):
        Rule("x", "drift_share", ">", 0.3, severity="urgent")
    with pytest.raises(InvalidInputError, match="missing_rate is a column metric"):
        Rule("x", "missing_rate", ">", 0.3)
    with pytest.raises(InvalidInputError, match="two rules are named 'x'"):
        RuleSet(rules=(Rule("x", "n_rows", "<", 1), Rule("x", "n_rows", "<", 2)))
    with pytest.raises(InvalidInputError, match="not an http"):
        NotifySpec(kind="webhook", url="file:///etc/passwd")
    assert Rule("x", "n_rows", "<", 1, severity="Critical").severity == "critical"


# ---------------------------------------------------------------------- evaluation


def test_dataset_rules_fire_and_clear() -> None:
    ruleset = parse_rules(EXAMPLE)
    result = evaluate_rules(
        ruleset, Observations(dataset={"drift_share": 0.4, "prediction_log_drops": 0})
    )
    (firing,) = result.firing
    assert firing.rule.name == "dataset drift"
    assert (firing.column, firing.value) == (None, 0.4)
    assert firing.fingerprint == "dataset drift|" == alert_fingerprint("dataset drift")
    assert firing.message == "drift_share = 0.40 > 0.3"
    assert result.clear == ("dropped predictions|",)
    assert result.unknown == ("income drifted", "accuracy fell", "missing values")


def test_messages_keep_enough_digits_to_make_sense() -> None:
    rules = RuleSet(rules=(Rule("d", "drift_share", ">", 0.3),))
    result = evaluate_rules(rules, Observations(dataset={"drift_share": 0.3004}))
    assert result.firing[0].message == "drift_share = 0.3004 > 0.3"
    rule = Rule("p", "p_value", "<", 0.01, column="age")
    firing = evaluate_rules(
        RuleSet(rules=(rule,)), Observations(columns={"age": {"p_value": 0.000123}})
    ).firing[0]
    assert firing.message == "column 'age': p_value = 0.000123 < 0.01"


def test_column_rules_fire_for_their_column() -> None:
    ruleset = parse_rules(EXAMPLE)
    observations = Observations(
        columns={"income": {"drifted": 1, "missing_rate": 0.0}, "age": {"drifted": 0}}
    )
    result = evaluate_rules(ruleset, observations)
    firing = {f.fingerprint: f for f in result.firing}
    assert list(firing) == ["income drifted|income"]
    assert firing["income drifted|income"].message == "column 'income': drifted = 1"
    assert "missing values|income" in result.clear


def test_a_star_rule_gives_one_firing_or_clear_per_column() -> None:
    (rule,) = parse_rules([{"name": "missing", "when": "missing_rate > 0.1", "column": "*"}]).rules
    observations = Observations(
        columns={
            "a": {"missing_rate": 0.5},
            "b": {"missing_rate": 0.05},
            "c": {"missing_rate": 0.2},
            "d": {"drifted": 1},  # no missing_rate: not evaluated
            "e": {"missing_rate": math.nan},  # NaN: not evaluated
        }
    )
    result = evaluate_rules(RuleSet(rules=(rule,)), observations)
    assert [(f.column, f.fingerprint) for f in result.firing] == [
        ("a", "missing|a"),
        ("c", "missing|c"),
    ]
    assert result.clear == ("missing|b",)
    assert result.unknown == ()
    no_metric = evaluate_rules(RuleSet(rules=(rule,)), Observations(columns={"d": {}}))
    assert no_metric == type(no_metric)(firing=(), clear=(), unknown=("missing",))


def test_for_n_fires_only_when_the_condition_held_in_the_last_n_evaluations() -> None:
    rules = RuleSet(rules=(Rule("accuracy fell", "accuracy", "<", 0.8, for_windows=3),))

    def window(accuracy: float | None) -> Observations:
        return Observations(dataset={} if accuracy is None else {"accuracy": accuracy})

    now = window(0.7)
    assert evaluate_rules(rules, now).pending == ("accuracy fell|",)
    assert evaluate_rules(rules, now, history=[window(0.7)]).firing == ()
    held = evaluate_rules(rules, now, history=[window(0.9), window(0.75), window(0.6)])
    assert [f.message for f in held.firing] == ["accuracy = 0.70 < 0.8 for 3 evaluations"]
    broken = evaluate_rules(rules, now, history=[window(0.7), window(0.9), window(0.7)])
    assert (broken.firing, broken.pending, broken.clear) == ((), ("accuracy fell|",), ())
    gap = evaluate_rules(rules, now, history=[window(0.7), window(None)])
    assert gap.firing == ()
    recovered = evaluate_rules(rules, window(0.85), history=[window(0.7), window(0.7)])
    assert recovered.clear == ("accuracy fell|",)


def test_for_n_on_a_star_rule_follows_each_column() -> None:
    rule = Rule("drift", "drifted", "==", 1, column="*", for_windows=2)
    before = Observations(columns={"a": {"drifted": 1}, "b": {"drifted": 0}})
    now = Observations(columns={"a": {"drifted": 1}, "b": {"drifted": 1}})
    result = evaluate_rules(RuleSet(rules=(rule,)), now, history=[before])
    assert [f.fingerprint for f in result.firing] == ["drift|a"]
    assert result.pending == ("drift|b",)


def test_absent_and_nan_metrics_are_unknown_not_clear() -> None:
    rules = parse_rules(
        [
            {"name": "acc", "when": "accuracy < 0.8"},
            {"name": "income", "when": "drifted", "column": "income"},
        ]
    )
    result = evaluate_rules(
        rules, Observations(dataset={"accuracy": float("nan")}, columns={"age": {"drifted": 1}})
    )
    assert result.unknown == ("acc", "income")
    assert result.firing == () and result.clear == ()


def test_a_non_numeric_observation_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="'drift_share' must be a number, got str"):
        evaluate_rules(DEFAULT_RULES, Observations(dataset={"drift_share": "high"}))  # type: ignore[dict-item]


def test_default_rules_on_a_drifting_window() -> None:
    observations = Observations(
        dataset={"drift_share": 0.6, "prediction_log_drops": 0},
        columns={"age": {"drifted": 1, "missing_rate": 0.0}, "city": {"drifted": 0}},
    )
    result = evaluate_rules(DEFAULT_RULES, observations)
    assert [f.fingerprint for f in result.firing] == ["dataset drift|", "column drifted|age"]
    assert set(result.clear) == {
        "column drifted|city",
        "missing values|age",
        "dropped predictions|",
    }
