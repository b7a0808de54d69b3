"""Spec loading: valid forms load; each malformed kind is reported with its location, all at once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.causal.inference import exact_marginals
from causalsynth.tools.causal.sources import bnlearn_names
from causalsynth.tools.errors import SpecError
from causalsynth.tools.spec import load_domain, load_domain_text

KEYS = ["nodes", "bnlearn", "file", "states", "parents", "probs", "cpt", "when", "a", "b", "x", "y"]

TWO_NODES = """
model:
  nodes:
    smoke:
      states: [yes, no]
      probs: [0.3, 0.7]
    cough:
      states: [yes, no]
      parents: [smoke]
      cpt:
        - {when: {smoke: yes}, probs: [0.6, 0.4]}
        - {when: {smoke: no}, probs: {yes: 0.1, no: 0.9}}
"""


def problems_of(path_or_text: str | Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        if isinstance(path_or_text, Path):
            load_domain(path_or_text)
        else:
            load_domain_text(path_or_text, source="t.yaml")
    return info.value


def test_inline_spec_loads_with_yes_no_as_state_names():
    # Run
    domain = load_domain_text(TWO_NODES)
    # Assert
    assert domain.network.states("smoke") == ("yes", "no")
    assert domain.network.node("cough").parents == ("smoke",)
    np.testing.assert_allclose(domain.network.node("cough").cpt, [[0.6, 0.4], [0.1, 0.9]])
    np.testing.assert_allclose(exact_marginals(domain.network)["cough"], [0.3 * 0.6 + 0.7 * 0.1, 0.3 * 0.4 + 0.7 * 0.9])


def test_cpt_rows_may_come_in_any_order():
    # Setup
    text = TWO_NODES.replace(
        "        - {when: {smoke: yes}, probs: [0.6, 0.4]}\n        - {when: {smoke: no}, probs: {yes: 0.1, no: 0.9}}",
        "        - {when: {smoke: no}, probs: {yes: 0.1, no: 0.9}}\n        - {when: {smoke: yes}, probs: [0.6, 0.4]}",
    )
    # Run
    domain = load_domain_text(text)
    # Assert
    np.testing.assert_allclose(domain.network.node("cough").cpt, [[0.6, 0.4], [0.1, 0.9]])


def test_bnlearn_name_and_example_spec_load(asia):
    # Run
    spec_domain = load_domain(Path(__file__).parents[2] / "examples" / "asia.yaml")
    # Assert
    assert len(asia.network) == 8 and len(asia.network.edges()) == 8
    assert spec_domain.network.names == asia.network.names
    assert spec_domain.spec.variables["either"].role == "latent"


def test_bif_and_xmlbif_files_load_and_match(tmp_path, smoking, write_spec):
    # Setup
    from pgmpy.readwrite import BIFWriter, XMLBIFWriter

    BIFWriter(smoking.network.pgmpy).write(str(tmp_path / "net.bif"))
    XMLBIFWriter(smoking.network.pgmpy).write(str(tmp_path / "net.xmlbif"))
    expected = exact_marginals(smoking.network)
    for name in ("net.bif", "net.xmlbif"):
        spec = write_spec(f"model: {{file: {name}}}\n", name=f"{name}.yaml")
        # Run
        domain = load_domain(spec)
        # Assert
        got = exact_marginals(domain.network)
        for var in smoking.network.names:
            assert domain.network.states(var) == smoking.network.states(var)
            np.testing.assert_allclose(got[var], expected[var], atol=1e-9)


def test_yaml_syntax_error_names_the_line():
    err = problems_of("model:\n  nodes:\n    a: {states: [x, y]\n    b: 1\n")
    assert "YAML syntax error" in str(err)
    assert "t.yaml:4" in str(err)


def test_cycle_is_reported_with_its_nodes():
    err = problems_of(
        """
model:
  nodes:
    a: {states: [x, y], parents: [c], cpt: [{when: {c: x}, probs: [1, 0]}, {when: {c: y}, probs: [0, 1]}]}
    b: {states: [x, y], parents: [a], cpt: [{when: {a: x}, probs: [1, 0]}, {when: {a: y}, probs: [0, 1]}]}
    c: {states: [x, y], parents: [b], cpt: [{when: {b: x}, probs: [1, 0]}, {when: {b: y}, probs: [0, 1]}]}
