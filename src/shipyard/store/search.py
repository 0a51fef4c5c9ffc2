"""The run search language: a parser for filter and order-by strings and their SQL translation.

Grammar::

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := unary ("AND" unary)*
    unary      := "NOT" unary | "(" or_expr ")" | comparison
    comparison := ident op value | ident ["NOT"] "IN" "(" value ("," value)* ")"
                | ident "IS" ["NOT"] "NULL"
    ident      := [prefix "."] name        prefix: metrics params tags attributes
                                           (also metric param tag attribute attr run)
    name       := word | `quoted` | "quoted" | 'quoted'
    op         := = | != | <> | < | <= | > | >= | LIKE | ILIKE | NOT LIKE | NOT ILIKE
    value      := number | 'string' | "string"

Examples: ``metrics.f1 > 0.8 and params.model = 'rf'``,
``tags."data set" IN ('a', 'b')``, ``status = 'FINISHED' AND metrics.loss IS NOT NULL``.
A syntax error raises :class:`FilterSyntaxError` with the position and a caret.
Everything compiles to one SQL statement: no run is loaded into Python to be filtered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true
from sqlalchemy.sql import Select

from shipyard.core.entities import LifecycleStage, RunStatus
from shipyard.core.errors import FilterSyntaxError, InvalidInputError
from shipyard.store.schema import latest_metrics, params, runs, tags

_PREFIXES = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}
# public attribute name -> (column name, kind)
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("run_id", "str"),
    "run_name": ("name", "str"),
    "name": ("name", "str"),
    "status": ("status", "str"),
    "start_time": ("start_time", "num"),
    "end_time": ("end_time", "num"),
    "experiment_id": ("experiment_id", "num"),
    "user": ("user", "str"),
    "parent_run_id": ("parent_run_id", "str"),
    "entry_point": ("entry_point", "str"),
    "git_commit": ("git_commit", "str"),
    "python_version": ("python_version", "str"),
    "description": ("description", "str"),
}
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"}
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))(?![\w.])
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<bq>`[^`]*`)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w\-:/]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, bq, op, punct, word, end
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Ident:
    entity: str  # metric | param | tag | attr
    key: str


@dataclass(frozen=True, slots=True)
class Comparison:
    ident: Ident
    op: str  # = != < <= > >= LIKE ILIKE NOT LIKE NOT ILIKE IN NOT IN IS NULL IS NOT NULL
    value: Any


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND | OR | NOT
    items: tuple[Any, ...]


def _error(source: str, pos: int, message: str) -> FilterSyntaxError:
    caret = " " * pos + "^"
    return FilterSyntaxError(
        f"filter syntax error at position {pos}: {message}\n  {source}\n  {caret}",
        details={"position": pos, "filter": source},
    )


def tokenize(source: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if not m:
            raise _error(source, pos, f"unexpected character {source[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(source)))
    return out


def _unquote(tok: Token) -> str:
    body = tok.text[1:-1]
    if tok.text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = tokenize(source)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def kw(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.upper() in words

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def fail(self, message: str, tok: Token | None = None) -> FilterSyntaxError:
        t = tok or self.tok
        got = "the end of the filter" if t.kind == "end" else repr(t.text)
        return _error(self.source, t.pos, f"{message}, got {got}")

    def parse(self) -> Any:
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.fail("expected AND, OR or the end of the filter")
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.kw("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self) -> Any:
        items = [self.unary()]
        while self.kw("AND"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def unary(self) -> Any:
        if self.kw("NOT"):
            self.advance()
            return BoolOp("NOT", (self.unary(),))
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            node = self.or_expr()
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.fail("expected ')'")
            self.advance()
            return node
        return self.comparison()

    def name_part(self) -> str:
        tok = self.tok
        if tok.kind == "word":
            self.advance()
            return tok.text
        if tok.kind in ("str", "bq"):
            self.advance()
            return _unquote(tok)
        raise self.fail("expected a name such as metrics.f1, params.model or status")

    def ident(self) -> Ident:
        start = self.tok
        first = self.name_part()
        if self.tok.kind == "punct" and self.tok.text == ".":
            self.advance()
            entity = _PREFIXES.get(first.lower())
            if entity is None:
                raise _error(
                    self.source,
                    start.pos,
                    f"unknown prefix {first!r}; use metrics., params., tags. or attributes.",
                )
            key_tok = self.tok
            key = self.name_part()
            # unquoted keys may contain dots: metrics.val.loss
            while key_tok.kind == "word" and self.tok.kind == "punct" and self.tok.text == ".":
                self.advance()
                key += "." + self.name_part()
            if entity == "attr" and key not in ATTRIBUTES:
                raise _error(
                    self.source,
                    key_tok.pos,
                    f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}",
                )
            return Ident(entity, key)
        if first in ATTRIBUTES and start.kind == "word":
            return Ident("attr", first)
        raise _error(
            self.source,
            start.pos,
            f"{first!r} is not a known attribute; prefix it with metrics., params. or tags.",
        )

    def value(self) -> Any:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            text = tok.text
            return float(text) if any(c in text for c in ".eE") else int(text)
        if tok.kind == "str":
            self.advance()
            return _unquote(tok)
        raise self.fail("expected a number or a quoted string")

    def comparison(self) -> Comparison:
        ident = self.ident()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return self.check(Comparison(ident, op, self.value()), tok)
        negate = False
        if self.kw("NOT"):
            self.advance()
            negate = True
        if self.kw("LIKE", "ILIKE"):
            word = self.advance().text.upper()
            return self.check(
                Comparison(ident, ("NOT " if negate else "") + word, self.value()), tok
            )
        if self.kw("IN"):
            self.advance()
            if not (self.tok.kind == "punct" and self.tok.text == "("):
                raise self.fail("expected '(' after IN")
            self.advance()
            values = [self.value()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.value())
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.fail("expected ',' or ')' in the IN list")
            self.advance()
            return self.check(Comparison(ident, "NOT IN" if negate else "IN", tuple(values)), tok)
        if not negate and self.kw("IS"):
            self.advance()
            is_not = False
            if self.kw("NOT"):
                self.advance()
                is_not = True
            if not self.kw("NULL"):
                raise self.fail("expected NULL after IS")
            self.advance()
            return Comparison(ident, "IS NOT NULL" if is_not else "IS NULL", None)
        raise self.fail("expected an operator (= != < <= > >= LIKE ILIKE IN IS)", tok)

    def check(self, cmp: Comparison, tok: Token) -> Comparison:
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        is_text = any(isinstance(v, str) for v in values)
        if cmp.ident.entity == "metric" and is_text:
            raise _error(
                self.source,
                tok.pos,
                f"metric {cmp.ident.key!r} is numeric; compare it with a number, not a string",
            )
        if "LIKE" in cmp.op and not all(isinstance(v, str) for v in values):
            raise _error(self.source, tok.pos, "LIKE and ILIKE need a quoted pattern")
        if cmp.ident.entity == "metric" and "LIKE" in cmp.op:
            raise _error(self.source, tok.pos, "LIKE does not apply to metrics")
        if cmp.ident.entity == "attr" and cmp.ident.key == "status" and "LIKE" not in cmp.op:
            for v in values:
                if str(v).upper() not in RunStatus.__members__:
                    raise _error(
                        self.source,
                        tok.pos,
                        f"status {v!r} is not one of {', '.join(RunStatus.__members__)}",
                    )
        return cmp


def parse_filter(source: str | None) -> Any:
    """Parse a filter string into an AST (None for an empty filter)."""
    if source is None or not source.strip():
        return None
    return _Parser(source).parse()


@dataclass(frozen=True, slots=True)
class OrderKey:
    ident: Ident
    descending: bool


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderKey]:
    """Parse ``["metrics.f1 DESC", "params.model"]`` into order keys."""
    out: list[OrderKey] = []
    for clause in clauses or ():
        p = _Parser(clause)
        ident = p.ident()
        desc = False
        if p.kw("ASC", "DESC"):
            desc = p.advance().text.upper() == "DESC"
        if p.tok.kind != "end":
            raise p.fail("expected ASC, DESC or the end of the order-by clause")
        out.append(OrderKey(ident, desc))
    return out


# -- SQL translation -------------------------------------------------------------------


def _cmp(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "NOT LIKE":
        return column.not_like(value)  # type: ignore[no-any-return]
    if op == "ILIKE":
        return column.ilike(value)  # type: ignore[no-any-return]
    if op == "NOT ILIKE":
        return column.not_ilike(value)  # type: ignore[no-any-return]
    if op == "IN":
        return column.in_(value)  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(value)  # type: ignore[no-any-return]
    raise InvalidInputError(f"unsupported operator {op}")


def _kv_condition(table: Any, key: str, op: str, value: Any, numeric: bool) -> ColumnElement[bool]:
    """EXISTS (row of ``table`` for this run and key whose value matches)."""
    base = (table.c.run_pk == runs.c.pk) & (table.c.key == key)
    if op == "IS NULL":
        return not_(exists().where(base))
    if op == "IS NOT NULL":
        return exists().where(base)
    column = table.c.num_value if numeric else table.c.value
    return exists().where(base & _cmp(column, op, value))


def compile_filter(node: Any) -> ColumnElement[bool]:
    """Translate a parsed filter into a WHERE clause over ``runs``."""
    if node is None:
        return true()
    if isinstance(node, BoolOp):
        parts = [compile_filter(n) for n in node.items]
        if node.op == "AND":
            return and_(*parts)
        if node.op == "OR":
            return or_(*parts)
        return not_(parts[0])
    cmp: Comparison = node
    entity, key, op, value = cmp.ident.entity, cmp.ident.key, cmp.op, cmp.value
    values = value if isinstance(value, tuple) else (value,)
    if entity == "metric":
        if op in ("IS NULL", "IS NOT NULL"):
            return _kv_condition(latest_metrics, key, op, None, numeric=False)
        base = (latest_metrics.c.run_pk == runs.c.pk) & (latest_metrics.c.key == key)
        return exists().where(base & _cmp(latest_metrics.c.value, op, value))
    if entity == "param":
        numeric = (
            "LIKE" not in op
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            and op not in ("IS NULL", "IS NOT NULL")
        )
        return _kv_condition(params, key, op, value, numeric)
    if entity == "tag":
        if op not in ("IS NULL", "IS NOT NULL"):
            value = tuple(str(v) for v in values) if isinstance(value, tuple) else str(value)
        return _kv_condition(tags, key, op, value, numeric=False)
    column_name, kind = ATTRIBUTES[key]
    column = runs.c[column_name]
    if op == "IS NULL":
        return column.is_(None)
    if op == "IS NOT NULL":
        return column.is_not(None)
    if key == "status" and "LIKE" not in op:
        value = (
            tuple(str(v).upper() for v in values)
            if isinstance(value, tuple)
            else str(value).upper()
        )
    elif kind == "num":
        if any(isinstance(v, str) for v in values):
            raise InvalidInputError(f"attribute {key} is numeric; compare it with a number")
    elif kind == "str":
        value = tuple(str(v) for v in values) if isinstance(value, tuple) else str(value)
    if key == "experiment_id":
        value = tuple(int(v) for v in values) if isinstance(value, tuple) else int(value)
    return _cmp(column, op, value)


def apply_order(query: Select[Any], order: list[OrderKey]) -> Select[Any]:
    """Join what the order keys need and add ORDER BY (missing values last), then defaults."""
    for i, item in enumerate(order):
        entity, key = item.ident.entity, item.ident.key
        if entity == "attr":
            column: Any = runs.c[ATTRIBUTES[key][0]]
        else:
            table = {"metric": latest_metrics, "param": params, "tag": tags}[entity]
            alias = table.alias(f"ord{i}")
            query = query.outerjoin(alias, (alias.c.run_pk == runs.c.pk) & (alias.c.key == key))
            column = alias.c.value
            if entity == "param":
                query = query.order_by(alias.c.num_value.is_(None))
                query = query.order_by(
                    alias.c.num_value.desc() if item.descending else alias.c.num_value.asc()
                )
        query = query.order_by(column.is_(None))
        query = query.order_by(column.desc() if item.descending else column.asc())
    return query.order_by(runs.c.start_time.desc(), runs.c.run_id.asc())


def base_query(experiment_ids: list[int], stage: str | None) -> Select[Any]:
    query = (
        select(runs.c.pk).where(runs.c.experiment_id.in_(experiment_ids))
        if experiment_ids
        else select(runs.c.pk).where(false())
    )
    if stage is not None:
        query = query.where(runs.c.lifecycle_stage == stage)
    return query


def lifecycle_filter(view: str) -> str | None:
    """``active`` (default), ``deleted`` or ``all`` -> the stage to filter on, or None."""
    if view == "active":
        return LifecycleStage.ACTIVE.value
    if view == "deleted":
        return LifecycleStage.DELETED.value
    if view == "all":
        return None
    raise InvalidInputError(f"view must be 'active', 'deleted' or 'all', got {view!r}")


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_page_token(offset: int, fp: str) -> str:
    raw = json.dumps({"o": offset, "f": fp}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str | None, fp: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        token_fp = str(data["f"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"page token {token!r} is malformed; pass the next_page_token "
            "returned by the previous search"
        ) from exc
    if token_fp != fp:
        raise InvalidInputError(
            "page token belongs to a different search (filter, order or "
            "experiments changed); start again without a page token"
        )
    return offset
