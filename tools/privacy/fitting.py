"""A fit, end to end: check the table, plan the budget, release the statistics, build the spec (a dict).

Under DP the only code that reads rows runs inside OpenDP measurements queried through the accountant; the
spec is built from their outputs alone. Without DP the same spec shape comes from exact statistics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.causal.conformance import verify
from causalsynth.tools.causal.network import Network, Node
from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.privacy import pgm, refine
from causalsynth.tools.privacy.accountant import Accountant, Step
from causalsynth.tools.privacy.columns import Column, encode, prepare, state_names
from causalsynth.tools.privacy.consistency import (
    Measurement,
    calibrated_cpts,
    combine_marginals,
    estimate_total,
    pooling_weight,
)
from causalsynth.tools.privacy.cpts import joint_counts, pooled
from causalsynth.tools.privacy.domain import (
    DomainRelease,
    PublicBounds,
    domain_notes,
    exact_domain,
    histogram_queries,
    private_domain,
    thresholded,
)
from causalsynth.tools.privacy.mechanisms import gaussian_scale, noisy_histogram
from causalsynth.tools.privacy.schema import NULL_STATE, OTHER_STATE, ColumnSpec, FitSpec
from causalsynth.tools.privacy.structure import (
    EXACT_ESS,
    HILL_CLIMB_MAX_COLUMNS,
    MAX_INDEGREE,
    learned_dag,
    pair_repaired,
    private_bayes,
    spec_values,
)

#: Largest CPT (parent configurations x states) a fit will measure.
MAX_CPT_CELLS = 200_000
#: Pseudo-counts of the child's marginal added to each CPT row without DP (a little: the counts are exact).
PSEUDO_COUNT = 0.1
#: Under DP, pseudo-counts per unit of noise scale (times the square root of the child's states) added to each row.
SHRINK = 0.2

#: Budget shares, learned structure / user DAG. Every column's 1-way marginal is measured ("marginals"), then the
#: family tables ("cpts": one per child). A category column without a public list is measured by its category
#: release instead ("domain": one thresholded release per column, then "domain2": one joint release on the columns
#: the first left rows unexplained in, or all if none): its share of "marginals" goes to those two releases. A
#: learned structure ends with the refinement rounds ("pick", "refine"). Their 6% came from the family tables
#: (39% -> 33%); on wa_churn (epsilon 1, 20 fits, with 10% over 10 rounds) taking it from "marginals" or from
#: "select" and "domain" instead left the 2-way TVD and TSTR AUC where they were (+-0.001, +-0.002), and 6% over 5
#: rounds did as well as 10% over 10. "domain" 0.08 (the rest to "cpts", 40 and 20 fits): HealthInsurance 0.0341
#: -> 0.0336, wa_churn 0.0454 -> 0.0460 and AUC 0.811 -> 0.808: left as it is.
SHARES_LEARN = {"domain": 0.16, "nulls": 0.02, "bounds": 0.10, "spikes": 0.03, "zoom": 0.03, "bins": 0.03,
                "marginals": 0.17, "select": 0.07, "cpts": 0.33, "pick": 0.01, "refine": 0.05}  # fmt: skip
SHARES_DAG = {"domain": 0.16, "nulls": 0.02, "bounds": 0.10, "spikes": 0.03, "zoom": 0.03, "bins": 0.03,
              "marginals": 0.18, "cpts": 0.45}  # fmt: skip
#: The refinement rounds' steps (learned structure only, see :mod:`refine`): a noisy max, then the picked table.
REFINE_STEPS = ("pick", "refine")
#: Steps released with the Gaussian threshold (each query also spends a share of delta).
THRESHOLDED_STEPS = {"domain", "domain2", "spikes"}
#: With a ``--target``, a family holding it scores this part of the estimated rows more in the private structure
#: selection (a public constant, so the scores' sensitivity is unchanged): the target gets informative children.
#: HealthInsurance at epsilon 1, 12-16 fits each: TSTR AUC 0.59 -> 0.60-0.61, 2-way TVD unchanged (+-0.0005);
#: wa_churn AUC 0.78 -> 0.80. Forcing the target into every family (a tree-augmented naive Bayes) gave the same
#: AUC and a worse 2-way TVD (0.0379); a second measurement of the target's families, no better AUC. With the joint
#: fit (20 fits each, epsilon 1), 0.05 -> 0.1: wa_churn AUC 0.809 -> 0.817 and 2-way TVD 0.0509 -> 0.0552,
#: HealthInsurance AUC 0.611 -> 0.631 and 0.0343 -> 0.0357 (loans, 5 fits: AUC 0.808 -> 0.840, 0.0774 -> 0.0766);
#: 0.15 and 0.2 gave wa_churn 0.064 for AUC 0.818-0.822. A user who names a target trains on it: 0.1.
TARGET_BONUS = 0.1
#: The part of the category releases' share spent on the first (per column) release; the rest on the second.
FIRST_RELEASE = 0.7
#: The numeric columns' range and shape histograms ("bounds", "zoom", "bins") get their full shares at this part
#: of the columns numeric, proportionally less below it.
NUMERIC_PART = 0.5
#: Moved from the family tables to the numeric columns' shape histogram ("bins"), at the numeric part's scale. A
#: bin's values decode by that shape: on loans it cost about 0.012 of 1-way TVD per numeric column against decoding
#: by the bin's real values (``bench/fit_diag.py decoding``). Epsilon 1, fit_dev: loans 2-way 0.0769 (30 fits)
#: against 0.0787 (70 fits of the same day; 0.0810 in the 20 run beside it), 1-way 0.0339 against 0.0354;
#: HealthInsurance 0.0335 against 0.0341 (30 each); wa_churn 0.0456 against 0.0449 (36 each, within noise). 0.12
#: gave loans 0.0792.
SHAPE_SHIFT = 0.06
#: Bins per numeric column: under DP chosen from the rows and the family tables' noise (see :func:`auto_bins`).
DP_BINS = (3, 12)
#: A family table (a child and its parents) is a candidate under DP when it keeps this many noise scales per cell.
FAMILY_NOISE = 2.0
EXACT_BINS = 10
#: The most YAML values the CPTs of a DP fit's network may take (the refinement rounds measure no pair past it).
DP_SPEC_VALUES = 50_000


def auto_bins(rows: float, sigma: float) -> int:
    """Bins per numeric column under DP: a 2-way table of two such columns keeps about 4 noise scales per cell."""
    lo, hi = DP_BINS
    return int(np.clip(np.floor(np.sqrt(max(rows, 1.0) / (4.0 * max(sigma, 1e-9)))), lo, hi))


@dataclass(frozen=True)
class FitOptions:
    """What :func:`fit_table` needs besides the table (the API and CLI validate and fill these)."""

    epsilon: float | None = 1.0
    delta: float | None = 1e-6
    dp: bool = True
    dag: dict[str, list[str]] | None = None
    bounds: dict[str, PublicBounds] = field(default_factory=dict)
    bins: int | None = None  # None: chosen from the data size and budget (DP) or EXACT_BINS
    target: str | None = None
    seed: int = 0
    name: str = "fitted"
    alpha: float = 0.05  # the level of the DAG check under --no-dp


@dataclass
class FitResult:
    """The spec (a YAML-ready dict) and what the fit reports (budget split, DAG check)."""

    spec: dict[str, Any]
    provenance: FitSpec
    messages: list[str] = field(default_factory=list)


def data_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the table's content (column names and values, in order)."""
    digest = hashlib.sha256("\0".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def plan_steps(columns: list[Column], options: FitOptions) -> list[Step]:
    """The queries a DP fit issues, grouped by step, known from the schema and options alone."""
    n = len(columns)
    histograms = sum(histogram_queries(c) for c in columns)
    shares = dict(SHARES_DAG if options.dag is not None else SHARES_LEARN)
    families = n - 1 if options.dag is None else sum(1 for p in options.dag.values() if p)
    domain = sum(1 for c in columns if thresholded(c, options.bounds))
    releases = shares.pop("domain") + shares["marginals"] * domain / n
    shares["marginals"] *= (n - domain) / n
    # set for a half-numeric table: fewer numeric columns, less budget
    numeric = min(1.0, histograms / (NUMERIC_PART * n))
    for step in ("bounds", "spikes", "zoom", "bins"):
        shares[step] *= numeric
    shares["bins"] += SHAPE_SHIFT * numeric
    shares["cpts"] -= SHAPE_SHIFT * numeric
    first = {
        "nulls": shares.pop("nulls"),
        "domain": releases * FIRST_RELEASE,
        "domain2": releases * (1 - FIRST_RELEASE),
    }
    shares = {**first, **shares}
    queries = {"nulls": n - domain, "domain": domain, "domain2": min(domain, 1), "bounds": histograms,
               "spikes": histograms, "zoom": histograms, "bins": histograms, "marginals": n - domain, "select": n - 1,
               "cpts": families}  # fmt: skip
    steps = [
        Step(k, shares[k], queries[k], thresholded=k in THRESHOLDED_STEPS)
        for k in shares
        if k not in REFINE_STEPS and queries[k] > 0 and shares[k] > 0
    ]
    # the refinement rounds alternate a pick and a measurement (a round with nothing to pick spends neither)
    rounds = refine.rounds(n) if options.dag is None and all(shares.get(k, 0) > 0 for k in REFINE_STEPS) else 0
    return steps + [Step(k, shares[k] / rounds, 1) for _ in range(rounds) for k in REFINE_STEPS]


def fit_table(raw: pd.DataFrame, source: str, options: FitOptions, say: Callable[[str], None] = lambda _: None
              ) -> FitResult:  # fmt: skip
    """Fit a spec to ``raw``.

    Raises:
        DataError: a table that cannot be fitted, a DAG that does not fit its columns.
        PrivacyBudgetError: a budget that the plan does not fit (raised before the rows are read by a mechanism).
    """
    table, columns = prepare(raw, source)
    names = [c.name for c in columns]
    if options.target is not None and options.target not in names:
        raise UsageError(f"--target {options.target!r} is not a column; columns: {', '.join(names)}")
    unknown = sorted(set(options.bounds) - set(names))
    if unknown:
        raise UsageError(f"--bounds names unknown column(s) {', '.join(unknown)}")
    dag = options.dag
    if dag is not None:
        from causalsynth.tools.privacy.dagfile import check_dag

        dag = check_dag(dag, names, source)
    if options.dp:
        assert options.epsilon is not None and options.delta is not None
        result = _fit_private(table, columns, dag, options, say)
    else:
        result = _fit_exact(table, columns, dag, options)
    provenance = result.provenance.model_copy(update={"data_sha256": data_hash(raw)})
    result.spec["fit"] = provenance.model_dump(exclude_none=True)
    result.provenance = provenance
    return result


def _fit_private(table: pd.DataFrame, columns: list[Column], dag: dict[str, list[str]] | None, options: FitOptions,
                 say: Callable[[str], None]) -> FitResult:  # fmt: skip
    assert options.epsilon is not None and options.delta is not None
    plan_options = options if dag is None else FitOptions(**{**options.__dict__, "dag": dag})
    accountant = Accountant.for_steps(options.epsilon, options.delta, plan_steps(columns, plan_options))
    per_query = {name: (rho, delta) for name, rho, delta in accountant.slots}
    split = accountant.split()
    say(f"budget: epsilon={options.epsilon:g}, delta={options.delta:g} -> zCDP rho={accountant.rho:.4g} "
        f"(OpenDP composition gives epsilon={accountant.planned_epsilon:.4g})")  # fmt: skip
    for s in split:
        say(f"  {s.step:<10} rho={s.rho:.4g} ({100 * s.rho / accountant.rho:.0f}%) over {s.queries} queries"
            + (f", delta={s.delta:.3g}" if s.delta else ""))  # fmt: skip
    accountant.open(table)
    measure = accountant.measure
    # a table of category columns alone measures its marginals by the category releases (no "marginals" step)
    noise = {step: gaussian_scale(rho) for step, (rho, _) in per_query.items()}
    sigma_c = noise.get("cpts", noise.get("marginals", noise.get("domain2", 1.0)))
    sigma_m = noise.get("marginals", sigma_c)
    bins = options.bins if options.bins is not None else (lambda rows: auto_bins(rows, sigma_c))
    release = private_domain(columns, options.bounds, bins, measure, lambda step: per_query.get(step, (0.0, 0.0)))
    specs = release.specs
    notes = domain_notes(release)
    names = [c.name for c in columns]
    cards = {n: len(state_names(specs[n])) for n in names}
    codes = _coder(specs)
    measurements = [*_released_counts(release, specs)]
    keyed = {c.name for c in columns if thresholded(c, options.bounds)}  # measured by their category releases
    for n in (n for n in names if n not in keyed):
        noisy = measure("marginals", noisy_histogram(_histogram(codes, [n], [cards[n]]), per_query["marginals"][0]))
        measurements.append(Measurement((n,), np.asarray(noisy, dtype=np.float64), sigma_m**2))
    n_hat = estimate_total(measurements)
    learned = dag is None
    if dag is None:
        first = combine_marginals(measurements, cards, n_hat)
        marginals = {n: (first[n] + 1e-9) / (first[n] + 1e-9).sum() for n in names}
        max_cells = n_hat / (FAMILY_NOISE * sigma_c)
        dag = private_bayes(names, cards, codes, marginals, max_cells, per_query["select"][0], measure,
                            options.target, options.seed, TARGET_BONUS * n_hat, sigma_c)  # fmt: skip
        dag = pgm.fittable(names, cards, dag)
        structure = f"private Bayesian network (exponential mechanism, in-degree <= {MAX_INDEGREE})"
    else:
        structure = "user DAG"
    _check_cpt_sizes(dag, cards)
    root = options.target if options.target is not None else names[0]
    for n in names:
        # a column the learned network left without parents (nothing small enough) spends its planned family slot
        # on its own 1-way table, so the slots after it stay in the plan's order
        if dag[n] or (learned and n != root):
            variables = [*dag[n], n]
            dims = [cards[v] for v in variables]
            noisy = measure("cpts", noisy_histogram(_histogram(codes, variables, dims), per_query["cpts"][0]))
            table_ = np.asarray(noisy, dtype=np.float64).reshape(dims)
            measurements.append(Measurement(tuple(variables), table_, sigma_c**2))
    n_hat = estimate_total(measurements)
    marginals = combine_marginals(measurements, cards, n_hat)
    families = {m.variables[-1]: m for m in measurements if len(m.variables) > 1}
    shrink = {n: SHRINK * sigma_c * float(np.sqrt(cards[n])) for n in names}
    rng = np.random.default_rng([options.seed, 0xCA11B])
    cpts, _ = calibrated_cpts(dag, cards, families, marginals, shrink, rng)
    fitted = None
    pick, measured = ([rho for step, rho, _ in accountant.slots if step == k] for k in REFINE_STEPS)
    picks = list(zip(pick, measured, strict=True))
    if picks:
        start = {n: (dag[n], cpts[n]) for n in names}
        fitted, added = refine.refined(names, cards, measurements, n_hat, start, codes, measure, picks,
                                       DP_SPEC_VALUES, rng, options.target)  # fmt: skip
        measurements += added
        structure += f", {len(added)} of {len(picks)} refinement rounds (AIM-style) measured a table"
    dag, cpts, estimate = _joint_estimate(names, cards, measurements, n_hat, dag, cpts, learned, rng, fitted)
    structure += f", {estimate}"
    for name, listed in release.completed.items():  # a list's unnamed values: each measured only through noise
        if listed.vocabulary.ordered:  # the rare end of a scale (F and G grades): not alike
            continue
        index = {s: i for i, s in enumerate(state_names(specs[name]))}
        states = [index[v] for v in listed.added]
        cpts = pooled(dag, cpts, cards, name, states, pooling_weight(measurements, name, states))
    nodes: dict[str, Any] = {n: _node(n, dag[n], specs, cpts[n]) for n in names}
    provenance = FitSpec(
        data_sha256="", rows=round(n_hat), columns=len(names), dp=True,
        mechanism="OpenDP: discrete Gaussian (counts), Gaussian threshold (categories, nulls), exponential mechanism "
        "(structure); the model fitted to every measurement at once (post-processing)", structure=structure,
        epsilon=options.epsilon, delta=options.delta, rho=accountant.rho,
        accountant="OpenDP adaptive composition, approximate zCDP -> (epsilon, delta)",
        budget=split, seed=options.seed, libraries=_libraries(), notes=notes or None,
    )  # fmt: skip
    return FitResult(_spec(options, nodes, specs), provenance, notes)


def _joint_estimate(
    names: list[str], cards: Mapping[str, int], measurements: list[Measurement], n_hat: float,
    dag: dict[str, list[str]], cpts: dict[str, NDArray[np.float64]], learned: bool, rng: np.random.Generator,
    fitted: pgm.Fitted | None = None,
) -> tuple[dict[str, list[str]], dict[str, NDArray[np.float64]], str]:  # fmt: skip
    """The model fitted to all the measurements at once (:mod:`pgm`), started from the calibrated CPTs.

    A learned structure becomes the fitted junction tree's network (its families hold the parents' joints the
    measurements give). A user DAG keeps its edges: its CPTs are calibrated on the fitted family tables. Where the
    junction tree or its network is too large, the calibrated CPTs stay (the provenance says which). ``fitted``:
    the model already fitted to the measurements (by the refinement rounds), if any.
    """
    if fitted is None:
        tree = pgm.junction_tree(names, cards, [m.variables for m in measurements])
        if tree.cells > pgm.MAX_TREE_CELLS:
            return dag, cpts, f"consistent marginals (junction tree of {tree.cells:,} cells: too large to fit jointly)"
        fitted = pgm.fit(tree, measurements, n_hat, start={n: (dag[n], cpts[n]) for n in names})
    if learned:
        network = pgm.tree_network(fitted)
        if sum(spec_values(ps, n, cards) for n, (ps, _) in network.items()) <= DP_SPEC_VALUES:
            width = max(len(ps) for ps, _ in network.values())
            return (
                {n: network[n][0] for n in names},
                {n: network[n][1] for n in names},
                f"measurements fitted jointly on its junction tree, written as a network of in-degree <= {width}",
            )
    families = pgm.family_tables(fitted, dag)
    marginals = {n: fitted.table([n]) for n in names}
    calibrated, _ = calibrated_cpts(dag, cards, families, marginals, dict.fromkeys(names, 0.0), rng)
    return dag, calibrated, "measurements fitted jointly on their junction tree, CPTs calibrated on its family tables"


def _released_counts(release: DomainRelease, specs: Mapping[str, ColumnSpec]) -> list[Measurement]:
    """The category releases as partial 1-way measurements: the states whose key was released are known."""
    out = []
    releases = [(name, counts, release.sigma_counts[name]) for name, counts in release.counts.items()]
    releases += [(name, counts, sigma) for name, (counts, sigma) in release.second.items()]
    for name, counts, sigma in releases:
        states = state_names(specs[name])
        values = np.zeros(len(states))
        known = np.zeros(len(states), dtype=bool)
        inverse = {v: s for s, v in (specs[name].categories or {}).items()}
        for key, count in counts.items():
            state = key if key == NULL_STATE else inverse.get(key)
            if state in states and (key == NULL_STATE or not specs[name].bins):
                values[states.index(state)] = count
                known[states.index(state)] = True
        if known.any():
            out.append(Measurement((name,), values, sigma**2, known))
    return out


def _fit_exact(table: pd.DataFrame, columns: list[Column], dag: dict[str, list[str]] | None, options: FitOptions
               ) -> FitResult:  # fmt: skip
    specs = exact_domain(table, columns, options.bounds, options.bins or EXACT_BINS)
    names = [c.name for c in columns]
    cards = {n: len(state_names(specs[n])) for n in names}
    codes = _coder(specs)(table)
    built: dict[str, Any] = {}  # the last DAG modelled: the repair's last round models the DAG it returns

    def model(parents: Mapping[str, list[str]]) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.int64]]]:
        key = repr([(n, list(ps)) for n, ps in parents.items()])
        if built.get("key") != key:
            built.update(key=key, model=exact_model(parents, codes, cards, options.seed))
        return built["model"]

    user_dag = dag is not None
    if dag is None:
        learned = _trim_parents(learned_dag(pd.DataFrame({n: codes[n] for n in names}), options.target), cards)
        dag = pair_repaired(learned, codes, cards, lambda parents: model(parents)[1])
        added = sum(map(len, dag.values())) - sum(map(len, learned.values()))
        search = (f"pgmpy hill climbing (BDeu, ESS {EXACT_ESS:g})" if len(names) <= HILL_CLIMB_MAX_COLUMNS
                  else "pgmpy Chow-Liu tree")  # fmt: skip
        structure = f"{search}, pair repair (+{added} edges), calibrated CPTs"
    else:
        structure = "user DAG"
    _check_cpt_sizes(dag, cards)
    cpts, _ = model(dag)
    nodes = {n: _node(n, dag[n], specs, cpts[n]) for n in names}
    messages: list[str] = []
    check = None
    if user_dag:
        check, messages = _dag_check(nodes, specs, codes, names, options.alpha)
    provenance = FitSpec(
        data_sha256="", rows=len(table), columns=len(names), dp=False, mechanism="none (exact counts, smoothed)",
        structure=structure, seed=options.seed, libraries=_libraries(), dag_check=check,
    )  # fmt: skip
    return FitResult(_spec(options, nodes, specs), provenance, messages)


