"""The plugin registry: names only, never import paths; broken plugins reported by name and skipped."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from causalsynth.graphs.api import build_graph, generate, sample
from causalsynth.graphs.builder import compile_graph
from causalsynth.tools import plugins
from causalsynth.tools.errors import SpecError, UsageError
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT, run_cli

ASIA = (ROOT / "examples" / "asia.yaml").read_text()

GOOD_TOOL = """
from langchain_core.tools import tool

@tool
def shout_check(text: str) -> list[str]:
    '''Flag texts written in capitals.'''
    return ["written in capitals"] if text.isupper() else []
"""


def spec_with(tmp_path: Path, block: str) -> Path:
    path = tmp_path / "asia_plugins.yaml"
    text = ASIA.replace("  bnlearn: asia\n", "  bnlearn: asia\n" + block.rstrip("\n") + "\n", 1)
    path.write_text(text.replace("../retrieval_corpus/asia", str(ROOT / "retrieval_corpus" / "asia")))
    return path


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module that would leave a marker file if anything imported it."""
    marker = tmp_path / "imported.marker"
    (tmp_path / "hostile_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef evil(*a, **k):\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


@pytest.mark.parametrize(
    "block",
    [
        "plugins: {validators: ['hostile_mod:evil']}",
        "plugins: {generator_tools: [hostile_mod.evil]}",
        "plugins: {nodes: [{name: 'hostile_mod:evil', at: after_generation}]}",
        "plugins: {metrics: [os.system]}",
    ],
)
def test_a_spec_naming_a_module_path_is_refused_and_imports_nothing(tmp_path, hostile, block):
    # Setup
    spec = spec_with(tmp_path, block)
    # Run
    with pytest.raises(SpecError) as info:
        load_domain(spec)
    # Assert
    assert "is not a plugin name" in str(info.value) and "asia_plugins.yaml:" in str(info.value)
    assert not hostile.exists() and "hostile_mod" not in sys.modules


def test_a_table_column_naming_a_module_as_provider_is_refused_and_imports_nothing(tmp_path, hostile):
    # Setup
    text = (
        (ROOT / "examples" / "hospital.yaml").read_text().replace("provider: first_name", "provider: hostile_mod.evil")
    )
    (tmp_path / "hospital.yaml").write_text(text)
    (tmp_path / "hospital.rules.lock.yaml").write_text((ROOT / "examples" / "hospital.rules.lock.yaml").read_text())
    # Run
    with pytest.raises(SpecError) as info:
        load_domain(tmp_path / "hospital.yaml")
    # Assert
    assert "unknown provider 'hostile_mod.evil'" in str(info.value)
    assert not hostile.exists() and "hostile_mod" not in sys.modules


def test_a_noise_model_given_as_a_module_path_is_refused_and_imports_nothing(hostile):
    with pytest.raises(UsageError, match="is not a plugin name"):
        sample("asia", 5, noise_model="hostile_mod:evil")
    assert not hostile.exists() and "hostile_mod" not in sys.modules


def test_the_cli_refuses_a_hostile_spec_with_one_error_line(tmp_path, hostile, capsys):
    spec = spec_with(tmp_path, "plugins: {validators: ['hostile_mod:evil']}")
    code, out, err = run_cli(capsys, "run", str(spec), "-n", "3", "--llm", "template", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: ") and "not a plugin name" in err and "Traceback" not in err
    assert not hostile.exists()


def test_an_unknown_plugin_name_is_a_spec_problem_with_its_line(tmp_path):
    spec = spec_with(tmp_path, "plugins:\n  validators: [no_such_check]\n")
    with pytest.raises(
        SpecError, match=r"asia_plugins.yaml:13 plugins.validators\[0\].*no tools plugin named 'no_such_check'"
    ):
        load_domain(spec)


def test_broken_plugins_are_reported_by_name_skipped_and_never_half_registered(install_plugin):
    # Setup
    install_plugin(
        "broken-plugins",
        {
            "tools": {
                "shout_check": "good_tools:shout_check",
                "needs_missing": "bad_import:thing",
                "not_a_tool": "wrong_type:NUMBER",
            },
            "value_providers": {"plain_function": "wrong_type:draw"},
        },  # fmt: skip
        {
            "good_tools": GOOD_TOOL,
            "bad_import": "import no_such_package_xyz\nthing = 1\n",
            "wrong_type": "NUMBER = 42\ndef draw(rng, n, col):\n    return ['x'] * n\n",
        },  # fmt: skip
    )
    # Run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, failed = plugins.load_group("tools", plugins.check_tool)
    # Assert
    assert ok["shout_check"].name == "shout_check" and not {"needs_missing", "not_a_tool"} & set(ok)
    assert "ModuleNotFoundError" in failed["needs_missing"] and "expected a LangChain tool" in failed["not_a_tool"]
    skipped = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginWarning)]
    assert any("'needs_missing'" in m for m in skipped) and any("'not_a_tool'" in m for m in skipped)
    with pytest.raises(plugins.PluginError, match="not_a_tool"):  # still refused when asked again: not cached
        plugins.load("tools", "not_a_tool", plugins.check_tool)


