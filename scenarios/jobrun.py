"""The process that runs one drill job: ``python -m scenarios.jobrun JOB_FOLDER``.

Started by the server (:mod:`scenarios.drill_api`) in a session of its own, so cancelling a job ends
the runner and its Monte Carlo workers together and the server's event loop never computes. It writes
``progress.json`` as runs finish, then ``report.html``, ``result.json`` and last ``outcome.json`` (the
final state the server records). A live roster (``roster: {database: true}``) and a comparison with a
live drill activation read the database named by ``MOBILIZE_DATABASE_URL``, and only read it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from mobilize.errors import MobilizeError
from scenarios.jobs import _write_json, now

__all__ = ["main", "run_job"]


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    a = result["variants"][0]["aggregate"]
    t = a["time_to"]["arrived"]
    return {"fill_rate": a["fill_rate"]["mean"], "arrive_rate": a["arrive_rate"]["mean"],
            "arrived_90_p50": t["90"]["p50"], "runs_s": result["timing"]["runs_s"],
            "processes": result["processes"]}


async def _read_database(scenario, activation_id: int | None):
    """Read the live world (and the activation's measured answers) from the database, then close it."""
    from mobilize.db import create_engine, create_sessionmaker, session_scope
    from mobilize.settings import Settings

    engine = create_engine(Settings().database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            measured = None
            if activation_id is not None:
                from scenarios.measured import measure_activation, scenario_for

                measured = await measure_activation(session, activation_id, timezone=Settings().timezone)
                scenario = scenario_for(scenario, measured)
            if scenario.roster.source == "database" or any(v.roster.source == "database" for v in scenario.variants):
                from scenarios.live import load_live_world

                await load_live_world(session, scenario)
            return scenario, measured
    finally:
        await engine.dispose()


def run_job(folder: Path) -> dict[str, Any]:
    """Run the job in ``folder`` and return its outcome (also written to ``outcome.json``)."""
    from scenarios.cli import compact
    from scenarios.model import load_scenario
    from scenarios.montecarlo import run_many
    from scenarios.report import render_report
    from scenarios.simulator import prepare

    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    try:
        scenario = load_scenario(folder / "scenario.yaml")
        if not job.get("compare", True):
            scenario = replace(scenario, variants=())
        measured = None
        activation_id = job.get("activation_id")
        if activation_id is not None or scenario.roster.source == "database":
            scenario, measured = asyncio.run(_read_database(scenario, activation_id))
        prepare(scenario)
        runs, seed = int(job["runs"]), int(job["seed"])
        total = runs * (1 + len(scenario.variants))
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if done == total or time.monotonic() - last[0] > 0.25:
                last[0] = time.monotonic()
                _write_json(folder / "progress.json", {"done": done, "total": total, "at": now()})

        progress(0, total)
        result = run_many(scenario, runs, seed, processes=job.get("processes"), progress=progress)
        if measured is not None:
            from scenarios.measured import compare_measured

            result["measured"] = compare_measured(measured, result)
        (folder / "report.html").write_text(render_report(result), encoding="utf-8")
        (folder / "result.json").write_text(json.dumps(compact(result), ensure_ascii=False), encoding="utf-8")
        outcome = {"status": "done", "finished_at": now(), "summary": _summary(result)}
    except MobilizeError as exc:
        outcome = {"status": "failed", "finished_at": now(), "error": exc.as_dict()["error"]}
    except Exception as exc:  # reported on the job, with the trace in the runner's log
        traceback.print_exc()
        outcome = {"status": "failed", "finished_at": now(),
                   "error": {"code": "runner_failed", "message": f"推演失败：{exc}", "message_en": f"The drill failed: {exc}"}}
    _write_json(folder / "outcome.json", outcome)
    return outcome


def main() -> None:
    run_job(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
