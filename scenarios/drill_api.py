"""Drill jobs over HTTP (``/api/v1/drills``): shipped scenarios, start, progress, report, cancel.

The server never computes a drill itself. A scenario is checked (every mistake with its line and
field) in a one-process pool, off the event loop; a job runs in its own process
(:mod:`scenarios.jobrun`), at most ``MOBILIZE_DRILL_CONCURRENT`` at once, the others queued in order.
Jobs are records in a folder (:mod:`scenarios.jobs`), so they outlive the server. Who may run drills:
drill planners (演练策划), street and higher commanders and admins; a job and its report are seen by
whoever started it and by admins.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from concurrent.futures import ProcessPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from mobilize.access import Principal
from mobilize.deps import PrincipalDep, SessionDep
from mobilize.errors import Conflict, InvalidInput, MobilizeError, NotFound, Problem
from mobilize.idempotency import request_hash, require_key
from scenarios.jobs import FINAL, DrillSettings, JobStore, now

@asynccontextmanager
async def _lifespan(app) -> AsyncIterator[None]:
    yield
    drills = getattr(app.state, "drills", None)
    if drills is not None:
        drills.close()


router = APIRouter(prefix="/drills", tags=["drills"], lifespan=_lifespan)

_NOT_FOUND = ("未找到该演练任务", "No such drill job")


class DrillStart(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    scenario: str | None = Field(default=None, description="内置场景名 a shipped scenario (street_flood, …)")
    yaml: str | None = Field(default=None, max_length=200_000, description="或上传的场景 YAML 文本 or a scenario's YAML")
    runs: int = Field(default=100, ge=1, description="推演次数 number of runs (run k uses seed + k)")
    seed: int = Field(default=1, ge=0, le=2**31, description="随机种子 seed")
    compare: bool = Field(default=True, description="运行场景中的对比方案 also run the scenario's variants")
    activation_id: int | None = Field(
        default=None, description="与该演练启动的实测结果对比 compare with this live drill activation's measured answers")


class Drills:
    """The app's drill jobs: the store, the queue and the running processes (one per app)."""

    def __init__(self, settings: DrillSettings, database_url: str) -> None:
        self.settings, self.database_url = settings, database_url
        self.store = JobStore(settings.dir)
        self.slots = asyncio.Semaphore(settings.concurrent)
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self._checker: ProcessPoolExecutor | None = None

    def checker(self) -> ProcessPoolExecutor:
        """Return the checker pool, started (and its imports warmed) on first use."""
        if self._checker is None:
            self._checker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._checker.submit(_warm)
        return self._checker

    async def check(self, name: str, text: str, against_roster: bool) -> int:
        """Return the scenario's number of variants; raise :class:`InvalidInput` for a bad scenario.

        Checked in a worker process: building a demo city to check codes against takes a while.
        """
        checked = await asyncio.get_running_loop().run_in_executor(self.checker(), check_scenario, name, text,
                                                                    against_roster)
        error = checked.get("error")
        if error is not None:
            raise InvalidInput(error["message"], error["message_en"],
                               [Problem(**{k: p.get(k) for k in ("reason_zh", "reason_en", "file", "row", "column",
                                                                 "field", "value")}) for p in error.get("problems", [])])
        return checked["variants"]

    def close(self) -> None:
        """Stop the checker process (running jobs go on in their own processes and record their outcome)."""
        if self._checker is not None:
            workers = list((getattr(self._checker, "_processes", None) or {}).values())
            self._checker.shutdown(wait=False, cancel_futures=True)
            for worker in workers:  # a check under way must not outlive the server
                worker.terminate()
            self._checker = None

    def start(self, job_id: str) -> None:
        self.tasks[job_id] = asyncio.create_task(self._run(job_id))
        self.tasks[job_id].add_done_callback(lambda _t: self.tasks.pop(job_id, None))

    async def _run(self, job_id: str) -> None:
        async with self.slots:
            job = self.store.read(job_id)
            if job is None or job["status"] != "queued":
                return  # cancelled while waiting
            env = {**os.environ, "MOBILIZE_DATABASE_URL": self.database_url}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "scenarios.jobrun", str(self.store.folder(job_id)), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=open(self.store.folder(job_id) / "runner.log", "wb"), start_new_session=True)
            self.procs[job_id] = proc
            import socket

            self.store.update(job_id, status="running", started_at=now(),
                              runner={"pid": proc.pid, "host": socket.gethostname()})
            try:
                await proc.wait()
            finally:
                self.procs.pop(job_id, None)
            self.store.read(job_id)  # folds the outcome in (or marks it interrupted)

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.store.read(job_id)
        if job["status"] in FINAL:
            raise Conflict("该演练任务已结束", "This drill job has already ended", status=job["status"])
        proc = self.procs.get(job_id)
        job = self.store.update(job_id, status="cancelled", finished_at=now())
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the runner and its Monte Carlo workers
            except ProcessLookupError:
                pass
        return job


