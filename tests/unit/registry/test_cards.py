"""Model cards built from a real store: a logged, evaluated and registered scikit-learn model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlparse

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import NotFoundError
from shipyard.registry.cards import ModelCard, build_card

DOI = "10.1145/2939672.2939785"
BIBTEX = "@article{breiman2001,\n  title={Random Forests},\n  author={Breiman, Leo},\n}"


@pytest.fixture
def cancer(sy: Any) -> dict[str, Any]:
    """``cancer@1`` (breast cancer data with a ``size`` slice column) split into
    ``cancer@train`` (version 2) and ``cancer@test`` (version 3)."""
    import shipyard.data

    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = (frame["mean radius"] > 14).map({True: "large", False: "small"})
    shipyard.data.add("cancer", frame)
    parts, _ = shipyard.data.split("cancer@1", target="target", test=0.3, seed=0)
    train = shipyard.data.get(parts["train"].ref).to_pandas()
    return {**parts, "X": train.drop(columns=["target", "size"]), "y": train["target"]}


def _register(
    sy: Any,
    cancer: dict[str, Any],
    *,
    evaluate: bool = True,
    c: float = 1.0,
    tags: dict[str, str] | None = None,
) -> Any:
    """Fit, log, evaluate on the test split (slices by size) and register a version."""
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=c, max_iter=500))])
    model.fit(cancer["X"], cancer["y"])
    with sy.start_run(name=f"lr C={c}") as run:
        sy.log_input(cancer["train"], context="training")
        sy.log_model(model, "model", input_example=cancer["X"].head(5))
        if evaluate:
            sy.evaluate(model, "cancer@test", "target", slices="size", bootstrap=200, plots=False)
        if tags:
            sy.set_tags(tags)
    return sy.register_model(run.run_id, "cancer")


@pytest.fixture
def card(sy: Any, cancer: dict[str, Any]) -> ModelCard:
    """The card of an evaluated version with intended use, citations and a passed gate."""
    version = _register(sy, cancer)
    registry = sy.model_registry()
    registry.update_version(version.ref, intended_use="Screening research only; not diagnosis.")
    registry.cite(version.ref, kind="doi", key=DOI)
    registry.cite(version.ref, kind="arxiv", key="1603.02754", text="the XGBoost paper")
    registry.cite(version.ref, kind="bibtex", key=BIBTEX)
    registry.set_policy("cancer", {"production": {"min_metrics": {"test_roc_auc": 0.9}}})
    registry.promote("cancer", version.version, "production")
    return build_card(registry, "cancer@production")


def _sections(markdown: str) -> list[str]:
    return re.findall(r"(?m)^## (.+)$", markdown)


def _assert_loads_nothing(
    page: str, external_links: Callable[[str], list[str]], *, links_to: set[str] | None = None
) -> None:
    """No element that loads anything (script, img, link, src=...), no CSS url(); the only
    outside links are anchors to the references' hosts."""
    tags: list[str] = []
    sources: list[str] = []
    css: list[str] = []

    class Elements(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)
            sources.extend(k for k, _ in attrs if k in ("src", "srcset", "poster", "data"))

        def handle_data(self, data: str) -> None:
            if tags and tags[-1] == "style":
                css.append(data)

    Elements().feed(page)
    loading = {"script", "link", "img", "iframe", "object", "embed", "base", "video", "audio"}
    assert not loading & set(tags), loading & set(tags)
    assert not sources
    assert tags.count("style") == 1 and "url(" not in css[0] and "@import" not in css[0]
    assert {urlparse(u).hostname for u in external_links(page)} <= (
        links_to if links_to is not None else {"doi.org", "arxiv.org"}
    )
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in page


