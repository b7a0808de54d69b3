"""``report.html``: the assessment as one self-contained page (plots are inline PNGs; no script, no network).

Sections, each a ``<section id=...>``: scorecard, marginals, pairwise, dag, utility, privacy, and for agent runs
the run (realizability funnel, rounds histogram, violations by kind, example texts with their facts); relational
assessments repeat the table sections per table and add the foreign-key cardinalities.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

GOOD, WARN, BAD, REAL, SYNTH, HOLD = "#2e7d32", "#ef6c00", "#c62828", "#455a64", "#1e88e5", "#8e24aa"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:24px;
color:#222;background:#fff}
h1{margin:0 0 4px} h2{border-bottom:2px solid #eee;padding-bottom:4px;margin-top:36px}
.meta{color:#666;font-size:14px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-left:6px solid #999;border-radius:6px;padding:10px 14px;min-width:180px}
.card.good{border-left-color:#2e7d32}.card.warn{border-left-color:#ef6c00}.card.bad{border-left-color:#c62828}
.card .v{font-size:24px;font-weight:600}.card .n{font-size:12px;color:#666}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.ok{color:#2e7d32}.no{color:#c62828}.note{color:#666;font-size:13px}
pre{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:8px;font-size:13px}
"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return f"{float(v):.{digits}f}"
    return html.escape(str(v))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _empty(sid: str, title: str, note: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p></section>'


# -- sections ------------------------------------------------------------------------------------------------
def scorecard_section(cards: list[dict[str, Any]], sid: str = "scorecard") -> str:
    """The scorecard: one card per headline number."""
    items = "".join(
        f'<div class="card {c["status"]}"><div class="n">{html.escape(c["name"])}</div>'
        f'<div class="v">{_fmt(c["value"])}</div><div class="n">{html.escape(c["note"])}</div></div>'
        for c in cards
    )
    return f'<section id="{sid}"><h2>Scorecard</h2><div class="cards">{items}</div></section>'


def marginals_section(
    a: dict[str, Any], real: pd.DataFrame, synth: pd.DataFrame, sid: str = "marginals", max_cols: int = 24
) -> str:
    """Real vs synthetic marginal of each measured column (bars for categories, histograms for numbers)."""
    plt = _plt()
    cols = [c for c in a["fidelity"]["columns"]][:max_cols]
    if not cols:
        return f'<section id="{sid}"><h2>Marginals</h2><p class="note">no measured column</p></section>'
    ncol = 4
    nrow = (len(cols) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 3.2, nrow * 2.4), squeeze=False)
    for ax, c in zip(axes.flat, cols, strict=False):
        name = c["column"]
        if c["kind"] == "numeric":
            r = pd.to_numeric(real[name], errors="coerce").dropna().to_numpy(dtype=float)
            s = pd.to_numeric(synth[name], errors="coerce").dropna().to_numpy(dtype=float)
            lo, hi = float(np.min(r)), float(np.max(r))
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(r, bins=bins, density=True, alpha=0.55, color=REAL, label="real")
            ax.hist(np.clip(s, lo, bins[-1]), bins=bins, density=True, alpha=0.55, color=SYNTH, label="synthetic")
            ax.set_title(f"{name}  W1 {c['w1']:.3f} KS {c['ks']:.3f}", fontsize=8)
        else:
            rl = real[name].astype("string").fillna("<missing>").astype(str)
            sl = synth[name].astype("string").fillna("<missing>").astype(str)
            cats = list(rl.value_counts().index[:12])
            rp = rl.value_counts(normalize=True).reindex(cats).fillna(0).to_numpy()
            sp = sl.value_counts(normalize=True).reindex(cats).fillna(0).to_numpy()
            x = np.arange(len(cats))
            ax.bar(x - 0.2, rp, 0.4, color=REAL, label="real")
            ax.bar(x + 0.2, sp, 0.4, color=SYNTH, label="synthetic")
            ax.set_xticks(x, [str(cat)[:10] for cat in cats], rotation=45, ha="right", fontsize=6)
            ax.set_title(f"{name}  TVD {c['tvd']:.3f}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    rows = [[c["column"], c["kind"], c.get("tvd"), c.get("w1"), c.get("ks"), c["kl"], c["coverage"], c["violations"]]
            for c in a["fidelity"]["columns"]]  # fmt: skip
    table = _table(["column", "kind", "TVD", "W1/range", "KS", "KL", "coverage", "violations"], rows)
    return f'<section id="{sid}"><h2>Marginals: real vs synthetic</h2>{_png(fig)}{table}</section>'


def pairwise_section(a: dict[str, Any], sid: str = "pairwise") -> str:
    """Heatmaps of the 2-way TVD and of the association difference."""
    plt = _plt()
    p = a["fidelity"]["pairs"]
    names = p["columns"]
    if len(names) < 2:
        return f'<section id="{sid}"><h2>Pairwise differences</h2><p class="note">fewer than 2 columns</p></section>'
    tvd = np.array(p["tvd_matrix"])
    diff = np.abs(np.array(p["association_real"]) - np.array(p["association_synth"]))
    size = max(4.0, 0.32 * len(names) + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, m, title in ((axes[0], tvd, "2-way TVD"), (axes[1], diff, "|Cramer's V real - synthetic|")):
        im = ax.imshow(m, cmap="Reds", vmin=0, vmax=max(0.2, float(m.max())))
        ax.set_xticks(range(len(names)), [n[:12] for n in names], rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), [n[:12] for n in names], fontsize=7)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    note = (f'<p class="note">Discretisation: {html.escape(p["discretisation"])}. Mean 2-way TVD '
            f"{_fmt(p['tvd_mean'])}, max {_fmt(p['tvd_max'])}; mean association difference "
            f"{_fmt(p['association_mean_abs_diff'])}.</p>")  # fmt: skip
    return f'<section id="{sid}"><h2>Pairwise differences</h2>{_png(fig)}{note}</section>'


def dag_section(a: dict[str, Any], sid: str = "dag") -> str:
    """The DAG with its edges coloured by the dependence test on the synthetic table, and the implied CIs."""
    dag = a.get("dag")
    if not dag:
        return f'<section id="{sid}"><h2>DAG and CI tests</h2><p class="note">no spec given (--spec)</p></section>'
    if "error" in dag:
        return f'<section id="{sid}"><h2>DAG and CI tests</h2><p class="note">{html.escape(dag["error"])}</p></section>'
    import networkx as nx

    plt = _plt()
    g = nx.DiGraph()
    g.add_nodes_from(dag["variables"])
    g.add_edges_from(tuple(e) for e in dag["edges"])
    edge_test = {(t["x"], t["y"]): t for t in dag["tests"] if not t["implied_independent"]}
    colours = []
    for u, v in g.edges():
        t = edge_test.get((u, v)) or edge_test.get((v, u))
        ok = t is not None and t["synth"]["rejected"]
        colours.append(GOOD if ok else BAD)
    try:
        layers = {n: i for i, gen in enumerate(nx.topological_generations(g)) for n in gen}
        nx.set_node_attributes(g, layers, "layer")
        pos = nx.multipartite_layout(g, subset_key="layer", align="horizontal")
        pos = {n: (x, -y) for n, (x, y) in pos.items()}
    except nx.NetworkXException:
        pos = nx.spring_layout(g, seed=0)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    nx.draw_networkx(g, pos, ax=ax, node_color="#e3f2fd", edgecolors="#1565c0", node_size=900, font_size=7,
                     edge_color=colours, width=2, arrowsize=14)  # fmt: skip
    ax.set_title("edges: green = dependence found on the synthetic table, red = not found", fontsize=9)
    ax.axis("off")
    s = dag["summary"]
    summary = _table(
        ["table", "implied-CI FPR", "CI tests", "edge power", "edge tests"],
        [[k, v["fpr"], v["n_ci_tests"], v["power"], v["n_edge_tests"]] for k, v in s.items()],
    )
    rows = []
    for t in dag["tests"]:
        stmt = f"{t['x']} {'⊥' if t['implied_independent'] else '~'} {t['y']}" + (
            f" | {', '.join(t['z'])}" if t["z"] else ""
        )
        rows.append([stmt, t["real"]["p_value"], t["real"]["rejected"], t["synth"]["p_value"], t["synth"]["rejected"]])
    detail = _table(["statement (⊥ implied independent, ~ edge)", "p real", "rejected real", "p synth",
                     "rejected synth"], rows[:200])  # fmt: skip
    return f'<section id="{sid}"><h2>DAG and CI tests</h2>{_png(fig)}{summary}{detail}</section>'


def utility_section(a: dict[str, Any], sid: str = "utility") -> str:
    """TSTR against TRTR, with fold intervals."""
    u = a.get("utility") or {}
    if "skipped" in u:
        return _empty(sid, "Utility: TSTR vs TRTR", u["skipped"])
    plt = _plt()
    metrics = [m for m in ("roc_auc", "accuracy", "r2") if m in u]
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(len(metrics))
    for off, arm, colour, label in ((-0.2, "trtr", REAL, "train real"), (0.2, "tstr", SYNTH, "train synthetic")):
        means = [u[m][arm]["mean"] or 0 for m in metrics]
        err = [[(u[m][arm]["mean"] or 0) - (u[m][arm]["low"] or 0) for m in metrics],
               [(u[m][arm]["high"] or 0) - (u[m][arm]["mean"] or 0) for m in metrics]]  # fmt: skip
        ax.bar(x + off, means, 0.4, yerr=err, capsize=4, color=colour, label=label)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(f"target {u['target']} ({u['task']}), tested on the real {u['test']}", fontsize=9)
    rows = [[m, u[m]["trtr"]["mean"], f"[{_fmt(u[m]['trtr']['low'])}, {_fmt(u[m]['trtr']['high'])}]",
             u[m]["tstr"]["mean"], f"[{_fmt(u[m]['tstr']['low'])}, {_fmt(u[m]['tstr']['high'])}]", u[m]["ratio"]]
            for m in metrics]  # fmt: skip
    table = _table(["metric", "TRTR", "95% CI", "TSTR", "95% CI", "TSTR/TRTR"], rows)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in u.get("notes", []))
    model = f'<p class="note">{html.escape(u["model"])}, {u["folds"]} folds, seed {u["seed"]}.</p>'
    return f'<section id="{sid}"><h2>Utility: TSTR vs TRTR</h2>{_png(fig)}{table}{model}{notes}</section>'


def privacy_section(a: dict[str, Any], sid: str = "privacy") -> str:
    """Attack ROC curves, the DCR histograms and every attack against its baseline."""
    p = a.get("privacy") or {}
    if "skipped" in p:
        return _empty(sid, "Privacy attacks", p["skipped"])
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    for name, colour in (("distance", SYNTH), ("domias", HOLD)):
        m = p["membership"][name]
        ax.plot(m["roc"]["fpr"], m["roc"]["tpr"], color=colour, label=f"{name} AUC {m['auc']:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="#999", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("membership inference ROC", fontsize=10)
    ax.legend(fontsize=8)
    h = p["dcr"]["histogram"]
    centres = (np.array(h["edges"][:-1]) + np.array(h["edges"][1:])) / 2
    width = float(h["edges"][1] - h["edges"][0])
    axes[1].bar(centres, h["holdout"], width, alpha=0.55, color=HOLD, label="holdout to train")
    axes[1].bar(centres, h["synth"], width, alpha=0.55, color=SYNTH, label="synthetic to train")
    axes[1].set_title("distance to closest training record", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    e, d, mi = p["exact_match"], p["dcr"], p["membership"]

    def ci(r: Mapping[str, Any], key: str = "value") -> str:
        return f"{_fmt(r[key])} [{_fmt(r['low'])}, {_fmt(r['high'])}]"

    rows = [
        ["exact matches: synthetic rows copying a training row", ci(e["copies_of_training_rows"]),
         "holdout-size training: " + ci(e["train"]) + "; holdout: " + ci(e["holdout"])],
        ["DCR share nearer training than holdout", ci(d["share_closer_to_train"]), "0.5"],
        ["DCR share below the holdout's 5th percentile", ci(d["share_below_holdout_p5"]),
         ci(d["holdout_share_below_holdout_p5"])],
        ["DCR 5th percentile", _fmt(d["synth_to_train_p5"]), _fmt(d["holdout_to_train_p5"])],
        ["membership AUC, distance attack", ci(mi["distance"], "auc"), "0.5"],
        ["membership AUC, DOMIAS density ratio", ci(mi["domias"], "auc"), "0.5"],
    ]  # fmt: skip
    for name in ("singling_out", "linkability", "inference"):
        r = p.get(name) or {}
        if r.get("risk") is not None:
            label = (f"{name.replace('_', ' ')} risk (attack {_fmt(r['attack_rate'])}, control "
                     f"{_fmt(r['control_rate'])}, random {_fmt(r['baseline_rate'])})")  # fmt: skip
            rows.append([label, ci(r, "risk"), "0"])
    for col, t in (p.get("text_copies") or {}).items():
        base = ci(t["holdout"]) if "holdout" in t else "n/a"
        rows.append([f"texts of {col} repeating {t['ngram']} training tokens", ci(t["synth"]), base])
    table = _table(["attack", "synthetic [95% CI]", "baseline (no leak)"], rows)
    v = p["verdict"]
    verdict = (f"<p><b>Verdict: {html.escape(v['level'])}</b>; attacks above chance: "
               f"{html.escape(', '.join(v['leaks']) or 'none')}.</p>")  # fmt: skip
    note = ('<p class="note">Singling out, linkability and inference follow anonymeter\'s method (reimplemented: '
            "anonymeter's pins clash with this package's numpy and pyarrow).</p>")  # fmt: skip
    return f'<section id="{sid}"><h2>Privacy attacks</h2>{verdict}{_png(fig)}{table}{note}</section>'


def run_section(run: dict[str, Any], records: pd.DataFrame | None, sid: str = "run") -> str:
    """An agent run: realizability funnel, rounds histogram, violations by kind, example texts with their facts."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    rounds = {int(k): int(v) for k, v in (run.get("rounds_histogram") or {}).items()}
    n_req = int(run.get("n_requested") or 0)
    stages = [("requested", n_req)]
    done = 0
    for r in sorted(rounds):
        done += rounds[r]
        stages.append((f"accepted by round {r}", done))
    stages.append(("rejected", int(run.get("n_rejected") or 0)))
    axes[0].barh([s for s, _ in stages][::-1], [v for _, v in stages][::-1], color=SYNTH)
    axes[0].set_title(f"realizability funnel ({_fmt(run.get('realizability'))})", fontsize=9)
    axes[0].tick_params(labelsize=7)
    axes[1].bar([str(k) for k in sorted(rounds)], [rounds[k] for k in sorted(rounds)], color=REAL)
    axes[1].set_title("correction rounds of accepted records", fontsize=9)
    viol = run.get("violations") or {}
    axes[2].barh(list(viol) or ["none"], list(viol.values()) or [0], color=BAD)
    axes[2].set_title("violations by kind", fontsize=9)
    axes[2].tick_params(labelsize=7)
    fig.tight_layout()
    facts = ""
    if records is not None and "text" in records.columns:
        skip = {"text", "record_id", "rounds", "llm_calls", "tokens", "history", "references"}
        for _, row in records.head(3).iterrows():
            f = ", ".join(f"{k}={row[k]}" for k in records.columns if k not in skip)
            facts += f"<p class='note'>{html.escape(f)}</p><pre>{html.escape(str(row['text']))}</pre>"
    keys = ["domain", "llm", "mode", "n_requested", "n_accepted", "n_rejected", "realizability", "ci_fpr_extracted",
            "selection_bias_tvd"]  # fmt: skip
    table = _table(["measure", "value"], [[k, run.get(k)] for k in keys if k in run])
    examples = f"<h3>Example texts and their facts</h3>{facts}"
    metrics = ""
    if run.get("metrics"):  # plugin metrics (causalsynth.metrics entry points), a failed one shown as n/a
        failed = run.get("metrics_failed") or {}
        rows = [[k, v] for k, v in run["metrics"].items()] + [[f"{k} (failed)", v] for k, v in failed.items()]
        metrics = f"<h3>Plugin metrics</h3>{_table(['metric', 'value'], rows)}"
    return f'<section id="{sid}"><h2>Agent run</h2>{table}{metrics}{_png(fig)}{examples}</section>'