"""
    )
    message = str(err)
    assert "cycle" in message
    assert all(node in message for node in ("a ->", "b ->", "c ->"))


def test_unknown_parent_is_named_with_line():
    err = problems_of("model:\n  nodes:\n    a:\n      states: [x, y]\n      parents: [ghost]\n      cpt: []\n")
    assert "unknown parent 'ghost'" in str(err)
    assert "t.yaml:5" in str(err)


def test_cpt_shape_mismatch_rows_and_columns():
    err = problems_of(
        """
model:
  nodes:
    a: {states: [x, y], probs: [0.2, 0.3, 0.5]}
    b:
      states: [u, v]
      parents: [a]
      cpt:
        - {when: {a: x}, probs: [0.5, 0.5]}
"""
    )
    texts = [p.message for p in err.problems]
    assert any("CPT shape mismatch" in t and "expected 2 probabilities" in t for t in texts)
    assert any("CPT shape mismatch" in t and "2 parent configurations" in t and "1 rows" in t for t in texts)


def test_column_not_summing_to_one_names_variable_and_parent_configuration():
    err = problems_of(TWO_NODES.replace("probs: [0.6, 0.4]", "probs: [0.6, 0.3]"))
    (problem,) = err.problems
    assert "cough" in problem.message and "smoke=yes" in problem.message
    assert "sum to 0.9" in problem.message
    assert "t.yaml:11" in problem.where  # the text starts with a blank line


def test_duplicate_and_empty_states():
    err = problems_of(
        """
model:
  nodes:
    a: {states: [x, x], probs: [0.5, 0.5]}
    b: {states: [], probs: []}
    c: {states: [ok, ""], probs: [0.5, 0.5]}
"""
    )
    texts = " | ".join(p.message for p in err.problems)
    assert "a has duplicate states: x" in texts
    assert "b has no states" in texts
    assert "c has an empty state name" in texts


def test_unknown_bnlearn_name_lists_valid_ones():
    err = problems_of("model: {bnlearn: asai}\n")
    assert "unknown bnlearn network 'asai'" in str(err)
    assert "asia" in str(err) and "alarm" in str(err) and "child" in str(err)
    assert {"asia", "alarm", "child", "insurance"} <= set(bnlearn_names())


def test_every_problem_is_reported_at_once():
    err = problems_of(
        """
model:
  nodes:
    a: {states: [x, x], probs: [0.5, 0.5]}
    b: {states: [u, v], parents: [ghost], cpt: []}
    c: {states: [p, q], probs: [0.9, 0.3]}
variables:
  nothere: {description: typo}
"""
    )
    texts = " | ".join(str(p) for p in err.problems)
    assert "duplicate states" in texts
    assert "unknown parent 'ghost'" in texts
    assert "sum to 1.2" in texts
    assert len(err.problems) >= 3


def test_a_malformed_node_does_not_hide_problems_in_the_others():
    err = problems_of(
        """
model:
  nodes:
    a: {states: [x, y], probs: [0.5, 0.5], colour: red}
    b: {states: [u, v], parents: [a], cpt: [{when: {a: x}, probs: [0.5, 0.6]}, {when: {a: y}, probs: [1, 0]}]}
    c: {states: [p, q], probs: [0.9, 0.3]}
