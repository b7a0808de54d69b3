"""The ``causalsynth`` command line: run, sample, counterfactual, verify, compile-rules, corpus.

Every user error becomes one readable message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from causalsynth.graphs import api
from causalsynth.graphs.api import generate
from causalsynth.graphs.assess_api import write_run_report
from causalsynth.graphs.assess_cli import assess_cmd
from causalsynth.graphs.corpus_cli import corpus_app
from causalsynth.graphs.engine_cli import EngineOpt, SchedulerOpt, ShardsOpt, ThreadsOpt, WorkersOpt
from causalsynth.graphs.fit_cli import fit_cmd
from causalsynth.graphs.lexicon_cli import lexicon_app
from causalsynth.graphs.plugins_cli import plugins_cmd
from causalsynth.graphs.retrieval import (
    RetrievalOptions,
    parse_kinds,
    retrieval_rows,
)
from causalsynth.graphs.table_cli import compile_rules, print_table_report
from causalsynth.graphs.trace_cli import interrupted_message, trace_app, use_trace_endpoint
from causalsynth.tools.causal.conformance import VerificationReport, verify
from causalsynth.tools.causal.noise import NOISE_MODELS
from causalsynth.tools.causal.sampler import CF_SUFFIX, DEFAULT_MAX_DRAWS
from causalsynth.tools.causal.sampler import Progress as ProgressFn
from causalsynth.tools.errors import CausalSynthError, UsageError
from causalsynth.tools.llm.factory import LLMOptions, make_chat_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.tabular import read_table, table_format, write_table, write_text

app = typer.Typer(
    name="causalsynth",
    help="Causally valid synthetic data: sample a causal model, intervene, compute counterfactuals, verify.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(corpus_app, name="corpus")
app.add_typer(lexicon_app, name="lexicon")
app.add_typer(trace_app, name="trace")
app.command("fit")(fit_cmd)
app.command("assess")(assess_cmd)
app.command("plugins")(plugins_cmd)
out_console = Console()
err_console = Console(stderr=True)

SpecArg = Annotated[str, typer.Argument(help="Spec YAML file, or a bnlearn network name (asia, alarm, child, ...).")]
RowsOpt = Annotated[int, typer.Option("-n", "--rows", min=1, help="Number of records.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same output).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file: .parquet, .csv or .jsonl.")]
DoOpt = Annotated[list[str] | None, typer.Option("--do", help="Hard intervention VAR=STATE (repeatable).")]
EvidenceOpt = Annotated[list[str] | None, typer.Option("--evidence", help="Condition on VAR=STATE (repeatable).")]
NoiseOpt = Annotated[
    str, typer.Option("--noise-model", help=f"Structural form of each node: {', '.join(NOISE_MODELS)}.")
]
MaxDrawsOpt = Annotated[
    int, typer.Option("--max-draws", min=1, help="Budget of candidate records when sampling given evidence.")
]


def parse_assignments(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    """Parse repeated ``VAR=STATE`` flags; a variable given twice with different states is an error."""
    out: dict[str, str] = {}
    for raw in values or []:
        var, sep, state = raw.partition("=")
        var, state = var.strip(), state.strip()
        if not sep or not var or not state:
            raise UsageError(f"{flag} {raw!r}: expected VAR=STATE, e.g. {flag} smoke=yes")
        if var in out and out[var] != state:
            raise UsageError(f"{flag}: {var} given twice ({out[var]} and {state})")
        out[var] = state
    return out


@contextmanager
def _progress(total: int, label: str) -> Iterator[ProgressFn]:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


@app.command("run")
def run_cmd(
    spec: SpecArg,
    n: RowsOpt,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (records, rejects, report, event log, checkpoints).")
    ] = None,
    llm: Annotated[
        str, typer.Option("--llm", help="Realiser: local (embedded GGUF via llama.cpp), template, or PROVIDER:MODEL.")
    ] = "local",
    realize: Annotated[
        str, typer.Option("--realize", help="anchored (facts' phrases forced into the text) or free.")
    ] = "anchored",
    mode: Annotated[
        str, typer.Option("--mode", help="iterative (targeted correction) or rejection (regenerate from scratch).")
    ] = "iterative",
    max_rounds: Annotated[int, typer.Option("--max-rounds", help="Extra generator calls per record.")] = 3,
    seed: SeedOpt = 0,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Records per batch (default 1000 for template, 32 for LLMs).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="LLM calls in flight (local: llama.cpp contexts).")
    ] = 2,
    model_path: Annotated[
        Path | None, typer.Option("--model-path", help="A GGUF for --llm local (default: SmolLM2-135M-Instruct).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Server of an OpenAI-compatible provider, e.g. .../v1.")
    ] = None,
    anchor_via: Annotated[
        str, typer.Option("--anchor-via", help="auto, grammar (llama.cpp server), json-schema or prompt.")
    ] = "auto",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds per call to a PROVIDER:MODEL (the local model runs in this process and has no limit).",
        ),
    ] = 120.0,
    retries: Annotated[int, typer.Option("--retries", min=0, max=10, help="Retries of a transient failure.")] = 2,
    no_retrieval: Annotated[
        bool, typer.Option("--no-retrieval", help="Prompt without reference passages from the corpus (ablations).")
    ] = False,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Chroma collection to retrieve from (default: the spec's).")
    ] = None,
    chroma_path: Annotated[
        Path | None, typer.Option("--chroma-path", help="Chroma folder (default: $CAUSALSYNTH_CHROMA_PATH).")
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Reference passages per record (default 3).")] = None,
    retrieval_kinds: Annotated[
        str | None, typer.Option("--retrieval-kinds", help="Document kinds to retrieve, e.g. note,terminology.")
    ] = None,
    leak_ngram: Annotated[
        int | None, typer.Option("--leak-ngram", help="Report texts that copy this many corpus tokens in a row.")
    ] = None,
    trace: Annotated[
        str,
        typer.Option(
            "--trace",
            help="off, jsonl (spans to traces.jsonl in --out; see 'trace show'), or phoenix (see 'trace serve').",
        ),
    ] = "off",
    trace_endpoint: Annotated[
        str | None,
        typer.Option(
            "--trace-endpoint",
            help="Phoenix for --trace phoenix (default: $PHOENIX_COLLECTOR_ENDPOINT, else http://127.0.0.1:6006).",
        ),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder (same settings).")
    ] = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 2,
    threads: ThreadsOpt = None,
    privacy_reference: Annotated[
        Path | None,
        typer.Option(
            "--privacy-reference",
            help="Real training rows (CSV/Parquet): resample records closer to one than the holdout rows are.",
        ),
    ] = None,
    privacy_holdout: Annotated[
        Path | None,
        typer.Option(
            "--privacy-holdout",
            help="Real rows the spec never saw, the guard's yardstick (default: a "
            "held-out fifth of --privacy-reference).",
        ),
    ] = None,
    privacy_filter_breaks_dp: Annotated[
        bool,
        typer.Option(
            "--privacy-filter-breaks-dp",
            help="Allow the guard on a DP-fitted spec; the report then says the DP guarantee no longer holds.",
        ),
    ] = False,
) -> None:
    """Generate records through the agent graph: sample, retrieve, realise, validate, verify, correct, assess, write."""
    if resume is not None and out is not None and out != resume:
        raise UsageError(f"--resume {resume} continues the run in that folder; --out {out} names another")
    out = out if out is not None else resume
    use_trace_endpoint(trace, trace_endpoint)
    if out is None or str(out) in ("", "."):  # typer reads --out "" as "."
        raise UsageError("--out needs a folder name (the run writes records.parquet, rejects.parquet, ... into it)")
    if anchor_via not in ("auto", "grammar", "json-schema", "prompt"):
        raise UsageError(f"--anchor-via must be auto, grammar, json-schema or prompt, got {anchor_via!r}")
    options = LLMOptions(
        realize=realize, concurrency=concurrency, model_path=model_path, base_url=base_url,  # type: ignore[arg-type]
        anchor_via=anchor_via, timeout=timeout, retries=retries, threads=threads,  # type: ignore[arg-type]
    )  # fmt: skip
    retrieval = RetrievalOptions(
        enabled=not no_retrieval, collection=collection, chroma_path=chroma_path, top_k=top_k,
        kinds=parse_kinds(retrieval_kinds), leak_ngram=leak_ngram,
    )  # fmt: skip
    domain = load_domain(spec)
    try:
        with _progress(n, f"{domain.name}: {mode}") as progress:
            result = generate(
                domain, n, seed=seed, llm=llm, realize=realize, mode=mode, max_rounds=max_rounds,  # type: ignore[arg-type]
                retrieval=not no_retrieval, out=out, batch_size=batch_size, llm_options=options,
                retrieval_options=retrieval, progress=progress, say=_say, trace=trace,  # type: ignore[arg-type]
                resume=resume, engine=engine, scheduler=scheduler, shards=shards, workers=workers,  # type: ignore[arg-type]
                privacy_reference=privacy_reference, privacy_holdout=privacy_holdout,
                privacy_filter_breaks_dp=privacy_filter_breaks_dp,
            )  # fmt: skip
    except KeyboardInterrupt:
        _say(interrupted_message(out))
        raise typer.Exit(130) from None
    if "tables" not in result.report:  # an agent run folder: its own report.html (funnel, rounds, texts)
        write_run_report(out)
    _print_run_report(result.report, out)


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_run_report(report: dict[str, object], out: Path) -> None:
    if "tables" in report:  # a relational run (the spec declares tables)
        print_table_report(report, out, out_console)
        return
    realize = f", {report['realize']}" if report.get("realize") not in (None, "template") else ""
    table = Table(title=f"{report['domain']}: {report['mode']} run with {report['llm']}{realize}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "n_requested", "n_accepted", "n_rejected", "realizability", "llm_calls_per_accepted", "tokens_per_accepted",
        "ci_fpr_extracted", "ci_fpr_skeleton", "ci_power_extracted", "selection_bias_tvd", "records_per_second",
        "dropped_sentences",
    ):  # fmt: skip
        table.add_row(key, _fmt(report.get(key), 1 if key == "records_per_second" else 4))
    table.add_row("rounds_histogram", json.dumps(report.get("rounds_histogram")))
    for key, value in retrieval_rows(report.get("retrieval")):  # type: ignore[arg-type]
        table.add_row(key, value)
    guard = report.get("privacy_guard")
    if isinstance(guard, dict):
        table.add_row("privacy guard: threshold", _fmt(guard["threshold"], 4))
        table.add_row("privacy guard: resampled / rejected", f"{guard['resampled']} / {guard['rejected']}")
        if "dp_guarantee" in guard:
            table.add_row("DP guarantee", "void (records filtered against the real rows)")
    out_console.print(table)
    records = pd.read_parquet(out / "records.parquet", columns=["record_id", "text"])
    if len(records):
        first = records.iloc[0]
        out_console.print(f"record {first.record_id}: {first.text}", markup=False, highlight=False)
    out_console.print(f"wrote {out}/records.parquet, rejects.parquet, report.json, report.html, run.jsonl")


@app.command()
def sample(
    spec: SpecArg,
    n: RowsOpt,
    seed: SeedOpt = 0,
    out: OutOpt = Path("samples.parquet"),
    do: DoOpt = None,
    evidence: EvidenceOpt = None,
    with_noise: Annotated[
        bool, typer.Option("--with-noise", help="Add each record's noise as VAR__u columns.")
    ] = False,
    noise_model: NoiseOpt = "inverse_cdf",
    max_draws: MaxDrawsOpt = DEFAULT_MAX_DRAWS,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 2,
) -> None:
    """Sample records from the causal model, optionally under do(...) and given evidence."""
    table_format(out)
    domain = load_domain(spec)
    with _progress(n, f"sampling {domain.name}") as progress:
        data = api.sample(
            domain, n, seed=seed, do=parse_assignments(do, "--do"), evidence=parse_assignments(evidence, "--evidence"),
            with_noise=with_noise, noise_model=noise_model, max_draws=max_draws, progress=progress,
            engine=engine, scheduler=scheduler, shards=shards, workers=workers,  # type: ignore[arg-type]
        )  # fmt: skip
    write_table(data, out)
    err_console.print(f"wrote {len(data):,} records to {out}")


@app.command()
def counterfactual(
    spec: SpecArg,
    n: RowsOpt = 1000,
    seed: SeedOpt = 0,
    do: DoOpt = None,
    out: OutOpt = Path("counterfactuals.parquet"),
    evidence: EvidenceOpt = None,
    factual: Annotated[
        Path | None,
        typer.Option(
            "--factual",
            help="Use these records instead of sampling; their VAR__u noise columns if present, else noise is "
            "abducted from its posterior (seeded).",
        ),
    ] = None,
    noise_model: NoiseOpt = "inverse_cdf",
    max_draws: MaxDrawsOpt = DEFAULT_MAX_DRAWS,
) -> None:
    """Factual records and their twins under do(...) with the same noise: VAR and VAR__cf columns."""
    table_format(out)
    interventions = parse_assignments(do, "--do")
    if not interventions:
        raise UsageError("counterfactual needs at least one --do VAR=STATE")
    if factual is not None and evidence:
        raise UsageError("--evidence applies to sampled factuals; filter the --factual file instead")
    domain = load_domain(spec)
    with _progress(n, f"sampling {domain.name}") as progress:
        table = api.counterfactual(
            domain, interventions, n, seed=seed, evidence=parse_assignments(evidence, "--evidence"),
            factual=read_table(factual) if factual is not None else None, factual_source=str(factual),
            noise_model=noise_model, max_draws=max_draws, progress=progress,
        )  # fmt: skip
    names = list(domain.network.names)
    twins = table[[f"{v}{CF_SUFFIX}" for v in names]].set_axis(names, axis=1)
    changed = sum(
        int((f != t).sum())
        for f, t in zip(domain.network.encode(table[names]), domain.network.encode(twins), strict=True)
    )
    write_table(table, out)
    err_console.print(f"wrote {len(table):,} factual/counterfactual pairs to {out} ({changed:,} values changed)")


@app.command("verify")
def verify_cmd(
    data: Annotated[Path, typer.Argument(help="Table to check: .parquet, .csv or .jsonl.")],
    spec: Annotated[str, typer.Option("--spec", help="Spec YAML file or bnlearn network name.")],
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Test level.")] = 0.05,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    do: DoOpt = None,
    only_rejected: Annotated[bool, typer.Option("--only-rejected", help="List only rejected CIs.")] = False,
) -> None:
    """Test the DAG's implied conditional independences (FPR), adjacencies (power) and marginals."""
    domain = load_domain(spec)
    table = api.as_states(read_table(data), domain)
    report = verify(domain.network, table, alpha=alpha, do=parse_assignments(do, "--do"), source=str(data))
    _print_report(report, only_rejected)
    if json_path is not None:
        indent = 2 if len(report.cis) <= LIST_LIMIT else None  # hundreds of thousands of statements: compact
        write_text(json.dumps(report.to_dict(), indent=indent) + "\n", json_path)