def test_card_has_every_section_with_the_evidence_the_run_logged(card: ModelCard, sy: Any) -> None:
    assert _sections(card.markdown) == [
        "Intended use", "Training data", "Metrics", "Slice metrics", "Per-class metrics",
        "Feature importance", "Signature", "Promotion gates", "Lineage", "Limitations",
        "References",
    ]  # fmt: skip
    for title in _sections(card.markdown):
        assert f"<h2>{title}</h2>" in card.html
    assert card.markdown.startswith("# Model card: cancer@1\n")
    assert "| Aliases | production |" in card.markdown
    assert "Screening research only; not diagnosis." in card.markdown
    assert "Screening research only; not diagnosis." in card.html

    # metrics, with the bootstrap interval the evaluation logged
    metrics = sy.get_run(card.data["run_id"]).metrics
    auc, low, high = (metrics[f"test_roc_auc{s}"] for s in ("", "_ci_low", "_ci_high"))
    assert low <= auc <= high
    shown = f"{auc:.4g} [{low:.4g}, {high:.4g}]"
    assert f"| test_roc_auc | {shown} |" in card.markdown
    assert f"<td>{shown}</td>" in card.html
    test_group = {m["name"]: m for m in card.data["metric_groups"]["test"]}
    assert test_group["test_roc_auc"] == {"name": "test_roc_auc", "value": auc, "ci": [low, high]}
    assert "test_roc_auc_ci_low" not in test_group  # folded into its metric
    assert f"| test_precision | {metrics['test_precision']:.4g} |" in card.markdown  # no interval

    # slices, per-class and importance from evaluation/test.json
    evaluation = json.loads(sy.load_artifact(card.data["run_id"], "evaluation/test.json"))
    assert {s["slice"] for s in card.data["slices"]["test"]} == {"large", "small"}
    assert re.search(r"(?m)^\| large \| \d+ \| ", card.markdown)
    assert [r["class"] for r in card.data["per_class"]["test"]] == [0, 1]
    top = [r["feature"] for r in evaluation["importance"][:10]]
    assert [r["feature"] for r in card.data["importance"]["test"]] == top
    assert f"| {top[0]} | " in card.markdown

    # training data and lineage: the split versions and their parent
    assert "| cancer@2 | training | cancer@1 |" in card.markdown
    assert "- model cancer@1\n  - run " in card.markdown
    assert "    - dataset cancer@2 (training)\n      - dataset cancer@1" in card.markdown

    # signature, gates, references
    assert "| mean radius | float | no | [" in card.markdown
    assert "### production: passed (" in card.markdown
    assert "| min_metrics | yes | test_roc_auc = " in card.markdown
    assert f"[https://doi.org/{DOI}](https://doi.org/{DOI})" in card.markdown
    assert (
        f'<a href="https://doi.org/{DOI}" rel="noreferrer">https://doi.org/{DOI}</a>' in card.html
    )
    assert "https://arxiv.org/abs/1603.02754" in card.markdown
    assert f"```\n{BIBTEX}\n```" in card.markdown
    assert "<pre><code>@article{breiman2001," in card.html


def test_placeholders_tell_how_to_write_limitations(card: ModelCard) -> None:
    assert card.data["limitations"] == ""
    assert '`shipyard models edit cancer@1 --limitations "..."`' in card.markdown
    assert "--intended-use" not in card.markdown  # it is written


def test_data_is_json_safe_and_holds_what_the_card_shows(card: ModelCard) -> None:
    data = json.loads(json.dumps(card.data, allow_nan=False))
    assert data["ref"] == "cancer@1"
    assert data["aliases"] == ["production"]
    assert data["intended_use"] == "Screening research only; not diagnosis."
    assert [r["kind"] for r in data["references"]] == ["doi", "arxiv", "bibtex"]
    assert data["references"][0]["url"] == f"https://doi.org/{DOI}"
    assert data["gate_checks"][0]["passed"] is True
    assert data["alias_moves"][0]["to_version"] == 1
    assert data["lineage"]["datasets"][0]["ref"] == "cancer@2"


def test_html_is_self_contained_and_loads_nothing(
    card: ModelCard, external_links: Callable[[str], list[str]]
) -> None:
    _assert_loads_nothing(card.html, external_links)
    assert card.html.startswith("<!DOCTYPE html>")
    assert card.html.count("<section") == card.html.count("</section>")


