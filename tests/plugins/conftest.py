"""Plugins installed for one test: a distribution's metadata (``*.dist-info/entry_points.txt``) and its modules in a
temporary folder on ``sys.path``, which is exactly what ``importlib.metadata`` reads for an installed package."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from causalsynth.tools import plugins

Install = Callable[..., Path]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install_plugin(dist, entry_points={group: {name: "module:attr"}}, modules={name: source})``."""
    added: list[str] = []

    def install(dist: str, entry_points: Mapping[str, Mapping[str, str]], modules: Mapping[str, str]) -> Path:
        root = tmp_path / f"site-{dist}"
        info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = []
        for group, entries in entry_points.items():
            lines.append(f"[{plugins.GROUPS[group]}]")
            lines += [f"{name} = {target}" for name, target in entries.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for name, source in modules.items():
            (root / f"{name}.py").write_text(textwrap.dedent(source))
            added.append(name)
        monkeypatch.syspath_prepend(str(root))
        plugins.refresh()
        return root

    yield install
    for name in added:
        sys.modules.pop(name, None)
    plugins.refresh()