"""
    )
    texts = " | ".join(str(p) for p in err.problems)
    assert "model.nodes.a.colour" in texts and "unknown key" in texts
    assert "sum to 1.2" in texts  # c is still checked
    assert "unknown parent" not in texts  # a is declared, only malformed


def test_structural_errors_name_key_and_line():
    err = problems_of("model:\n  nodes:\n    a: {states: [x, y], probs: [0.5, 0.5], colour: red}\nnmae: typo\n")
    texts = [str(p) for p in err.problems]
    assert any("model.nodes.a.colour" in t and "unknown key" in t for t in texts)
    assert any("t.yaml:4 nmae" in t for t in texts)


def test_model_must_be_given_exactly_one_way():
    err = problems_of("model: {bnlearn: asia, file: x.bif}\n")
    assert "exactly one way" in str(err)


def test_metadata_for_unknown_variable_is_an_error():
    err = problems_of("model: {bnlearn: asia}\nvariables:\n  smoker: {description: typo of smoke}\n")
    assert "unknown variable 'smoker'" in str(err)


def test_missing_file_and_bad_network_file(write_spec, tmp_path):
    assert "spec file not found" in str(problems_of(tmp_path / "nope.yaml"))
    (tmp_path / "broken.bif").write_text("network x { }\nvariable a { type discrete [ 2 ] { y, n }; \n")
    err = problems_of(write_spec("model: {file: broken.bif}\n"))
    assert "broken.bif" in str(err) and "no variables with probability tables found" in str(err)
    (tmp_path / "broken.xml").write_text("<BIF><NETWORK>")
    err = problems_of(write_spec("model: {file: broken.xml}\n", name="x.yaml"))
    assert "cannot parse XMLBIF network" in str(err)
    err = problems_of(write_spec("model: {file: missing.bif}\n", name="other.yaml"))
    assert "network file not found" in str(err)


def test_parsed_networks_are_cached_and_a_corrupt_cache_is_ignored(tmp_path, monkeypatch, alarm):
    from causalsynth.tools.causal.sources import cache_dir

    monkeypatch.setenv("CAUSALSYNTH_CACHE", str(tmp_path))
    # Run
    first = load_domain("alarm").network
    (entry,) = cache_dir().glob("*.json")
    second = load_domain("alarm").network
    entry.write_text("{not json")
    third = load_domain("alarm").network
    # Assert
    assert first.to_dict() == second.to_dict() == third.to_dict() == alarm.network.to_dict()


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-1, 2), st.text(max_size=4))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _values.map(lambda v: yaml.safe_dump({"model": v}))))
def test_any_input_loads_or_raises_spec_error(text):
    try:
        load_domain_text(text, source="fuzz.yaml")
    except SpecError as exc:
        assert str(exc).startswith("invalid spec fuzz.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: &a\n  nodes: *a\n", "recursive YAML alias"),
        # libyaml (the C loader) stops at its own depth, 1,000, with its own words; the pure-Python one at ours
        ("[" * 3000 + "]" * 3000 + "\n", re.compile(r"nested deeper than|exceeded maximum nesting depth")),
        (
            "".join(
                f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else 'v, v, v, v, v, v, v, v, v'}]\n"
                for i in range(9)
            )
            + "model: {bnlearn: asia}\n",
            "expands to more than",
        ),
    ],
    ids=["recursive_alias", "deep_nesting", "alias_bomb"],
)
def test_hostile_yaml_is_a_spec_error(text, expected):
    message = str(problems_of(text))
    assert expected.search(message) if isinstance(expected, re.Pattern) else expected in message


def test_anchors_merge_keys_and_names_written_as_numbers_or_booleans():
    domain = load_domain_text(
        """
x-binary: &binary {states: [x, y], probs: [0.5, 0.5]}
model:
  nodes:
    a: *binary
    b: {<<: *binary, probs: [0.3, 0.7]}
    c: {states: [true, false], probs: {true: 0.3, false: 0.7}}
    d: {states: [1.10, 1.1, 007], probs: [0.2, 0.3, 0.5]}
"""
    )
    net = domain.network
    np.testing.assert_allclose(net.node("b").cpt, [[0.3, 0.7]])
    np.testing.assert_allclose(net.node("c").cpt, [[0.3, 0.7]])
    assert net.states("c") == ("true", "false")
    assert net.states("d") == ("1.10", "1.1", "007")


def test_inline_cpt_rows_are_stored_with_the_last_parent_varying_fastest(smoking):
    # Setup: the same model built directly in pgmpy, columns in pgmpy's documented order
    from pgmpy.factors.discrete import TabularCPD

    net = smoking.network
    disease = net.node("disease")
    configs = net.parent_configs("disease")
    # Assert: specific cells, as written in examples/smoking.yaml
    np.testing.assert_allclose(disease.cpt[configs.index(("young", "no"))], [0.01, 0.99])
    np.testing.assert_allclose(disease.cpt[configs.index(("middle", "yes"))], [0.12, 0.88])
    np.testing.assert_allclose(disease.cpt[configs.index(("old", "no"))], [0.08, 0.92])
    assert configs[:3] == [("young", "yes"), ("young", "no"), ("middle", "yes")]
    # Assert: pgmpy agrees cell by cell on the converted model
    cpd = net.pgmpy.get_cpds("disease")
    direct = TabularCPD(
        "disease",
        2,
        [[0.03, 0.01, 0.12, 0.03, 0.3, 0.08], [0.97, 0.99, 0.88, 0.97, 0.7, 0.92]],
        evidence=["age", "smoker"],
        evidence_card=[3, 2],
        state_names={"disease": ["yes", "no"], "age": ["young", "middle", "old"], "smoker": ["yes", "no"]},
    )
    assert cpd == direct


def test_names_that_collide_with_generated_columns_are_rejected():
    err = problems_of(
        "model:\n  nodes:\n    a__u: {states: [x, y], probs: [0.5, 0.5]}\n    b__cf: {states: [x], probs: [1]}\n"
    )
    assert "'a__u' ends like a generated column" in str(err) and "'b__cf'" in str(err)