def fk_section(links: list[dict[str, Any]], sid: str = "foreign-keys") -> str:
    """Children per parent row, real vs synthetic, for each foreign key."""
    if not links:
        return (
            f'<section id="{sid}"><h2>Foreign-key cardinalities</h2><p class="note">no foreign key found</p></section>'
        )
    plt = _plt()
    fig, axes = plt.subplots(1, len(links), figsize=(4 * len(links), 3), squeeze=False)
    for ax, link in zip(axes.flat, links, strict=True):
        for off, label, colour in ((-0.2, "real", REAL), (0.2, "synth", SYNTH)):
            h = link["histogram"][label]
            ax.bar(np.arange(len(h)) + off, h, 0.4, color=colour, label=label)
        ax.set_title(f"{link['child']} per {link['parent']} (TVD {link['tvd']:.3f})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    rows = [[f"{x['child']}.{x['foreign_key']} -> {x['parent']}", x["mean_real"], x["mean_synth"], x["tvd"], x["w1"]]
            for x in links]  # fmt: skip
    return (f'<section id="{sid}"><h2>Foreign-key cardinalities</h2>{_png(fig)}'
            f'{_table(["link", "mean real", "mean synthetic", "TVD", "W1"], rows)}</section>')  # fmt: skip


def table_sections(a: dict[str, Any], real: pd.DataFrame, synth: pd.DataFrame, prefix: str = "") -> str:
    """Every section of one table's assessment."""
    return "".join([
        scorecard_section(a["scorecard"], f"{prefix}scorecard"),
        marginals_section(a, real, synth, f"{prefix}marginals"),
        pairwise_section(a, f"{prefix}pairwise"),
        dag_section(a, f"{prefix}dag"),
        utility_section(a, f"{prefix}utility"),
        privacy_section(a, f"{prefix}privacy"),
    ])  # fmt: skip


def page(title: str, meta: str, body: str, assessment: Mapping[str, Any]) -> str:
    """The page: inline style, no script, no external reference; the JSON is embedded for tools that want it."""
    data = html.escape(json.dumps({"inputs": assessment.get("inputs")}, default=str))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='meta'>{meta}</p>{body}"
        f"<footer class='note' data-inputs=\"{data}\">causalsynth assess</footer></body></html>"
    )
