"""The assessor's measures: fidelity sees what differs, utility compares like with like, attacks find leaks.

The privacy arms of the issue: (a) the training table passed off as synthetic and (b) SynthTab-style per-value
Laplace noise on each training row must be reported as leaking; (c) an independent-marginals sample must not be
(every attack's interval covers its no-leak value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalsynth.tools.quality.arms import independent_marginals, laplace_perturbation
from causalsynth.tools.quality.assessment import assess_table, dag_checks, fk_cardinality, infer_links
from causalsynth.tools.quality.privacy import chance_covered


def population(n: int, seed: int) -> pd.DataFrame:
    """A mixed table with dependences: numbers, categories, a binary target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    sex = rng.choice(["f", "m"], n)
    region = rng.choice(["north", "south", "east", "west", "centre"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    income = np.round(20_000 + 600 * (age - 18) + rng.normal(0, 8_000, n) + np.where(sex == "m", 4_000, 0), 2)
    smoker = np.where(rng.random(n) < np.clip(0.5 - age / 200, 0.05, 0.9), "yes", "no")
    visits = rng.poisson(1 + age / 30 + (smoker == "yes") * 2)
    risk = 1 / (1 + np.exp(-(-4 + age / 25 + (smoker == "yes") * 1.5 + visits * 0.2)))
    outcome = np.where(rng.random(n) < risk, "ill", "well")
    return pd.DataFrame({"age": age, "sex": sex, "region": region, "income": income, "smoker": smoker,
                         "visits": visits, "outcome": outcome})  # fmt: skip


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = population(3000, seed=11)
    return data.iloc[:2000].reset_index(drop=True), data.iloc[2000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def arms(split) -> dict[str, dict]:
    train, hold = split
    out = {}
    for arm, synth in (
        ("a_training_copy", train),
        ("b_laplace", laplace_perturbation(train, scale=0.02, seed=1)),
        ("c_independent", independent_marginals(train, len(train), seed=2)),
    ):
        out[arm] = assess_table(synth, train, hold, target="outcome", seed=0, folds=3, n_attacks=300)
    return out


def test_training_copy_is_reported_as_a_leak(arms):
    # Setup / Run
    p = arms["a_training_copy"]["privacy"]
    # Assert
    assert p["exact_match"]["copies_of_training_rows"]["value"] > 0.99
    assert p["exact_match"]["excess"]["low"] > 0
    assert p["membership"]["distance"]["auc"] >= 0.8 and p["membership"]["distance"]["low"] > 0.5
    assert p["dcr"]["share_closer_to_train"]["low"] > 0.5
    assert p["inference"]["low"] > 0
    # linkability needs each half of the columns to pin a row down; with 7 columns a coarse half may not
    assert p["linkability"]["attack_rate"] >= p["linkability"]["control_rate"]
    assert p["verdict"]["level"] == "high"


def test_laplace_perturbed_rows_are_reported_as_a_leak(arms):
    p = arms["b_laplace"]["privacy"]
    assert p["exact_match"]["copies_of_training_rows"]["value"] < 0.5  # the noise hides exact copies ...
    assert p["membership"]["distance"]["auc"] >= 0.8  # ... but not the rows
    assert p["dcr"]["share_closer_to_train"]["low"] > 0.5
    assert p["verdict"]["level"] == "high"


def test_independent_marginals_leak_no_more_than_chance(arms):
    p = arms["c_independent"]["privacy"]
    covered = chance_covered(p)
    assert set(covered) >= {"exact_match", "dcr_share", "membership_distance", "membership_domias", "singling_out",
                            "linkability", "inference"}  # fmt: skip
    assert all(covered.values()), covered
    assert p["verdict"]["level"] == "no more than chance"


def test_fidelity_sees_a_broken_dependence_but_not_a_copy(arms):
    copy, indep = arms["a_training_copy"]["fidelity"], arms["c_independent"]["fidelity"]
    assert copy["summary"]["mean_tvd"] == 0 and copy["summary"]["pair_tvd_max"] == 0 and copy["summary"]["mean_w1"] == 0
    # the marginals survive independent sampling; the pairs (age ~ income, smoker ~ outcome) do not
    assert indep["summary"]["mean_tvd"] < 0.05
    assert indep["summary"]["association_mean_abs_diff"] > 5 * max(copy["summary"]["association_mean_abs_diff"], 0.01)
    names = indep["pairs"]["columns"]
    tvd = np.array(indep["pairs"]["tvd_matrix"])
    assert tvd[names.index("age"), names.index("income")] > tvd[names.index("sex"), names.index("region")]


def test_utility_tstr_matches_trtr_on_a_copy_and_drops_without_dependences(arms):
    copy, indep = arms["a_training_copy"]["utility"], arms["c_independent"]["utility"]
    assert copy["task"] == "classification" and copy["folds"] == 3
    assert copy["roc_auc"]["trtr"]["low"] <= copy["roc_auc"]["trtr"]["mean"] <= copy["roc_auc"]["trtr"]["high"]
    assert abs(copy["roc_auc"]["ratio"] - 1) < 0.05
    assert copy["roc_auc"]["trtr"]["mean"] > 0.7
    assert indep["roc_auc"]["tstr"]["mean"] < 0.6


def test_column_measures_flag_shift_unseen_categories_and_range_violations(split):
    # Setup
    train, hold = split
    synth = train.copy()
    synth["income"] = synth["income"] * 1.5  # shifted beyond the real range
    synth.loc[:99, "region"] = "atlantis"  # a category the real table lacks
    synth["sex"] = "f"  # one real category never produced
    # Run
    cols = {c["column"]: c for c in assess_table(synth, train, None)["fidelity"]["columns"]}
    # Assert
    assert cols["income"]["w1"] > 0.1 and cols["income"]["ks"] > 0.3 and cols["income"]["violations"] > 0.2
    assert cols["region"]["violations"] == pytest.approx(0.05) and cols["region"]["unseen_categories"] == ["atlantis"]
    assert cols["sex"]["coverage"] == 0.5 and cols["sex"]["missed_categories"] == ["m"]
    assert cols["age"]["w1"] == 0 and cols["age"]["violations"] == 0


def test_regression_target_reports_r2(split):
    train, hold = split
    u = assess_table(train, train, hold, target="income", folds=2)["utility"]
    assert u["task"] == "regression" and u["r2"]["trtr"]["mean"] > 0.3


def test_without_holdout_privacy_says_why_it_is_skipped(split):
    a = assess_table(split[0], split[0], None)
    assert "holdout" in a["privacy"]["skipped"] and "target" in a["utility"]["skipped"]


def test_dag_checks_find_the_edges_of_a_faithful_sample_and_lose_them_when_shuffled(asia):
    # Setup
    from causalsynth.tools.causal.sampler import Sampler

    net = asia.network
    real = Sampler(net).sample(4000, seed=1).data
    faithful = Sampler(net).sample(4000, seed=2).data
    rng = np.random.default_rng(0)
    shuffled = faithful.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])
    # Run
    good = dag_checks(net, {"real": real, "synth": faithful})
    bad = dag_checks(net, {"real": real, "synth": shuffled})
    # Assert
    assert good["summary"]["synth"]["power"] > 0.5 and good["summary"]["synth"]["fpr"] <= 0.2
    assert bad["summary"]["synth"]["power"] < good["summary"]["synth"]["power"]


def test_foreign_key_cardinalities_compare_children_per_parent():
    # Setup: every patient has 2 visits in the real data; the synthetic data gives 1 or 3
    patients = pd.DataFrame({"patient_id": [str(i) for i in range(100)], "age": np.arange(100)})
    real_visits = pd.DataFrame({"visit_id": range(200), "patient_id": [str(i // 2) for i in range(200)]})
    synth_ids = [str(i) for i in range(100) for _ in range(1 if i % 2 else 3)]
    synth_visits = pd.DataFrame({"visit_id": range(len(synth_ids)), "patient_id": synth_ids})
    real = {"patients": patients, "visits": real_visits}
    # Run
    links = infer_links(real)
    fk = fk_cardinality({"patients": patients, "visits": synth_visits}, real, links)
    # Assert
    assert links == [("visits", "patient_id", "patients", "patient_id")]
    assert fk[0]["tvd"] == pytest.approx(1.0) and fk[0]["mean_real"] == 2 and fk[0]["mean_synth"] == 2


def test_text_columns_report_copies_of_training_texts_against_the_holdout():
    # Setup: notes built from shared boilerplate plus a personal sentence; the synthetic notes copy training notes
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(400)]

    def notes(n: int) -> list[str]:
        personal = [" ".join(rng.choice(words, 15)) for _ in range(n)]
        return [f"Seen in clinic today. {p}." for p in personal]

    train = pd.DataFrame({"age": rng.integers(20, 80, 300), "note": notes(300)})
    hold = pd.DataFrame({"age": rng.integers(20, 80, 200), "note": notes(200)})
    synth = train.sample(200, random_state=0).reset_index(drop=True)
    # Run
    a = assess_table(synth, train, hold, n_attacks=100)
    # Assert
    assert {c["name"]: c["kind"] for c in a["columns"]}["note"] == "text"
    copies = a["privacy"]["text_copies"]["note"]
    assert copies["synth"]["value"] == 1.0 and copies["holdout"]["value"] == 0.0