def test_the_plugins_command_lists_each_plugin_its_distribution_and_the_broken_ones(install_plugin, capsys):
    install_plugin(
        "broken-plugins",
        {"tools": {"shout_check": "good_tools:shout_check", "needs_missing": "bad_import:thing"}},
        {"good_tools": GOOD_TOOL, "bad_import": "import no_such_package_xyz\nthing = 1\n"},
    )
    code, out, err = run_cli(capsys, "plugins")
    assert code == 0
    line = next(x for x in out.splitlines() if " shout_check " in x)
    assert line.startswith("tools") and "broken-plugins 1.0" in line and "good_tools:shout_check" in line
    assert line.endswith("[ok]")
    assert "needs_missing" in out and "[skipped]" in out
    assert "warning: plugin tools/needs_missing (broken-plugins 1.0)" in err and "ModuleNotFoundError" in err


def test_a_spec_naming_a_plugin_that_fails_to_load_says_which_and_why(tmp_path, install_plugin):
    install_plugin("broken-plugins", {"tools": {"needs_missing": "bad_import:thing"}},
                   {"bad_import": "import no_such_package_xyz\nthing = 1\n"})  # fmt: skip
    domain = load_domain(spec_with(tmp_path, "plugins: {validators: [needs_missing]}"))
    with pytest.raises(SpecError, match="needs_missing.*failed to load: ModuleNotFoundError"):
        _ = domain.plugins


def test_a_value_provider_or_realiser_factory_that_raises_is_named_in_one_error_line(tmp_path, install_plugin, capsys):
    # Setup
    install_plugin(
        "flaky-plugins",
        {"value_providers": {"bad_names": "flaky:bad_names"}, "realisers": {"bad_writer": "flaky:bad_writer"}},
        {"flaky": """
            from causalsynth import ValueProvider

            def _draw(rng, n, column):
                raise RuntimeError("name service down")

            bad_names = ValueProvider(draw=_draw, types=("string",))

            def bad_writer(lexicon, seed):
                raise RuntimeError("no licence")
            """},
    )  # fmt: skip
    text = (ROOT / "examples" / "hospital.yaml").read_text().replace("provider: first_name", "provider: bad_names")
    (tmp_path / "hospital.yaml").write_text(text)
    (tmp_path / "hospital.rules.lock.yaml").write_text((ROOT / "examples" / "hospital.rules.lock.yaml").read_text())
    # Run
    code, _, err = run_cli(capsys, "run", str(tmp_path / "hospital.yaml"), "-n", "3", "--llm", "template",
                           "--out", str(tmp_path / "o"))  # fmt: skip
    code2, _, err2 = run_cli(capsys, "run", "asia", "-n", "3", "--llm", "plugin:bad_writer", "--no-retrieval",
                             "--out", str(tmp_path / "o2"))  # fmt: skip
    # Assert
    assert code == 2 and "provider bad_names failed on patients.first_name: RuntimeError: name service down" in err
    assert code2 == 2 and "plugin:bad_writer: the plugin's realiser factory failed: RuntimeError: no licence" in err2
    assert "Traceback" not in err + err2


def test_a_run_is_unaffected_by_broken_plugins_it_does_not_name(tmp_path, install_plugin):
    install_plugin(
        "broken-plugins",
        {
            "tools": {
                "shout_check": "good_tools:shout_check",
                "needs_missing": "bad_import:thing",
                "not_a_tool": "wrong_type:NUMBER",
            }
        },  # fmt: skip
        {
            "good_tools": GOOD_TOOL,
            "bad_import": "import no_such_package_xyz\nthing = 1\n",
            "wrong_type": "NUMBER = 1\n",
        },
    )
    result = generate(spec_with(tmp_path, "plugins: {validators: [shout_check]}"), 30, llm="template")
    assert result.report["n_accepted"] == 30 and result.report["violations"] == {}


def test_a_graph_node_plugin_brings_its_own_routing(tmp_path, install_plugin):
    install_plugin("routing-plugin", {"nodes": {"triage_desk": "desk:triage_desk"}}, {"desk": """
        from causalsynth import GraphNode

        def _look(state, runtime):
            return {}

        def _route(state) -> str:
            return "next"

        triage_desk = GraphNode("triage_desk", _look, at="after_generation", router=_route,
                                targets={"rewrite": "generate", "next": "next"})
        """})  # fmt: skip
    domain = load_domain(spec_with(tmp_path, "plugins: {nodes: [triage_desk]}"))
    drawn = compile_graph(build_graph(domain)).get_graph().draw_mermaid()
    assert "generate --> triage_desk" in drawn
    assert "triage_desk -. &nbsp;rewrite&nbsp; .-> generate" in drawn
    assert "triage_desk -. &nbsp;next&nbsp; .-> validate_schema" in drawn
    assert generate(domain, 10, llm="template").report["n_accepted"] == 10


def test_a_plugin_node_that_raises_stops_the_run_with_one_error_line_naming_it(tmp_path, install_plugin, capsys):
    install_plugin("crashy-plugin", {"nodes": {"crashy": "crashy:crashy"}},
                   {"crashy": "def crashy(state, runtime):\n    raise KeyError('ward')\n"})  # fmt: skip
    spec = spec_with(tmp_path, "plugins: {nodes: [crashy]}")
    code, _, err = run_cli(capsys, "run", str(spec), "-n", "5", "--llm", "template", "--out", str(tmp_path / "o"))
    assert code == 2 and "plugin node 'crashy' failed: KeyError: 'ward'" in err.strip().splitlines()[-1]
    assert "Traceback" not in err and not (tmp_path / "o" / "records.parquet").exists()
