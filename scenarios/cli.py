"""What ``mobilize drill SCENARIO [--runs N] [--seed S] [--report out.html] [--json]`` does.

:func:`run_drill` loads and checks the scenario (every mistake with its line and field), runs the
Monte Carlo with a progress bar (``rich.progress``, on stderr), writes the HTML report if asked, and
prints either a short summary table or the JSON of the results. The typer command only parses options
and calls it; an :class:`~mobilize.errors.InvalidInput` it raises is printed like every CLI error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from scenarios.model import load_scenario, shipped
from scenarios.montecarlo import run_many
from scenarios.report import render_report
from scenarios.simulator import prepare

__all__ = ["compact", "resolve_path", "run_drill"]


def resolve_path(name: str | Path) -> Path:
    """Return the scenario file ``name`` names: a path, or a shipped example by its name (``street_flood``)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return shipped().get(str(name), path)


def run_drill(path: str | Path, runs: int = 100, seed: int = 1, report: str | Path | None = None,
              as_json: bool = False, progress: bool = True, *, processes: int | None = None,
              compare: bool = True, out: TextIO | None = None, measured: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Return the drill's results after running ``runs`` seeded runs (seeds ``seed`` … ``seed + runs - 1``).

    ``report`` writes the self-contained HTML report there; ``as_json`` prints the results (without the
    per-minute curves of every run) as JSON on ``out`` (default stdout), else a summary table;
    ``progress`` shows a progress bar on stderr; ``compare=False`` skips the scenario's variants.
    ``measured`` (:func:`scenarios.measured.measure_activation`) runs the scenario as that live drill
    activation (its scope, plan, level, the live roster already read) and adds "measured vs predicted".
    Raises :class:`~mobilize.errors.InvalidInput` for a bad scenario, before anything runs.
    """
    out = out or sys.stdout
    scenario = load_scenario(resolve_path(path))
    if measured is not None:
        from scenarios.measured import scenario_for
        scenario = scenario_for(scenario, measured)
    if not compare:
        from dataclasses import replace
        scenario = replace(scenario, variants=())
    if runs < 1:
        from mobilize.errors import InvalidInput, Problem
        raise InvalidInput("推演次数须为正整数", "runs must be at least 1", [Problem("须 ≥ 1", "must be ≥ 1", field="runs",
                                                                                  value=runs)])
    prepare(scenario)
    total = runs * (1 + len(scenario.variants))
    console = Console(file=sys.stderr)
    if progress:
        with Progress(TextColumn("推演 drill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("runs", total=total)
            result = run_many(scenario, runs, seed, processes=processes,
                              progress=lambda done, _total: bar.update(task, completed=done))
    else:
        result = run_many(scenario, runs, seed, processes=processes)
    if measured is not None:
        from scenarios.measured import compare_measured
        result["measured"] = compare_measured(measured, result)
    if report is not None:
        Path(report).write_text(render_report(result), encoding="utf-8")
    if as_json:
        json.dump(compact(result), out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        _print_summary(result, Console(file=out), report)
    return result


def compact(result: dict[str, Any]) -> dict[str, Any]:
    """Return the results without the bulky parts (per-run curves, per-post tables, post names)."""
    slim = {k: v for k, v in result.items() if k != "variants"}
    slim["variants"] = []
    for v in result["variants"]:
        agg = {k: x for k, x in v["aggregate"].items() if k not in ("posts", "post_names", "branches", "series", "groups")}
        agg["posts_never_staffed"] = sorted(k for k, p in v["aggregate"]["posts"].items() if p["never_staffed"] >= 0.5)
        per_run = [{k: r[k] for k in ("seed", "slots", "assigned", "confirmed", "arrived", "time_to", "counts",
                                      "short_by_skill", "short_by_community")} for r in v["runs"]]
        slim["variants"].append({**{k: x for k, x in v.items() if k not in ("runs", "aggregate")},
                                 "aggregate": agg, "runs": per_run})
    return slim


def _fmt(x: float | None) -> str:
    return "never 未达到" if x is None else f"{x:.0f}"


def _print_summary(result: dict[str, Any], console: Console, report) -> None:
    table = Table(title=f"{result['scenario']['name']} — {result['runs']} runs, seeds {result['seed']}…")
    table.add_column("方案 variant")
    for head in ("held 在岗派单", "arrived 到岗", "50% arrived min", "90% arrived min", "100% arrived min",
                 "borrowed 借调", "escalations 升级"):
        table.add_column(head, justify="right")
    for v in result["variants"]:
        a = v["aggregate"]
        t = a["time_to"]["arrived"]
        esc = sum((a["counts"].get(k, {}).get("mean") or 0) for k in ("escalated_ack", "escalated_arrive"))
        table.add_row(v["name"], f"{a['fill_rate']['mean'] * 100:.1f}%", f"{a['arrive_rate']['mean'] * 100:.1f}%",
                      _fmt(t["50"]["p50"]), _fmt(t["90"]["p50"]), _fmt(t["100"]["p50"]),
                      f"{(a['counts'].get('borrowed', {}).get('mean') or 0):.1f}", f"{esc:.1f}")
    console.print(table)
    timing = result["timing"]
    console.print(f"{timing['runs_s']:.1f}s on {result['processes']} processes (+{timing['prepare_s']:.1f}s to prepare)")
    if report is not None:
        console.print(f"报告 report: {report}")
