"""report.html as a reader sees it: headless Chromium renders every section of an agent run's assessment, offline.

Needs Debian's ``chromium`` (``.ci/run`` installs it); without it the test says so and skips.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import causalsynth as cs
from causalsynth.graphs.cli import main
from causalsynth.tools.causal.sampler import Sampler

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--mute-audio"]  # fmt: skip
SECTIONS = ("scorecard", "marginals", "pairwise", "dag", "utility", "privacy", "run")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium; .ci/run does)")
def test_report_of_an_agent_run_renders_every_section_offline(tmp_path, asia, capsys):
    # Setup: a real agent run (template realiser) and real rows from the same network
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["run", "examples/asia.yaml", "-n", "40", "--llm", "template", "--seed", "0", "--out", str(run_dir)])
    assert info.value.code in (0, None), capsys.readouterr().err
    sampler = Sampler(asia.network)
    real, hold = sampler.sample(600, seed=5).data, sampler.sample(300, seed=6).data
    # Run
    result = cs.assess(run_dir, real, hold, spec="asia", target="dysp", out=tmp_path / "out")
    page = result.html_path
    assert page is not None
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1200,4000", f"--screenshot={shot}", page.as_uri())
    # Assert: every section is in the rendered DOM, with its plots decoded
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'<section id="{section}"' in dom.stdout, section
    assert "Example texts and their facts" in dom.stdout
    assert page.stat().st_size < 3_000_000
    # ... and the screenshot is a page, not a blank canvas
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] >= 3000 and pixels.shape[1] >= 1000
    ink = np.mean(np.any(pixels < 0.9, axis=2))
    assert ink > 0.03, f"only {ink:.1%} of the screenshot is not white"
    assert float(pixels.std()) > 0.05
