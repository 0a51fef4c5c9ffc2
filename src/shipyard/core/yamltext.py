"""YAML a person wrote: loaded strictly, and every error pointing at its line.

:func:`load_yaml` refuses a key given twice in one mapping (PyYAML keeps the last one
silently) and keeps keys YAML 1.1 reads as booleans (``on:``, ``yes:``) as the text
written; it returns the parsed data and the node tree, from which :func:`line_of` finds
the line of any value by its path. Rule files and pipeline specs share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from shipyard.core.errors import InvalidInputError

_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"


def line_of(root: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the value at ``path`` (keys and list indexes) under ``root``:
    the deepest part of the path that exists, None without a node tree."""
    node = root
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_yaml(text: str, origin: str) -> tuple[Any, yaml.Node | None]:
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_mappings(node, origin)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        where = f" line {line}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "it cannot be parsed"
        raise InvalidInputError(
            f"{origin}{where}: not valid YAML: {problem}; check the indentation there and "
            "quote values that hold ': ', ' #', '*', '{' or '['",
            details={"origin": origin, "line": line},
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"{origin}: not valid YAML: {exc}; fix the file's syntax",
            details={"origin": origin},
        ) from None
    finally:
        loader.dispose()
    return data, node


def _check_mappings(node: yaml.Node, origin: str) -> None:
    """Refuse a key given twice in one mapping, and keep keys YAML 1.1 reads as booleans
    (``on:``, ``yes:``) as the text written."""
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(node, ())]
    seen_nodes: set[int] = set()
    while stack:
        current, path = stack.pop()
        if id(current) in seen_nodes:  # an alias of a node already checked
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.tag == _BOOL_TAG:
                        key.tag = _STR_TAG
                    if key.value in keys and key.value != "<<":
                        line = key.start_mark.line + 1
                        inside = f"in `{'.'.join(path)}`" if path else "at the top of the file"
                        raise InvalidInputError(
                            f"{origin} line {line}: key {key.value!r} is given twice {inside}; "
                            "keep only one",
                            details={"origin": origin, "line": line, "key": key.value},
                        )
                    keys.add(key.value)
                    stack.append((value, (*path, key.value)))
                else:
                    stack.extend(((key, path), (value, path)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(current.value))