def test_html_escapes_user_text(
    sy: Any, cancer: dict[str, Any], external_links: Callable[[str], list[str]]
) -> None:
    version = _register(sy, cancer, evaluate=False)
    registry = sy.model_registry()
    registry.update_version(
        version.ref,
        intended_use="<script>alert('x')</script> for triage",
        limitations='<img src="http://evil.example/x.png"> fails on <b>small</b> tumours',
        description="a | b\nand <i>more</i>",
    )
    registry.cite(version.ref, kind="url", key="https://example.org/paper?a=1&b=<2>")
    made = build_card(registry, version.ref)

    _assert_loads_nothing(made.html, external_links, links_to={"example.org"})
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; for triage" in made.html
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in made.html
    assert "<b>small</b>" not in made.html and "<i>more</i>" not in made.html
    assert 'href="https://example.org/paper?a=1&amp;b=%3C2%3E"' in made.html
    # Markdown keeps the text; a table cell escapes | and folds the newline
    assert "| Description | a \\| b and <i>more</i> |" in made.markdown
    assert "<script>alert('x')</script> for triage" in made.markdown


def test_version_without_run_metrics_still_renders(
    sy: Any, cancer: dict[str, Any], external_links: Callable[[str], list[str]]
) -> None:
    version = _register(sy, cancer, evaluate=False)
    assert version.metrics == {}
    made = build_card(sy.model_registry(), "cancer")

    sections = _sections(made.markdown)
    assert "Metrics" in sections and "References" not in sections
    for absent in ("Slice metrics", "Per-class metrics", "Feature importance"):
        assert absent not in sections
    assert "> No metrics recorded." in made.markdown
    assert '`shipyard models edit cancer@1 --intended-use "..."`' in made.markdown
    assert "shipyard models edit cancer@1 --intended-use" in made.html
    assert "No promotion gates were checked for this version." in made.markdown
    assert made.data["metric_groups"] == {} and made.data["slices"] == {}
    _assert_loads_nothing(made.html, external_links)
    json.dumps(made.data, allow_nan=False)


def test_warnings_tag_is_listed_under_limitations(sy: Any, cancer: dict[str, Any]) -> None:
    warnings = {"shipyard.warnings": "target is imbalanced | 3 rows seen in training"}
    version = _register(sy, cancer, evaluate=False, tags=warnings)
    sy.model_registry().update_version(version.ref, limitations="Not validated on men.")
    made = build_card(sy.model_registry(), version.ref)

    assert made.data["warnings"] == ["target is imbalanced", "3 rows seen in training"]
    limitations = made.markdown.split("## Limitations\n")[1].split("\n## ")[0]
    assert "Not validated on men." in limitations
    assert "- target is imbalanced\n- 3 rows seen in training" in limitations


def test_beat_champion_shows_both_scores_and_forced_moves(sy: Any, cancer: dict[str, Any]) -> None:
    first = _register(sy, cancer, evaluate=False)
    second = _register(sy, cancer, evaluate=False, c=0.001)
    registry = sy.model_registry()
    registry.set_policy(
        "cancer",
        {"production": {"beat_champion": {"data": "cancer@test", "metric": "roc_auc",
                                          "target": "target", "margin": 0.5}}},
    )  # fmt: skip
    registry.promote("cancer", first.version, "production")
    registry.promote("cancer", second.version, "production", force=True, reason="hotfix <now>")
    made = build_card(registry, second.ref)

    result = made.data["gate_checks"][0]["results"][0]
    assert result["gate"] == "beat_champion" and result["passed"] is False
    challenger, champion = result["challenger"], result["champion"]
    scores = f"challenger {challenger:.4g} vs champion {champion:.4g} (v1), roc_auc on cancer@test"
    assert "| beat_champion | no | cancer@2 does not beat cancer@1 on cancer@test" in made.markdown
    assert scores in made.markdown and scores in made.html
    assert "### production: FAILED (" in made.markdown
    assert "| production | promote | 1 | 2 | " in made.markdown
    assert "| yes | hotfix <now> |" in made.markdown
    assert "<td>hotfix &lt;now&gt;</td>" in made.html


def test_unknown_version_is_not_found(sy: Any, cancer: dict[str, Any]) -> None:
    _register(sy, cancer, evaluate=False)
    with pytest.raises(NotFoundError, match="no version 7"):
        build_card(sy.model_registry(), "cancer@7")
