"""The built wheel, installed (not editable) into a fresh venv: one import root, packaged specs by short name."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A venv holding only the wheel; the project's dependencies come from this venv's site-packages by a .pth
    line (a plain path: that folder's own .pth files, the editable install among them, are not run)."""
    # Setup
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."]
    subprocess.run(build, cwd=ROOT, check=True, capture_output=True)
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "causalsynth_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("causalsynth-*.whl")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    return env_dir


def run_in(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_one_import_root_and_no_top_level_tools(fresh, tmp_path):
    # Run
    code = (
        "import importlib, causalsynth\n"
        "print(causalsynth.__file__)\n"
        "for name in ('tools', 'agents', 'graphs', 'retrieval_corpus'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        print('absent', name)\n"
    )
    done = run_in(fresh, tmp_path, str(fresh / "bin" / "python"), "-c", code)
    # Assert
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert str(fresh) in lines[0] and "site-packages" in lines[0]  # the installed copy, not the repo
    assert lines[1:] == ["absent tools", "absent agents", "absent graphs", "absent retrieval_corpus"]


def test_cli_runs_a_network_and_a_packaged_example_from_an_empty_folder(fresh, tmp_path):
    # Run
    cli = str(fresh / "bin" / "causalsynth")
    network = run_in(fresh, tmp_path, cli, "run", "asia", "-n", "5", "--llm", "template", "--out", "a")
    example = run_in(fresh, tmp_path, cli, "run", "clinic", "-n", "5", "--llm", "template", "--out", "c")
    tables = run_in(fresh, tmp_path, cli, "run", "hospital", "-n", "5", "--llm", "template", "--out", "h")
    # Assert
    assert network.returncode == 0, network.stderr
    assert example.returncode == 0, example.stderr
    assert tables.returncode == 0, tables.stderr
    assert (tmp_path / "a" / "records.parquet").is_file() and (tmp_path / "c" / "report.json").is_file()
    assert (tmp_path / "h" / "database.sqlite").is_file()


def test_examples_and_corpora_ship_as_package_data(fresh, tmp_path):
    # Run
    code = (
        "from importlib import resources\n"
        "ex = resources.files('causalsynth.examples')\n"
        "corpus = resources.files('causalsynth.retrieval_corpus')\n"
        "print(sorted(p.name for p in ex.iterdir() if p.name.endswith('.yaml')))\n"
        "print(len(list((corpus / 'asia' / 'notes').iterdir())))\n"
    )
    done = run_in(fresh, tmp_path, str(fresh / "bin" / "python"), "-c", code)
    # Assert
    assert done.returncode == 0, done.stderr
    names, notes = done.stdout.splitlines()
    assert {"'asia.yaml'", "'clinic.yaml'", "'hospital.yaml'", "'hospital.rules.lock.yaml'"} <= set(
        names.strip("[]").split(", ")
    )
    assert int(notes) == 36
