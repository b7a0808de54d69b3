"""Bundled networks: the plain BIF reader gives exactly pgmpy's network, and falls back to pgmpy otherwise."""

from __future__ import annotations

import gzip
import importlib.resources

import pytest

from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.sources import parse_with_pgmpy, read_plain_bif


def _bundled_text(name: str) -> str:
    blob = importlib.resources.files("pgmpy").joinpath("utils", "example_models", f"{name}.bif.gz").read_bytes()
    return gzip.decompress(blob).decode("utf-8")


@pytest.mark.parametrize("name", ["asia", "child", "alarm", "insurance", "hailfinder", "water"])
def test_plain_reader_gives_pgmpys_network(name):
    # Setup
    text = _bundled_text(name)
    expected = parse_with_pgmpy("bif", text, name, name)
    # Run
    got = read_plain_bif(text, name)
    # Assert
    assert isinstance(expected, Network) and got is not None
    assert got.to_dict() == expected.to_dict()  # same order, states, parents and every probability


def test_text_outside_the_plain_form_is_left_to_pgmpy():
    # Setup
    text = _bundled_text("asia")
    commented = "// a comment pgmpy strips\n" + text
    missing_row = text.replace("(yes) 0.05, 0.95;", "", 1)  # tub given asia=yes
    # Run / Assert
    assert read_plain_bif(commented, "asia") is None
    assert read_plain_bif(missing_row, "asia") is None
    assert read_plain_bif(text.replace("0.05, 0.95", "0.05, 0.90", 1), "asia") is None  # a row not summing to 1
