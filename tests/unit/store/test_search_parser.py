import pytest

from shipyard.core.errors import FilterSyntaxError
from shipyard.store.search import (
    BoolOp,
    Comparison,
    Ident,
    parse_filter,
    parse_order_by,
)


def test_simple_and() -> None:
    node = parse_filter("metrics.f1 > 0.8 and params.model = 'rf'")
    assert node == BoolOp(
        "AND",
        (
            Comparison(Ident("metric", "f1"), ">", 0.8),
            Comparison(Ident("param", "model"), "=", "rf"),
        ),
    )


@pytest.mark.parametrize(
    ("source", "ident"),
    [
        ('metrics."f1 score" >= 1', Ident("metric", "f1 score")),
        ("metrics.`f1 score` >= 1", Ident("metric", "f1 score")),
        ("tags.'data set' = 'x'", Ident("tag", "data set")),
        ("metrics.val.loss < 1", Ident("metric", "val.loss")),
        ("status = 'FINISHED'", Ident("attr", "status")),
        ("attributes.run_name LIKE 'rf%'", Ident("attr", "run_name")),
    ],
)
def test_quoted_and_dotted_names(source: str, ident: Ident) -> None:
    node = parse_filter(source)
    assert isinstance(node, Comparison)
    assert node.ident == ident


def test_in_list_or_parentheses_and_not() -> None:
    node = parse_filter(
        "(params.model IN ('rf', 'hgb') OR tags.x != 'y') AND NOT metrics.a IS NULL"
    )
    assert isinstance(node, BoolOp) and node.op == "AND"
    first, second = node.items
    assert isinstance(first, BoolOp) and first.op == "OR"
    assert first.items[0] == Comparison(Ident("param", "model"), "IN", ("rf", "hgb"))
    assert second == BoolOp("NOT", (Comparison(Ident("metric", "a"), "IS NULL", None),))


def test_escaped_quotes_in_strings() -> None:
    node = parse_filter("tags.note = 'it''s'")
    assert isinstance(node, Comparison) and node.value == "it's"


@pytest.mark.parametrize(
    ("source", "position", "needle"),
    [
        ("metrics.f1 >", 12, "expected a number"),
        ("metrics.f1 ~ 3", 11, "unexpected character"),
        ("metrics.f1 > 0.8 and", 20, "expected a name"),
        ("metrix.f1 > 1", 0, "unknown prefix"),
        ("metrics.f1 > 'high'", 11, "numeric"),
        ("metrics.f1 0.5", 11, "expected an operator"),
        ("params.a IN ('x'", 16, "expected ',' or ')'"),
        ("status = 'DONE'", 7, "status 'DONE'"),
        ("attributes.colour = 'x'", 11, "unknown attribute"),
    ],
)
def test_syntax_errors_say_where(source: str, position: int, needle: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(source)
    assert info.value.details["position"] == position
    assert needle in str(info.value)
    assert f"at position {position}" in str(info.value)
    # the caret line points at the position
    assert str(info.value).splitlines()[-1] == "  " + " " * position + "^"


def test_order_by() -> None:
    keys = parse_order_by(["metrics.f1 DESC", "params.model", "start_time asc"])
    assert [(k.ident, k.descending) for k in keys] == [
        (Ident("metric", "f1"), True),
        (Ident("param", "model"), False),
        (Ident("attr", "start_time"), False),
    ]
    with pytest.raises(FilterSyntaxError):
        parse_order_by(["metrics.f1 DOWN"])


def test_empty_filter_is_none() -> None:
    assert parse_filter("  ") is None
    assert parse_filter(None) is None
