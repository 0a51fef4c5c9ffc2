"""The relationship graph: association measures, redundancy, leakage, and the HTML report."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.data.profiling import profile
from shipyard.data.relationships import (
    RelationshipGraph,
    correlation_ratio,
    cramers_v,
    relationship_graph,
)
from shipyard.data.report_html import force_layout, render_report

HOSTILE = "<script>alert(1)</script>"


def make_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Planted structure: a near-duplicate pair, a leaky copy of y, an id, and noise."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    y = x1 + 0.8 * rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    return pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + n),
            "x1": x1,
            "x2": 2 * x1 + rng.normal(scale=1e-3, size=n),
            "noise": rng.normal(size=n),
            "leak": y + rng.normal(scale=0.01 * y.std(), size=n),
            "color": color,
            "price": pd.Series(color).map({"red": 1.0, "green": 5.0, "blue": 9.0}).to_numpy(),
            "y": y,
        }
    )


@pytest.fixture(scope="module")
def graph() -> RelationshipGraph:
    return relationship_graph(make_frame(), target="y")


def edge_value(g: RelationshipGraph, a: str, b: str, method: str) -> float:
    for e in g.edges:
        if {e.a, e.b} == {a, b} and e.method == method:
            return e.value
    raise AssertionError(f"no {method} edge between {a} and {b}")


def test_near_duplicate_is_redundant_and_the_less_informative_one_is_dropped(
    graph: RelationshipGraph,
) -> None:
    pairs = {frozenset((r.a, r.b)): r for r in graph.redundant}
    r = pairs[frozenset(("x1", "x2"))]
    assert r.method in ("pearson", "spearman") and r.value > 0.999
    assert {r.keep, r.drop} == {"x1", "x2"}
    mi_keep = graph.node(r.keep).mutual_information
    mi_drop = graph.node(r.drop).mutual_information
    assert mi_keep is not None and mi_drop is not None and mi_keep >= mi_drop
    assert repr(r.drop) in r.reason
    # the category and the number it determines are near-duplicates too (eta ~ 1)
    assert frozenset(("color", "price")) in pairs
    # a pair with the target is leakage, not redundancy
    assert not any("y" in pair for pair in pairs)


def test_leaky_feature_and_identifier_are_leakage_suspects(graph: RelationshipGraph) -> None:
    suspects = {s.column: s for s in graph.leakage_suspects}
    assert set(suspects) == {"leak", "id"}
    assert suspects["leak"].score is not None and suspects["leak"].score >= 0.98
    assert not suspects["leak"].identifier
    assert "association with the target" in suspects["leak"].reason
    assert suspects["id"].identifier and "identifier" in suspects["id"].reason


def test_mutual_information_ranks_and_independent_feature(graph: RelationshipGraph) -> None:
    noise, x1, leak = graph.node("noise"), graph.node("x1"), graph.node("leak")
    assert graph.task == "regression"
    assert noise.mutual_information is not None and noise.mutual_information < 0.05
    assert x1.mutual_information is not None and x1.mutual_information > 0.3
    assert leak.importance_rank == 1
    assert noise.mi_normalised is not None and noise.mi_normalised < 0.3
    assert graph.node("y").role == "target" and graph.node("y").mutual_information is None
    ranks = sorted(n.importance_rank for n in graph.nodes if n.importance_rank is not None)
    assert ranks == list(range(1, len(graph.nodes)))  # every feature, not the target


def test_pearson_and_spearman_match_pandas_with_pairwise_complete_rows() -> None:
    df = make_frame(400)[["x1", "noise", "leak", "y"]].copy()
    rng = np.random.default_rng(3)
    df_missing = df.mask(rng.random(df.shape) < 0.1)  # 10% missing, scattered
    g = relationship_graph(df_missing)
    expected = df_missing.corr(method="pearson")  # pandas uses pairwise complete rows too
    for a, b in (("x1", "y"), ("noise", "leak"), ("x1", "leak")):
        assert edge_value(g, a, b, "pearson") == pytest.approx(expected.loc[a, b], abs=1e-9)
    g_full = relationship_graph(df)
    rho = df.corr(method="spearman")
    for a, b in (("x1", "y"), ("noise", "leak")):
        assert edge_value(g_full, a, b, "spearman") == pytest.approx(rho.loc[a, b], abs=1e-9)


def test_cramers_v_of_identical_and_independent_categoricals() -> None:
    rng = np.random.default_rng(1)
    a = rng.choice(list("abcd"), size=3000)
    b = rng.choice(list("xyz"), size=3000)
    g = relationship_graph(pd.DataFrame({"a": a, "a_copy": a, "b": b}))
    assert edge_value(g, "a", "a_copy", "cramers_v") == pytest.approx(1.0)
    assert edge_value(g, "a", "b", "cramers_v") < 0.05
    assert cramers_v(np.diag([10, 20, 30])) == pytest.approx(1.0)
    assert cramers_v([[50, 50], [50, 50]]) == 0.0
    assert cramers_v([[5, 0], [0, 0]]) is None  # one non-empty row: undefined


def test_correlation_ratio() -> None:
    codes = np.array([0, 0, 1, 1, 2, 2])
    assert correlation_ratio(codes, [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]) == pytest.approx(1.0)
    values = np.array([1.0, 3.0, 2.0, 6.0, 5.0, 4.0])
    means = np.array([2.0, 4.0, 4.5])[codes]
    expected = np.sqrt(((means - values.mean()) ** 2).sum() / ((values - values.mean()) ** 2).sum())
    assert correlation_ratio(codes, values) == pytest.approx(expected)
    assert correlation_ratio(np.array([0, 1, -1, 1]), [1.0, 2.0, 100.0, 2.0]) is not None
    assert correlation_ratio(codes, np.ones(6)) is None
    g = relationship_graph(make_frame(300)[["color", "price", "noise"]])
    assert edge_value(g, "price", "color", "correlation_ratio") == pytest.approx(1.0)
    assert edge_value(g, "noise", "color", "correlation_ratio") < 0.2


def test_classification_target_with_a_leaky_copy() -> None:
    df = make_frame(1000)
    df["label"] = np.where(df["y"] > 0, "yes", "no")
    df["label_copy"] = df["label"]
    g = relationship_graph(df.drop(columns=["y", "leak"]), target="label")
    assert g.task == "classification"
    suspects = {s.column for s in g.leakage_suspects}
    assert suspects == {"label_copy", "id"}
    copy = g.node("label_copy")
    assert copy.mi_normalised == pytest.approx(1.0) and copy.predictive_score == 1.0
    assert g.node("noise").predictive_score is not None
    assert g.node("noise").predictive_score < 0.6  # chance is 0.5 (balanced accuracy)


def test_threshold_rule_leak_is_caught_by_the_predictive_score() -> None:
    rng = np.random.default_rng(5)
    score = rng.normal(size=3000)
    df = pd.DataFrame({"score": score, "other": rng.normal(size=3000), "approved": score > 0.3})
    g = relationship_graph(df, target="approved")
    assert g.node("score").predictive_score is not None
    assert g.node("score").predictive_score > 0.98
    assert [s.column for s in g.leakage_suspects] == ["score"]


def test_high_cardinality_categorical_is_text_and_skipped() -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {"city": rng.choice([f"c{i}" for i in range(80)], size=2000), "x": rng.normal(size=2000)}
    )
    g = relationship_graph(df, max_categories=50)
    city = g.node("city")
    assert city.kind == "text" and not city.used
    assert city.note is not None and "max_categories=50" in city.note
    assert not any("city" in (e.a, e.b) for e in g.edges)
    assert relationship_graph(df, max_categories=100).node("city").used


def test_sampling_is_recorded() -> None:
    df = make_frame(3000)
    g = relationship_graph(df, target="y", sample_rows=1000, mi_sample_rows=500)
    assert (g.n_rows, g.sampled_rows, g.mi_rows) == (3000, 1000, 500)
    assert edge_value(g, "x1", "y", "pearson") > 0.7  # Pearson still uses every row
    assert all(e.n == 3000 for e in g.edges if e.method == "pearson")
    assert all(e.n == 1000 for e in g.edges if e.method == "spearman")
    full = relationship_graph(df, target="y")
    assert full.sampled_rows is None and full.mi_rows == 3000
    assert relationship_graph(df, target="y", sample_rows=1000, mi_sample_rows=500) == g


def test_missing_target_is_a_clear_error() -> None:
    df = pd.DataFrame({"age": [1, 2], "income": [3.0, 4.0]})
    with pytest.raises(InvalidInputError) as err:
        relationship_graph(df, target="churn")
    message = err.value.message
    assert "'churn'" in message and "'age'" in message and "'income'" in message
    assert err.value.details == {
        "parameter": "target",
        "received": "churn",
        "known_columns": ["age", "income"],
    }
    assert isinstance(err.value, ValueError)


def test_other_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="DataFrame"):
        relationship_graph({"a": [1]})  # type: ignore[arg-type]
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInputError, match="unique"):
        relationship_graph(dup)
    with pytest.raises(InvalidInputError, match="max_categories"):
        relationship_graph(pd.DataFrame({"a": [1]}), max_categories=0)
    with pytest.raises(InvalidInputError, match="leakage_threshold"):
        relationship_graph(pd.DataFrame({"a": [1]}), leakage_threshold=1.5)


def test_without_target_and_degenerate_columns() -> None:
    df = pd.DataFrame(
        {
            "const": [1.0] * 30,
            "empty": [np.nan] * 30,
            "k": np.arange(30),
            "when": pd.date_range("2024-01-01", periods=30, freq="D"),
        }
    )
    g = relationship_graph(df)
    assert g.target is None and g.task is None and g.mi_rows is None
    assert g.node("const").note is not None and "constant" in g.node("const").note
    assert all(n.mutual_information is None for n in g.nodes)
    assert edge_value(g, "k", "when", "pearson") == pytest.approx(1.0)  # datetime as seconds
    assert not any("const" in (e.a, e.b) or "empty" in (e.a, e.b) for e in g.edges)
    assert [s.column for s in g.leakage_suspects] == ["k"]


def test_strong_edges_and_matrix(graph: RelationshipGraph) -> None:
    strong = graph.strong_edges(0.5)
    pairs = [frozenset((e.a, e.b)) for e in strong]
    assert len(pairs) == len(set(pairs))  # one edge per pair
    assert all(e.strength >= 0.5 for e in strong)
    assert [e.strength for e in strong] == sorted((e.strength for e in strong), reverse=True)
    names, matrix = graph.strength_matrix()
    i, j = names.index("x1"), names.index("x2")
    assert matrix[i, j] == matrix[j, i] > 0.999
    assert np.allclose(np.diag(matrix), 1.0)


def test_json_round_trip(graph: RelationshipGraph) -> None:
    text = graph.to_json()
    data = json.loads(text)
    assert data == graph.to_dict()
    assert RelationshipGraph.from_dict(data) == graph
    assert {n["name"] for n in data["nodes"]} == set(make_frame(5).columns)


# -- the HTML report ---------------------------------------------------------------------------


def hostile_frame() -> pd.DataFrame:
    df = make_frame(300)
    df[HOSTILE] = np.where(df["x1"] > 0, "<b>big</b>", "small & fine")
    return df


def test_report_is_self_contained_and_escapes_hostile_names() -> None:
    df = hostile_frame()
    page = render_report(profile(df), relationship_graph(df, target="y"), title=f"t {HOSTILE}")
    assert "http://" not in page and "https://" not in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>big</b>" not in page
    assert re.findall(r"<script\b", page) == ["<script"]  # only the JSON data element
    data = re.search(
        r'<script type="application/json" id="shipyard-data">(.*?)</script>', page, re.S
    )
    assert data is not None
    payload = json.loads(data.group(1))
    assert payload["profile"]["columns"][-1]["name"] == HOSTILE
    assert {n["name"] for n in payload["graph"]["nodes"]} == set(df.columns)
    assert page.count('class="histogram"') == sum(
        1 for c in profile(df).columns if c.kind == "numeric"
    )
    assert page.count('<g class="node"') == len(df.columns)


def test_report_without_graph_and_layout_is_deterministic() -> None:
    page = render_report(profile(pd.DataFrame({"a": [1, 2, 3]})), title="plain")
    assert "relationship-graph" not in page and 'class="histogram"' in page
    edges = [(0, 1, 0.9), (1, 2, 0.6)]
    first = force_layout(4, edges)
    assert np.array_equal(first, force_layout(4, edges))
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert force_layout(0, []).shape == (0, 2)
