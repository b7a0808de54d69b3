"""Unique columns in relational runs: distinct over the whole draw, and owned by the record that drew a value first.

Both make a record's unique checks independent of which batches (or shards) were validated before it.
"""

from __future__ import annotations

import textwrap

import pytest

from causalsynth.tools.relational.checks import check_tables, unique_owners
from causalsynth.tools.relational.sampling import RelationalSampler, resamplable_columns
from causalsynth.tools.spec import Domain, load_domain_text

SPEC = """
spec_version: 1
name: tags
model:
  nodes:
    kind: {states: [a, b], probs: [0.5, 0.5]}
tables:
  items:
    primary_key: id
    columns:
      id: {type: int}
      kind: {type: category, values: [a, b], variable: kind}
      tag: {type: string, unique: UNIQUE, provider: code, args: {format: "T###"}}
"""


def domain(unique: bool) -> Domain:
    return load_domain_text(textwrap.dedent(SPEC).replace("UNIQUE", str(unique).lower()), source="tags.yaml")


def test_the_draw_keeps_each_first_value_and_redraws_later_repeats() -> None:
    # Setup: 400 tags from 1,000 values repeat many times when drawn freely
    free = RelationalSampler(domain(False).schema, domain(False).network, 7).sample(400)["items"]["tag"]  # type: ignore[arg-type]
    assert free.duplicated().sum() > 20
    # Run
    tags = RelationalSampler(domain(True).schema, domain(True).network, 7).sample(400)["items"]["tag"]  # type: ignore[arg-type]
    # Assert: distinct; every first occurrence kept its value, only the later repeats changed
    assert tags.is_unique
    first = ~free.duplicated(keep="first")
    assert tags[first].tolist() == free[first].tolist()
    assert (tags[~first].to_numpy() != free[~first].to_numpy()).all()


def test_a_value_belongs_to_the_record_that_drew_it_first_in_any_batch() -> None:
    # Setup: the run's draw, and a later batch (records 5..9) where record 7 now holds record 2's tag
    d = domain(True)
    assert d.schema is not None
    drawn = RelationalSampler(d.schema, d.network, 3).sample(10)
    owners = unique_owners(d.schema, drawn)
    batch = drawn["items"].iloc[5:10].copy()
    batch.loc[7, "tag"] = drawn["items"].loc[2, "tag"]  # as a repair could draw it
    earlier = drawn["items"].iloc[0:5].copy()
    earlier.loc[3, "tag"] = drawn["items"].loc[8, "tag"]  # an earlier record takes a later record's value
    # Run
    later_found = check_tables(d.schema, {"items": batch}, resamplable=resamplable_columns(d.schema), owners=owners)
    earlier_found = check_tables(d.schema, {"items": earlier}, owners=owners)
    # Assert: the record that took another's value is the duplicate, whichever batch the owner is in
    assert [(v["kind"], v["entity"]) for v in later_found] == [("unique", 7)]
    assert [(v["kind"], v["entity"]) for v in earlier_found] == [("unique", 3)]
    assert check_tables(d.schema, {"items": drawn["items"]}, owners=owners) == []


@pytest.mark.parametrize("batch", [3, 7])
def test_owners_find_the_same_duplicates_whatever_the_batches(batch: int) -> None:
    # Setup: a draw with a planted repeat (record 9 holds record 1's tag)
    d = domain(True)
    assert d.schema is not None
    drawn = RelationalSampler(d.schema, d.network, 5).sample(12)
    owners = unique_owners(d.schema, drawn)
    items = drawn["items"]
    items.loc[9, "tag"] = items.loc[1, "tag"]
    # Run
    found = [
        v["entity"]
        for lo in range(0, 12, batch)
        for v in check_tables(d.schema, {"items": items.iloc[lo : lo + batch]}, owners=owners)
    ]
    # Assert
    assert found == [9]