def exact_model(
    parents: Mapping[str, list[str]], codes: Mapping[str, NDArray[np.int64]], cards: Mapping[str, int], seed: int
) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.int64]]]:  # fmt: skip
    """The no-DP model on a DAG: CPTs from exact family tables, calibrated like the DP ones, and draws of it.

    With several parents, CPTs read off the tables let the children's marginals drift down the DAG (loans:
    annual_income's bins 0.02 off in a sample).
    """
    families: dict[str, Measurement] = {}
    for n, ps in parents.items():
        dims = [cards[p] for p in ps] + [cards[n]]
        counts = joint_counts([codes[v] for v in [*ps, n]], dims)
        families[n] = Measurement((*ps, n), counts.reshape(dims).astype(np.float64), 0.0)
    marginals = {n: np.bincount(codes[n], minlength=cards[n]).astype(np.float64) for n in parents}
    rng = np.random.default_rng([seed, 0xCA11B])
    return calibrated_cpts(parents, cards, families, marginals, dict.fromkeys(parents, PSEUDO_COUNT), rng)


def _dag_check(nodes: Mapping[str, Any], specs: Mapping[str, ColumnSpec], codes: Mapping[str, NDArray[np.int64]],
               names: list[str], alpha: float) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """The user DAG's implied CIs tested on the real data (G-tests); the rejected ones are named."""
    network = Network([Node(n, tuple(node["states"]), tuple(node.get("parents", [])), node["_cpt"]) for n, node in
                       nodes.items()], name="dag-check")  # fmt: skip
    states = pd.DataFrame({n: np.asarray(state_names(specs[n]), dtype=object)[codes[n]] for n in names})
    report = verify(network, states, alpha=alpha, marginals=False, source="data")
    rejected = [str(r.statement) for r in report.cis if r.rejected]
    check = {"alpha": alpha, "tested": report.n_tests, "rejected": rejected}
    messages = [f"DAG check: {len(rejected)} of {report.n_tests} implied CIs rejected by the data at alpha={alpha}"]
    messages += [f"  contradicted: {s}" for s in rejected]
    return check, messages


