"""Where a causal network comes from: the bnlearn repository bundled with pgmpy, or a BIF/XMLBIF file."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from causalsynth.tools.causal.network import Network, cpt_sum_problem
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
