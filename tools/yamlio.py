"""YAML loading that keeps line numbers and treats ``yes``/``no`` as strings.

PyYAML follows YAML 1.1, where ``yes``, ``no``, ``on`` and ``off`` are booleans; bnlearn networks use
``yes``/``no`` as state names, so we resolve booleans the YAML 1.2 way (only ``true``/``false``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tools.errors import Problem, SpecError

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML text; return the data and a map from each key path to its 1-based line.

    Raises:
        SpecError: on a YAML syntax error (naming the line and column) or a duplicate key.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader rejects control characters already here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path, int] = {}
        problems: list[Problem] = []
        data = _build(loader, node, (), lines, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError(source, [Problem(where, f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [Problem(source, f"YAML error: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise SpecError(source, problems)
    return data, lines


def _build(loader: _Loader, node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                problems.append(Problem(f"line {key_node.start_mark.line + 1}", "mapping keys must be scalars"))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(
                    Problem(
                        f"line {key_node.start_mark.line + 1} {format_path(path)}",
                        f"duplicate key {key!r}",
                    )
                )
                continue
            out[key] = _build(loader, value_node, (*path, key), lines, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def format_path(path: Path) -> str:
    """Render a key path as ``a.b[2].c``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """Return the line of the closest recorded ancestor of ``path``."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None