def _warm() -> None:
    import scenarios.simulator  # noqa: F401 (the solver, numpy, OR-tools: seconds to import)


def check_scenario(name: str, text: str, against_roster: bool) -> dict[str, Any]:
    """Return ``{"variants": n}``, or ``{"error": …}`` for a bad scenario text; runs in the checker process."""
    from mobilize.yamlfile import YamlDoc
    from scenarios.model import parse_scenario
    from scenarios.simulator import prepare

    try:
        scenario = parse_scenario(YamlDoc(name, text))
        if against_roster and scenario.roster.source != "database":
            for variant in (scenario.baseline, *scenario.variants):
                prepare(scenario, variant)
    except MobilizeError as exc:
        return {"error": exc.as_dict()["error"]}
    return {"variants": len(scenario.variants)}


def drills_of(request: Request) -> Drills:
    app = request.app
    if getattr(app.state, "drills", None) is None:
        app.state.drills = Drills(DrillSettings(), app.state.settings.database_url)
    return app.state.drills


def _may_run(principal: Principal) -> None:
    from mobilize.access import Role
    from mobilize.errors import Forbidden

    if principal.role not in (Role.ADMIN, Role.DRILL_PLANNER, Role.CITY_COMMANDER, Role.DISTRICT_COMMANDER,
                              Role.STREET_COMMANDER):  # a community secretary runs live drills, not simulations
        raise Forbidden("无权运行演练推演（须为演练策划、街道及以上指挥或管理员）",
                        "Only drill planners, street or higher commanders and admins run drill simulations")


def _visible(job: dict[str, Any] | None, principal: Principal) -> dict[str, Any]:
    if job is None or not (principal.is_admin or job.get("owner") == principal.operator_id):
        raise NotFound(*_NOT_FOUND)
    return {k: v for k, v in job.items() if k not in ("request_hash", "server", "runner")}


@router.get("/scenarios", summary="内置演练场景 The shipped drill scenarios")
async def list_scenarios(request: Request, principal: PrincipalDep) -> list[dict[str, Any]]:
    from scenarios.model import shipped
    from mobilize.yamlfile import load_yaml

    drills_of(request).checker()  # the planner is about to submit one: warm the checker now
    out = []
    for name, path in shipped().items():
        data = load_yaml(path).data
        out.append({"name": name, "title": data.get("name", name), "description": data.get("description", ""),
                    "scope": str(data.get("scope")), "hazard": data.get("hazard"), "level": data.get("level"),
                    "yaml": path.read_text(encoding="utf-8")})
    return out


@router.post("/jobs", status_code=202, summary="开始演练推演 Start a drill job (Monte Carlo in the background)",
             responses={200: {"description": "同一幂等键的重复请求 a retry with the same Idempotency-Key"},
                        409: {"description": "队列已满，或幂等键用于另一请求 queue full, or key reused"}})
