"""Where a causal network comes from: the bnlearn repository bundled with pgmpy, or a BIF/XMLBIF file."""

from __future__ import annotations

import gzip
import importlib.resources
import warnings
from pathlib import Path
from typing import Any

from tools.errors import Problem
from tools.network import Network, cpt_sum_problem

_BUNDLE = ("pgmpy", "utils", "example_models")


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
    if not text.strip():
        return [Problem(where, f"the {kind.upper()} network file is empty")]
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
