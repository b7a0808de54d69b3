"""YAML loading that keeps line numbers and treats ``yes``/``no`` as strings.

PyYAML follows YAML 1.1, where ``yes``, ``no``, ``on`` and ``off`` are booleans; bnlearn networks use
``yes``/``no`` as state names, so we resolve booleans the YAML 1.2 way (only ``true``/``false``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from causalsynth.tools.errors import Problem, SpecError

Path = tuple[str | int, ...]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 booleans.

    On libyaml where PyYAML has it: a fitted spec of 150,000 values loads in about 1 s instead of 8.
    """


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


#: Largest number of YAML nodes a spec may expand to (aliases count each time they are used).
MAX_NODES = 200_000
#: Deepest nesting accepted.
MAX_DEPTH = 64


class YamlInt(int):
    """An int that remembers how it was written (``007``), so a state name keeps its spelling."""

    raw: str


class YamlFloat(float):
    """A float that remembers how it was written (``1.10``), so a state name keeps its spelling."""

    raw: str


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML text; return the data and a map from each key path to its 1-based line.

    Aliases are built once and shared; expansion is capped, so an "alias bomb" is an error, not a hang.

    Raises:
        SpecError: on a YAML syntax error (naming the line and column), a duplicate key, a recursive alias, or
            a document that nests or expands too far.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        builder = _Builder(loader, source)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError(source, [Problem(where, f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [Problem(source, f"YAML error: {exc}")]) from None
    except _TooBig as exc:
        raise SpecError(source, [Problem(source, str(exc))]) from None
    except RecursionError:  # the composer recurses once per nesting level
        raise SpecError(source, [Problem(source, f"nested deeper than {MAX_DEPTH} levels")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.problems:
        raise SpecError(source, builder.problems)
    return data, builder.lines


class _TooBig(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into Python values, recording lines and collecting problems."""

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self._memo: dict[int, tuple[Any, int]] = {}  # node id -> (value, expanded size)
        self._active: set[int] = set()
        self._count = 0

    def _where(self, node: yaml.Node, path: Path) -> str:
        return f"{self.source}:{node.start_mark.line + 1} {format_path(path)}"

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        key = id(node)
        if key in self._memo:  # an alias: reuse, but count its size against the budget
            value, size = self._memo[key]
            self._spend(size)
            return value
        if key in self._active:
            self.problems.append(Problem(self._where(node, path), "recursive YAML alias"))
            return None
        if len(path) > MAX_DEPTH:
            raise _TooBig(f"{self._where(node, path)}: nested deeper than {MAX_DEPTH} levels")
        self._active.add(key)
        before = self._count
        self._spend(1)
        try:
            value = self._construct(node, path)
        finally:
            self._active.discard(key)
        self._memo[key] = (value, self._count - before)
        return value

    def _spend(self, size: int) -> None:
        self._count += size
        if self._count > MAX_NODES:
            raise _TooBig(f"the document expands to more than {MAX_NODES:,} values (aliases included)")

    def _construct(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, int) and not isinstance(value, bool):
            value = YamlInt(value)
            value.raw = str(node.value)
        elif isinstance(value, float):
            value = YamlFloat(value)
            value.raw = str(node.value)
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        n_merge_keys = sum(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)
        explicit = len(node.value) - n_merge_keys
        self.loader.flatten_mapping(node)  # merged pairs come first; explicit keys may override them
        n_merged = len(node.value) - explicit
        out: dict[str, Any] = {}
        seen: set[str] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            raw_key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(raw_key, str | int | float | bool):
                self.problems.append(Problem(self._where(key_node, path), "mapping keys must be scalars"))
                continue
            key = scalar_text(raw_key) if not isinstance(raw_key, str) else raw_key
            if isinstance(raw_key, int | float) and not isinstance(raw_key, bool):
                key = str(key_node.value)
            if i >= n_merged:
                if key in seen:
                    self.problems.append(Problem(self._where(key_node, path), f"duplicate key {key!r}"))
                    continue
                seen.add(key)
            out[key] = self.build(value_node, (*path, key))
        return out


def scalar_text(value: Any) -> Any:
    """A YAML scalar used as a name, as text: numbers as written, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, YamlInt | YamlFloat):
        return value.raw
    if isinstance(value, int | float):
        return str(value)
    return value


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
