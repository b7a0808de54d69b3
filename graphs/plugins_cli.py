"""``causalsynth plugins``: what installed distributions register, where it comes from, and whether it loads."""

from __future__ import annotations

import warnings
from typing import Any

from rich.console import Console

from causalsynth.tools.causal.noise import NOISE_MODELS, check_noise_model
from causalsynth.tools.plugins import (
    BUILTIN_TOOLS,
    GROUPS,
    Check,
    PluginError,
    PluginWarning,
    check_callable,
    check_node,
    check_tool,
    installed,
    load,
)
from causalsynth.tools.relational.fake_values import PROVIDERS, check_provider

#: How each group's objects are checked when they are loaded.
CHECKS: dict[str, Check] = {
    "tools": check_tool,
    "realisers": check_callable,
    "value_providers": check_provider,
    "metrics": check_callable,
    "noise_models": check_noise_model,
    "nodes": check_node,
}
#: What ships with causalsynth, per group (a plugin cannot replace these names).
BUILTINS: dict[str, tuple[str, ...]] = {
    "tools": BUILTIN_TOOLS,
    "value_providers": tuple(PROVIDERS),
    "noise_models": tuple(NOISE_MODELS),
    "realisers": ("template", "local"),
}


def plugin_rows() -> list[dict[str, Any]]:
    """One row per registered plugin: group, name, distribution and version, entry point, and whether it loads."""
    rows = []
    for group in GROUPS:
        for name, info in sorted(installed(group).items()):
            status = "ok"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PluginWarning)
                    load(group, name, CHECKS[group])
            except PluginError as exc:
                status = f"skipped: {exc}"
            if name in BUILTINS.get(group, ()):
                status = f"shadowed by the built-in {name}"
            rows.append({"group": group, "name": name, "distribution": f"{info.distribution} {info.version}",
                         "entry_point": info.value, "status": status})  # fmt: skip
    return rows


def plugins_cmd() -> None:
    """List installed plugins (entry points of every causalsynth group) and where each comes from.

    A plugin that fails to load is listed with the reason and skipped by runs. Specs name plugins by the names here.
    """
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    rows = plugin_rows()
    if not rows:
        out.print("no plugins installed (groups: " + ", ".join(GROUPS.values()) + ")", markup=False, highlight=False)
    for row in rows:  # one line each, so it greps
        out.print(f"{row['group']:<16} {row['name']:<24} {row['distribution']:<36} {row['entry_point']}  "
                  f"[{'ok' if row['status'] == 'ok' else 'skipped'}]", markup=False, highlight=False)  # fmt: skip
    for row in rows:
        if row["status"] != "ok":
            err.print(f"warning: plugin {row['group']}/{row['name']} ({row['distribution']}) {row['status']}",
                      markup=False, highlight=False)  # fmt: skip
    out.print("built in: " + "; ".join(f"{g}: {', '.join(names)}" for g, names in BUILTINS.items()),
              markup=False, highlight=False)  # fmt: skip
