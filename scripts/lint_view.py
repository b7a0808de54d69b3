"""Lay out the package as it installs (``causalsynth/tools``, ...) under ``build/lint`` for mypy and import-linter.

The repo keeps ``tools/``, ``agents/`` and ``graphs/`` at its root and maps them under ``causalsynth`` with
setuptools' ``package-dir``; type checkers and import graphs read folders, not that mapping, so this copies the
Python files into the installed shape, reading the mapping from ``pyproject.toml`` so the two cannot drift.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW = ROOT / "build" / "lint"


def lay_out(root: Path, view: Path) -> Path:
    """Copy the Python files of the repo at ``root`` into the installed shape under ``view``; return ``view``."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(view, ignore_errors=True)
    for package, folder in mapping.items():
        target = view.joinpath(*package.split("."))
        source = root / folder
        for path in source.rglob("*.py"):
            rel = path.relative_to(source)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            if rel.parts and (source / rel.parts[0]).is_dir() and ".".join([package, rel.parts[0]]) in mapping:
                continue  # a mapped subpackage is laid out from its own folder
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    return view


def main() -> int:
    """Rebuild the view and print its folder."""
    print(lay_out(ROOT, VIEW))
    return 0


if __name__ == "__main__":
    sys.exit(main())
