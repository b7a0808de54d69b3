"""README "Write a plugin": the text's own files, installed as pip installs them, give a working validator."""

from __future__ import annotations

import re
import tomllib

import pandas as pd

from causalsynth.graphs.api import generate
from tests.conftest import ROOT
from tests.plugins.test_tools import asia_with

SECTION = (ROOT / "README.md").read_text().split("## Write a plugin", 1)[1]


def heredocs(script: str) -> dict[str, str]:
    """``cat > FILE <<'END' ... END`` blocks of a shell script, by file name."""
    return {m[0]: m[2] for m in re.findall(r"cat > (\S+) <<'(\w+)'\n(.*?)\n\2\n", script, re.S)}


def test_the_readme_goes_from_an_empty_folder_to_a_working_validator_in_under_30_lines(tmp_path, install_plugin):
    # Setup: the README's commands and the spec lines that name the tool
    script = re.search(r"```bash\n(.*?)```", SECTION, re.S).group(1)
    spec_block = re.search(r"```yaml\n(.*?)```", SECTION, re.S).group(1)
    assert len(script.splitlines()) + len(spec_block.splitlines()) < 30
    files = heredocs(script)
    project = tomllib.loads(files["pyproject.toml"])
    entry_points = {group.removeprefix("causalsynth."): dict(eps)
                    for group, eps in project["project"]["entry-points"].items()}  # fmt: skip
    install_plugin(project["project"]["name"], entry_points, {"ward_checks": files["ward_checks.py"]})
    # Run
    result = generate(asia_with(tmp_path, spec_block), 40, seed=0, llm="template", out=tmp_path / "run")
    # Assert: the validator flagged notes, and no accepted note keeps a banned abbreviation
    assert result.report["violations"]["tool"] > 0
    written = pd.read_parquet(tmp_path / "run" / "records.parquet")
    assert len(written) > 0 and not written["text"].str.contains(r"\bTB\b|\bSOB\b").any()
    corrected = sum(n for rounds, n in result.report["rounds_histogram"].items() if rounds != "0")
    assert corrected > 0 and result.report["n_accepted"] + result.report["n_rejected"] == 40