async def start_job(data: DrillStart, request: Request, response: Response, principal: PrincipalDep,
                    session: SessionDep, idempotency_key: Annotated[str | None, Header(max_length=128)] = None
                    ) -> dict[str, Any]:
    from scenarios.model import shipped

    _may_run(principal)
    key = require_key(idempotency_key)
    drills = drills_of(request)
    if (data.scenario is None) == (data.yaml is None):
        raise InvalidInput("请选择内置场景或上传场景文件（二选一）", "Give either a shipped scenario or a scenario YAML",
                           [Problem("二者须且只须给出一个", "exactly one of them", field="scenario")])
    if data.runs > drills.settings.max_runs:
        raise InvalidInput("推演次数过多", "Too many runs",
                           [Problem(f"须 ≤ {drills.settings.max_runs}", f"must be ≤ {drills.settings.max_runs}",
                                    field="runs", value=data.runs)])
    if data.scenario is not None:
        path = shipped().get(data.scenario)
        if path is None:
            raise InvalidInput("没有这个内置场景", "No such shipped scenario",
                               [Problem(f"可选：{', '.join(shipped())}", f"one of: {', '.join(shipped())}",
                                        field="scenario", value=data.scenario)])
        name, text = path.name, path.read_text(encoding="utf-8")
    else:
        name, text = "upload.yaml", data.yaml
    if data.activation_id is not None:  # 404 unless the caller may see that activation; it must be a drill
        from mobilize.activations.service import get_activation

        activation = await get_activation(session, data.activation_id, principal)
        if not activation.is_drill:
            raise InvalidInput("只能与演练启动对比", "Only a drill activation can be compared",
                               [Problem("该启动不是演练", "that activation is not a drill", field="activation_id",
                                        value=data.activation_id)])
    digest = request_hash(data.model_dump())
    job_scope = f"operator:{principal.operator_id}"
    job = drills.store.lookup(job_scope, key, digest)  # a retry is answered first: never re-checked nor refused
    if job is not None:
        response.status_code = 200
        return _visible(job, principal)
    variants = await drills.check(name, text, against_roster=data.activation_id is None)
    if sum(1 for j in drills.tasks if j not in drills.procs) >= drills.settings.queued:
        raise Conflict("演练任务排队已满，请稍后再试", "Too many drill jobs waiting; try again later")
    sides = 1 + (variants if data.compare and data.activation_id is None else 0)  # a comparison runs the baseline
    job, created = drills.store.create(
        {"owner": principal.operator_id, "owner_name": principal.username, "file": name, "scenario": data.scenario,
         "runs": data.runs, "seed": data.seed, "compare": data.compare, "activation_id": data.activation_id,
         "processes": drills.settings.processes, "total": data.runs * sides}, text, job_scope, key, digest)
    if created:
        drills.start(job["id"])
    else:
        response.status_code = 200
    return _visible(drills.store.read(job["id"]), principal)


@router.get("/jobs", summary="演练任务 My drill jobs (admins: all)")
async def list_jobs(request: Request, principal: PrincipalDep) -> list[dict[str, Any]]:
    jobs = drills_of(request).store.jobs()
    return [_visible(j, principal) for j in jobs if principal.is_admin or j.get("owner") == principal.operator_id]


@router.get("/jobs/{job_id}", summary="演练任务进度 A drill job's state and progress")
async def get_job(job_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    return _visible(drills_of(request).store.read(job_id), principal)


@router.post("/jobs/{job_id}/cancel", summary="取消演练任务 Cancel a queued or running drill job",
             responses={409: {"description": "已结束 already ended"}})
async def cancel_job(job_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    drills = drills_of(request)
    _visible(drills.store.read(job_id), principal)
    return _visible(drills.cancel(job_id), principal)


@router.get("/jobs/{job_id}/report", response_class=HTMLResponse,
            summary="演练报告 The job's self-contained HTML report", responses={409: {"description": "尚未完成 not done"}})
async def job_report(job_id: str, request: Request, principal: PrincipalDep) -> HTMLResponse:
    drills = drills_of(request)
    job = _visible(drills.store.read(job_id), principal)
    if not job["has_report"]:
        raise Conflict("演练尚未完成，暂无报告", "The drill has no report yet", status=job["status"])
    html = (drills.store.folder(job_id) / "report.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Security-Policy": "sandbox allow-scripts",
                                       "Content-Disposition": f'inline; filename="drill-{job_id}.html"'})