def _trim_parents(dag: Mapping[str, list[str]], cards: Mapping[str, int]) -> dict[str, list[str]]:
    """A learned DAG whose CPTs fit ``MAX_CPT_CELLS``: the widest parents are dropped where one would not."""
    out = {}
    for n, parents in dag.items():
        kept = list(parents)
        while kept and int(np.prod([cards[p] for p in kept])) * cards[n] > MAX_CPT_CELLS:
            kept.remove(max(kept, key=lambda p: cards[p]))
        out[n] = kept
    return out


def _check_cpt_sizes(dag: Mapping[str, list[str]], cards: Mapping[str, int]) -> None:
    for n, parents in dag.items():
        cells = int(np.prod([cards[p] for p in parents])) * cards[n]
        if cells > MAX_CPT_CELLS:
            raise DataError(f"the CPT of {n} given {', '.join(parents)} has {cells:,} cells (more than "
                            f"{MAX_CPT_CELLS:,}); give it fewer parents or use fewer --bins")  # fmt: skip


def _coder(specs: Mapping[str, ColumnSpec]) -> Callable[[pd.DataFrame], dict[str, NDArray[np.int64]]]:
    """Row-wise encoding of a table into state codes (memoised on the table object)."""
    cache: dict[int, dict[str, NDArray[np.int64]]] = {}

    def codes(table: pd.DataFrame) -> dict[str, NDArray[np.int64]]:
        key = id(table)
        if key not in cache:
            cache.clear()
            cache[key] = {n: encode(table[n], s, _fallback(s)) for n, s in specs.items()}
        return cache[key]

    return codes


