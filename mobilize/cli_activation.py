"""``mobilize activate``, ``level`` and ``end``: the one key and switch-back from the command line."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from mobilize.cli import _plans, _run, _spinner, app, console, err
from mobilize.db import create_sessionmaker, session_scope
from mobilize.settings import Settings

__all__ = ["activate", "level_", "end_", "drill"]




def _run_live(work):
    """``_run`` for commands that change an activation: with a Redis hub, their events are published to it
    after commit, so command centers watching any app instance see a change made from this terminal. (With the
    in-memory hub the server picks such changes up from the event log itself; see ``realtime.follow``.)"""

    async def wrapped(settings: Settings, engine: AsyncEngine):
        maker = create_sessionmaker(engine)
        if not settings.hub_url.startswith(("redis", "rediss", "unix")):
            return await work(settings, engine, maker)
        from realtime import Hub
        from realtime.log import bind_hub

        hub = Hub.from_url(settings.hub_url)
        try:
            await hub.connect()
        except ConnectionError:
            err.print("[yellow]注意 Note:[/] 无法连接实时状态服务，监看页面需刷新后可见本次变更 / the live-status hub is "
                      "unreachable: watchers see this change when they reconnect")
            return await work(settings, engine, maker)
        from mobilize.live import LiveStatus
        from realtime.stats import StatsTicker

        ticker = StatsTicker(hub, LiveStatus(maker, secret="").counts)  # counts only: no token is read here
        bind_hub(maker, hub, stats=ticker)
        try:
            return await work(settings, engine, maker)
        finally:
            await hub.drain()
            await ticker.flush()  # watchers' stats follow the change, as when the server makes it
            await hub.disconnect()

    return _run(wrapped)


async def _deliver(settings: Settings, maker) -> None:
    """Send what the command enqueued now (the log channel prints each person's link)."""
    from mobilize.activations.fanout import fan_out_next
    from mobilize.logs import install
    from mobilize.notify.channels import make_channels
    from mobilize.notify.worker import Notifier

    install(settings.log_level)
    channels = make_channels(sms_url=settings.sms_url, sms_auth_header=settings.sms_auth_header,
                             sms_template=settings.sms_template, sms_timeout=settings.sms_timeout)
    await Notifier(maker, channels, fanout=partial(fan_out_next, maker, _notices(settings))).drain()


def _notices(settings: Settings):
    from mobilize.activations.notices import Notices

    return Notices(channel=settings.notify_channel, base_url=settings.public_url, inline_limit=settings.notices_inline)


def _print_activation(activation, as_json: bool) -> None:
    data = {"id": activation.id, "status": activation.status, **(activation.summary or {}), "policy": activation.policy}
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    s = activation.summary or {}
    mark = "【演练 DRILL】" if s.get("drill") else ""
    console.print(f"[bold]{mark}启动 Activation #{activation.id}[/] {s.get('scope', {}).get('name', '')} "
                  f"{s.get('hazard_zh', '')} {s.get('level_zh', '')} — {activation.status}")
    table = Table(show_header=False)
    rows = [("社区 communities", s.get("communities")), ("岗位 posts", s.get("posts")), ("需求 slots", s.get("slots")),
            ("已派 filled", s.get("filled")), ("缺口 unfilled", s.get("unfilled")),
            ("借调 borrowed", s.get("borrowed")), ("临时党支部 branches", s.get("branches")),
            ("拆分的突击队 split squads", len(s.get("split_squads", []))),
            ("求解 solve", f"{s.get('solve_ms')} ms"), ("总耗时 total", f"{s.get('total_ms')} ms")]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    if s.get("shortages_by_skill"):
        console.print("缺口技能 shortages by skill: " + ", ".join(f"{k} ×{v}" for k, v in s["shortages_by_skill"].items()))
    for short in s.get("shortages", [])[:10]:
        console.print(f"  • {short['name_zh']} {short['community']}: {short['text']}", markup=False)


@app.command()
def activate(
    scope: Annotated[str, typer.Option(help="启动范围单位编码 scope unit code")],
    plan: Annotated[str, typer.Option(help="灾种预案 hazard: flood, typhoon, epidemic, fire, earthquake")],
    level: Annotated[str, typer.Option(help="响应级别 I–IV（Ⅰ级最高）")],
    drill: Annotated[bool, typer.Option("--drill", help="演练 drill")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
    export_problem: Annotated[Path | None, typer.Option(help="写出分配问题审计文件 write the audit problem JSON")] = None,
    key: Annotated[str | None, typer.Option(help="幂等键 idempotency key (a retry returns the same activation)")] = None,
    borrow: Annotated[bool, typer.Option("--borrow/--no-borrow", help="街道统筹借调 street-level borrowing for short "
                                         "posts (--no-borrow: each community staffs its own posts)")] = True,
) -> None:
    """一键启动 Activate: switch a scope to wartime, assign people to posts, form temporary branches."""
    from mobilize.activations.queries import problem_export
    from mobilize.activations.service import ActivateRequest
    from mobilize.activations.service import activate as do_activate
    from mobilize.db import begin_write

    async def work(settings: Settings, engine: AsyncEngine, maker):
        plans = _plans(settings)
        with _spinner("正在启动 Activating…") as progress:
            progress.add_task("activate")
            async with session_scope(maker) as session:
                await begin_write(session)
                activation, _created = await do_activate(
                    session, ActivateRequest(scope, plan, level, drill, key, borrow), plans=plans, at=settings.local_now(),
                    actor="cli", notices=_notices(settings))
            await _deliver(settings, maker)
            problem = None
            if export_problem is not None:
                async with session_scope(maker) as session:
                    problem = await problem_export(session, activation.id)
        return activation, problem

    activation, problem = _run_live(work)
    if problem is not None:
        export_problem.write_text(json.dumps(problem, ensure_ascii=False), encoding="utf-8")
        err.print(f"分配问题已写出 Problem written to {export_problem}")
    _print_activation(activation, as_json)


@app.command("level")
def level_(activation_id: Annotated[int, typer.Argument(help="启动编号 activation id")],
           level: Annotated[str, typer.Argument(help="新级别 I–IV")],
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """调整响应级别 Raise or lower an activation's level (re-solves, keeps people in place)."""
    from mobilize.activations.levels import change_level
    from mobilize.db import begin_write

    async def work(settings: Settings, engine: AsyncEngine, maker):
        async with session_scope(maker) as session:
            await begin_write(session)
            changed = await change_level(session, activation_id, level, plans=_plans(settings),
                                         at=settings.local_now(), notices=_notices(settings))
        await _deliver(settings, maker)  # the new orders' people are told now, as after `activate`
        return changed

    _print_activation(_run_live(work), as_json)


@app.command("end")
def end_(activation_id: Annotated[int, typer.Argument(help="启动编号 activation id")],
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """战转平 End an activation: release everyone, close branches, switch communities back."""
    from mobilize.activations.service import end
    from mobilize.db import begin_write

    async def work(settings: Settings, engine: AsyncEngine, maker):
        async with session_scope(maker) as session:
            await begin_write(session)
            return await end(session, activation_id, notices=_notices(settings))

    _print_activation(_run_live(work), as_json)


@app.command()
def drill(
    scenario: Annotated[str, typer.Argument(help="场景文件或内置场景名 scenario file, or a shipped name (street_flood, "
                                                 "city_typhoon, community_epidemic)")],
    runs: Annotated[int, typer.Option(min=1, max=100000, help="蒙特卡洛次数 number of runs")] = 100,
    seed: Annotated[int, typer.Option(help="随机种子 seed (run k uses seed+k)")] = 1,
    report: Annotated[Path | None, typer.Option(help="写出 HTML 报告 write the self-contained HTML report")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
    processes: Annotated[int | None, typer.Option(help="并行进程数 parallel processes (default: all cores)")] = None,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="运行场景中的对比方案 run the variants")] = True,
    compare_activation: Annotated[int | None, typer.Option(
        help="与该演练启动的实测结果对比 compare with this live drill activation (its scope, plan, level, roster)")] = None,
) -> None:
    """演练推演 Run a drill scenario many times on a virtual clock through the real dispatch core."""
    from mobilize.errors import MobilizeError
    from scenarios.cli import resolve_path, run_drill
    from scenarios.model import load_scenario

    try:
        path = resolve_path(scenario)
        loaded = load_scenario(path)
        measured = None
        if loaded.roster.source == "database" or compare_activation is not None:
            # a live roster (and the measured answers) are read once, then the runs go on in memory
            from scenarios.live import load_live_world
            from scenarios.measured import measure_activation, scenario_for

            async def read(settings: Settings, engine: AsyncEngine):
                async with session_scope(create_sessionmaker(engine)) as session:
                    if compare_activation is None:
                        await load_live_world(session, loaded)
                        return None
                    facts = await measure_activation(session, compare_activation, timezone=settings.timezone)
                    await load_live_world(session, scenario_for(loaded, facts))
                    return facts

            measured = _run(read)
        run_drill(path, runs, seed, report, as_json, progress=not as_json, processes=processes, compare=compare,
                  measured=measured)
    except MobilizeError as exc:
        err.print(f"[bold red]错误 Error:[/] {exc.message_zh} / {exc.message_en}")
        for problem in exc.problems:
            err.print(f"  • {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if report is not None:
        console.print(f"报告已写出 Report written to {report}")