#: Above this many implied CIs (or variables), ``verify`` lists only the rejected ones (or the variables whose
#: marginal fails at alpha), at most this many; ``--json`` has them all.
LIST_LIMIT = 1000


def _print_report(report: VerificationReport, only_rejected: bool) -> None:
    shown = [r for r in report.cis if r.rejected or not only_rejected]
    note = ""
    if len(shown) > LIST_LIMIT:
        shown = [r for r in shown if r.rejected]
        note = f"{len(report.cis):,} statements: only the rejected ones are listed"
        if len(shown) > LIST_LIMIT:
            note += f", the first {LIST_LIMIT:,} of {len(shown):,}"
            shown = shown[:LIST_LIMIT]
        note += " (--json has every statement)"
    cis = Table(
        title=f"Implied conditional independences ({report.network}, n={report.n_rows:,}; {report.ci_set})",
        caption=note or None,
    )
    for col in ("statement", "G", "dof", "p", "result"):
        cis.add_column(col, justify="left" if col in {"statement", "result"} else "right")
    for r in shown:
        verdict = "untestable" if r.rejected is None else "REJECTED" if r.rejected else "ok"
        cis.add_row(str(r.statement), f"{r.statistic:.2f}", str(r.dof), f"{r.p_value:.3g}", verdict)
    out_console.print(cis)
    if report.marginals:
        listed = report.marginals
        note = ""
        if len(listed) > LIST_LIMIT:
            listed = report.marginal_failures(report.alpha)
            note = f"{len(report.marginals):,} variables: only those with p < {report.alpha} are listed"
            if len(listed) > LIST_LIMIT:
                note += f", the first {LIST_LIMIT:,} of {len(listed):,}"
                listed = listed[:LIST_LIMIT]
            note += " (--json has every variable)"
        marg = Table(title=f"Marginals vs exact inference ({report.marginals_method})", caption=note or None)
        for col in ("variable", "TVD", "p"):
            marg.add_column(col, justify="left" if col == "variable" else "right")
        for m in listed:
            marg.add_row(m.variable, f"{m.tvd:.4f}", f"{m.p_value:.3g}")
        out_console.print(marg)
    out_console.print(
        f"implied CIs ({report.ci_set}) tested: {report.n_tests} (untestable: {report.n_untestable}); "
        f"FPR at alpha={report.alpha}: {report.fpr:.4f}; "
        f"power on {sum(r.rejected is not None for r in report.dependences)} adjacent pairs: {report.power:.4f}"
    )


@app.command("compile-rules")
def compile_rules_cmd(
    spec: Annotated[str, typer.Argument(help="Spec YAML file with natural-language rules ('nl: ...').")],
    llm: Annotated[str, typer.Option("--llm", help="Chat model: local (the embedded GGUF) or PROVIDER:MODEL.")],
    force: Annotated[bool, typer.Option("--force", help="Compile every sentence again, not only new ones.")] = False,
) -> None:
    """Compile natural-language rules into the rule language with an LLM; show them; store them in the lock file."""
    compile_rules(spec, make_chat_model(llm), llm, force, out_console)


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: runs the app and turns user errors into one line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=list(argv) if argv is not None else None, prog_name="causalsynth", standalone_mode=False
        )
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _error("aborted")
        sys.exit(130)
    except CausalSynthError as exc:
        _error(str(exc))
        sys.exit(2)
    except MemoryError:
        _error("out of memory: ask for fewer records (-n) or sample in several runs")
        sys.exit(2)
    except typer.TyperException as exc:  # bad flags and values, as click reports them
        fmt = getattr(exc, "format_message", None)
        message = (fmt() if callable(fmt) else str(exc)).strip()
        if not message:  # no arguments at all: the help was printed
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(f"{message}{hint}")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
