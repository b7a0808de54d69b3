"""Where a causal network comes from: the bnlearn repository bundled with pgmpy, or a BIF/XMLBIF file."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import itertools
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.causal.network import Network, Node, cpt_sum_problem
from causalsynth.tools.errors import Problem

_BUNDLE = ("pgmpy", "utils", "example_models")
_CACHE_VERSION = "1"


def cache_dir() -> Path:
    """Where parsed networks are cached: ``$CAUSALSYNTH_CACHE`` or ``~/.cache/causalsynth``."""
    root = os.environ.get("CAUSALSYNTH_CACHE") or Path.home() / ".cache" / "causalsynth"
    return Path(root) / "networks"


def bnlearn_names() -> list[str]:
    """Names of the discrete bnlearn networks shipped inside the installed pgmpy (offline)."""
    folder = importlib.resources.files(_BUNDLE[0]).joinpath(*_BUNDLE[1:])
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".bif.gz") for p in folder.iterdir() if p.name.endswith(".bif.gz"))


def load_bnlearn(name: str, where: str) -> Network | list[Problem]:
    """Load a bundled bnlearn network by name, or return the problems (unknown name, listing valid ones)."""
    names = bnlearn_names()
    if name not in names:
        if not names:
            return [Problem(where, "the installed pgmpy ships no bnlearn networks (causalsynth needs pgmpy 1.1.0)")]
        return [Problem(where, f"unknown bnlearn network {name!r}; valid names: {', '.join(names)}")]
    blob = importlib.resources.files(_BUNDLE[0]).joinpath(*_BUNDLE[1:], f"{name}.bif.gz").read_bytes()
    return _from_reader("bif", gzip.decompress(blob).decode("utf-8"), name, where)


def load_network_file(path: Path, where: str) -> Network | list[Problem]:
    """Load a ``.bif`` / ``.xmlbif`` / ``.xml`` network file (optionally ``.gz``), or return the problems."""
    if not path.is_file():
        return [Problem(where, f"network file not found: {path}")]
    name = path.name.removesuffix(".gz")
    kind = "bif" if name.endswith(".bif") else "xmlbif" if name.endswith((".xmlbif", ".xml")) else None
    if kind is None:
        return [Problem(where, f"{path}: unknown network format; use .bif, .xmlbif or .xml (optionally .gz)")]
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        return [Problem(where, f"cannot read {path}: {exc}")]
    return _from_reader(kind, text, name.rsplit(".", 1)[0], f"{where} ({path})")


def _from_reader(kind: str, text: str, name: str, where: str) -> Network | list[Problem]:
    """Parse with pgmpy, or reuse the cached parse of the same text (pgmpy's import and parse take seconds)."""
    if not text.strip():
        return [Problem(where, f"the {kind.upper()} network file is empty")]
    key = hashlib.sha256(f"{_CACHE_VERSION}\0{kind}\0{name}\0{text}".encode()).hexdigest()
    cached = cache_dir() / f"{key}.json"
    try:
        return Network.from_dict(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet, or unreadable: parse again
    result = _parse(kind, text, name, where)
    if isinstance(result, Network):
        _store(cached, result)
    return result


def _store(path: Path, network: Network) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(network.to_dict(), handle)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs speed


def _parse(kind: str, text: str, name: str, where: str) -> Network | list[Problem]:
    if kind == "bif":
        plain = read_plain_bif(text, name)
        if plain is not None:
            return plain
    return parse_with_pgmpy(kind, text, name, where)


def parse_with_pgmpy(kind: str, text: str, name: str, where: str) -> Network | list[Problem]:
    """Parse a BIF or XMLBIF text with pgmpy's readers, checking every CPT; the problems found otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgmpy.readwrite import BIFReader, XMLBIFReader

        try:
            reader: Any = BIFReader(string=text) if kind == "bif" else XMLBIFReader(string=text)
            model = reader.get_model()
        except Exception as exc:  # noqa: BLE001 - pgmpy's parsers raise many unrelated types
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [Problem(where, f"cannot parse {kind.upper()} network: {detail}")]
    if len(model.nodes()) == 0:
        return [Problem(where, f"no variables with probability tables found: is this a {kind.upper()} network?")]
    problems: list[Problem] = []
    for var in model.nodes():
        cpd = model.get_cpds(var)
        if cpd is None:
            problems.append(Problem(where, f"variable {var} has no probability table"))
            continue
        values = cpd.get_values().reshape(cpd.variable_card, -1)
        for col in range(values.shape[1]):
            reason = cpt_sum_problem(values[:, col])
            if reason:
                problems.append(Problem(where, f"CPT of {var}, parent configuration #{col}: {reason}"))
    if problems:
        return problems
    try:
        return Network.from_pgmpy(model, name=name)
    except ValueError as exc:
        return [Problem(where, str(exc))]


_VARIABLE = re.compile(r"variable\s+([^\s{]+)\s*\{\s*type\s+discrete\s*\[\s*(\d+)\s*\]\s*\{([^}]*)\}\s*;\s*\}")
_PROBABILITY = re.compile(r"probability\s*\(\s*([^\s|)]+)\s*(?:\|([^)]*))?\)\s*\{([^}]*)\}")
_TABLE = re.compile(r"\s*table\s+([^;]*);\s*")
_ROW = re.compile(r"\s*\(([^)]*)\)\s*([^;]*);")


def read_plain_bif(text: str, name: str) -> Network | None:
    """Read a BIF file in the plain form bnlearn writes (every network pgmpy bundles) in a fraction of a second.

    pgmpy's grammar-based reader takes seconds to tens of seconds on the larger networks (DIABETES, MUNIN). Any
    text outside that form (comments, quotes, properties, ``default`` rows, a ``table`` with parents, a missing or
    repeated parent configuration, a row that does not sum to 1) returns None, for pgmpy's reader to parse and
    report on. Gives the same network as pgmpy: nodes in declaration order, parents as listed.
    """
    if any(mark in text for mark in ('"', "/*", "//", "property", "default")):
        return None
    variables = _VARIABLE.findall(text)
    blocks = _PROBABILITY.findall(text)
    if len(variables) != len(re.findall(r"\bvariable\b", text)) or len(blocks) != len(variables):
        return None
    states: dict[str, tuple[str, ...]] = {}
    for var, card, raw in variables:
        names = [s.strip() for s in raw.split(",") if s.strip()] if "," in raw else raw.split()
        if var in states or len(names) != int(card) or len(set(names)) != len(names):
            return None
        states[var] = tuple(names)
    tables: dict[str, tuple[tuple[str, ...], NDArray[np.float64]]] = {}
    for var, given, body in blocks:
        parents = tuple(p.strip() for p in given.split(",")) if given and given.strip() else ()
        if var not in states or var in tables or any(p not in states for p in parents):
            return None
        cpt = _plain_cpt(body, states[var], [states[p] for p in parents])
        if cpt is None:
            return None
        tables[var] = (parents, cpt)
    if set(tables) != set(states):
        return None
    try:
        return Network([Node(v, states[v], *tables[v]) for v in states], name=name)
    except ValueError:
        return None  # a cycle or an unknown parent: pgmpy's reader reports it


def _plain_cpt(body: str, own: tuple[str, ...], parents: list[tuple[str, ...]]) -> NDArray[np.float64] | None:
    """The CPT of one ``probability`` block (rows: parent configurations, last parent fastest), or None."""
    try:
        table = _TABLE.fullmatch(body)
        if table is not None:
            values = [float(v) for v in table.group(1).split(",")]
            if parents or len(values) != len(own):
                return None
            rows = np.array([values])
        else:
            index = {cfg: i for i, cfg in enumerate(itertools.product(*parents))}
            rows = np.full((len(index), len(own)), np.nan)
            found = _ROW.findall(body)
            if len(found) != len(index) or _ROW.sub("", body).strip():
                return None
            for config, numbers in found:
                values = [float(v) for v in numbers.split(",")]
                key = tuple(s.strip() for s in config.split(","))
                if key not in index or len(values) != len(own) or not np.isnan(rows[index[key], 0]):
                    return None
                rows[index[key]] = values
    except ValueError:
        return None  # a number that does not parse
    if any(cpt_sum_problem(row) for row in rows):
        return None
    return rows