def _histogram(
    codes: Callable[[pd.DataFrame], dict[str, NDArray[np.int64]]], variables: list[str], dims: list[int]
) -> Callable[[pd.DataFrame], NDArray[np.int64]]:
    """The row-wise count of the table over ``variables`` (flat, last varying fastest): one row, one count."""

    def counts(table: pd.DataFrame) -> NDArray[np.int64]:
        coded = codes(table)
        return joint_counts([coded[v] for v in variables], dims)

    return counts


def _fallback(spec: ColumnSpec) -> str:
    names = state_names(spec)
    if OTHER_STATE in names:
        return OTHER_STATE
    real = [s for s in names if s != NULL_STATE]
    return real[len(real) // 2]


def _node(name: str, parents: list[str], specs: Mapping[str, ColumnSpec], cpt: NDArray[np.float64]) -> dict[str, Any]:
    states = state_names(specs[name])
    rows = [_rounded(r) for r in cpt]
    node: dict[str, Any] = {"states": states, "_cpt": np.asarray(rows)}
    if not parents:
        node["probs"] = rows[0]
        return node
    node["parents"] = list(parents)
    configs = np.array(np.meshgrid(*[np.arange(len(state_names(specs[p]))) for p in parents], indexing="ij"))
    configs = configs.reshape(len(parents), -1).T
    node["cpt"] = [
        {"when": {p: state_names(specs[p])[int(i)] for p, i in zip(parents, cfg, strict=True)}, "probs": row}
        for cfg, row in zip(configs, rows, strict=True)
    ]
    return node


def _rounded(row: NDArray[np.float64]) -> list[float]:
    out = [round(float(x), 8) for x in row]
    top = int(np.argmax(out))
    out[top] = round(1.0 - (sum(out) - out[top]), 8)
    return out


def _spec(options: FitOptions, nodes: Mapping[str, dict[str, Any]], specs: Mapping[str, ColumnSpec]) -> dict[str, Any]:
    return {
        "spec_version": 1,
        "name": options.name,
        "description": "Fitted by causalsynth fit" + (" with differential privacy" if options.dp else " (no DP)"),
        "model": {"nodes": {n: {k: v for k, v in node.items() if k != "_cpt"} for n, node in nodes.items()}},
        "columns": {n: s.model_dump(exclude_none=True) for n, s in specs.items()},
    }


def _libraries() -> dict[str, str]:
    out = {}
    for lib in ("causalsynth", "opendp", "pgmpy", "numpy", "pandas"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out
