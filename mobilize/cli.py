"""The ``mobilize`` command line: set up, load rosters, run the demo, serve the app."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mobilize.db import create_engine, create_sessionmaker, session_scope
from mobilize.errors import MobilizeError
from mobilize.settings import Settings

app = typer.Typer(
    help="mobilize 平急转换动员协调 — peacetime/emergency switch mobilization coordinator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="操作员 Operators", no_args_is_help=True)
app.add_typer(user_app, name="user")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[Settings, AsyncEngine], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` on a migrated database; print user errors in both languages and exit 1."""
    settings = settings or Settings()

    async def main() -> T:
        from mobilize.migrate import upgrade

        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await work(settings, engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except MobilizeError as exc:
        err.print(f"[bold red]错误 Error:[/] {exc.message_zh} / {exc.message_en}")
        for problem in exc.problems:
            err.print(f"  • {problem}", markup=False, highlight=False)
        extra = {k: v for k, v in exc.extra.items()}
        if extra:
            err.print(json.dumps(extra, ensure_ascii=False))
        raise typer.Exit(1) from None


def _spinner(text: str) -> Progress:
    return Progress(SpinnerColumn(), TextColumn(text), TimeElapsedColumn(), console=err, transient=True)


@app.command()
def init() -> None:
    """建库：创建或升级数据库结构 Create or upgrade the database schema."""

    async def work(settings: Settings, engine: AsyncEngine) -> None:
        console.print(f"数据库已就绪 Database ready: {_safe_url(settings.database_url)}")

    _run(work)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV (UTF-8/GBK) 或 XLSX 文件 files", exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查不写入 check only")] = False,
) -> None:
    """导入花名册（全部成功或全部不导入）Import roster files, all or nothing."""
    from rosters.transfer import import_files
    from rosters.vocabulary import load_skills, load_workgroups

    async def work(settings: Settings, engine: AsyncEngine):
        maker = create_sessionmaker(engine)
        with _spinner("正在导入 Importing…") as progress:
            progress.add_task("import")
            async with session_scope(maker) as session:
                return await import_files(session, files, skills=load_skills(settings.skills_file),
                                          workgroups=load_workgroups(settings.workgroups_file), dry_run=dry_run)

    report = _run(work)
    table = Table(title="试导入（未写入）Dry run — nothing written" if dry_run else "导入完成 Imported")
    for col in ("", "新增 created", "更新 updated", "不变 unchanged"):
        table.add_column(col)
    for key, zh in (("units", "单位 units"), ("people", "人员 people"), ("teams", "队伍 teams")):
        table.add_row(zh, str(report.created[key]), str(report.updated[key]), str(report.unchanged[key]))
    console.print(table)


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="输出文件 .xlsx 或 .csv output file")],
    unit: Annotated[str | None, typer.Option(help="只导出该单位及下级 only this unit's subtree")] = None,
) -> None:
    """导出花名册 Export the roster (CSV as UTF-8 with BOM so Excel opens it)."""
    from rosters.exporter import write_roster
    from rosters.transfer import roster_of

    if file.suffix.lower() not in (".csv", ".xlsx"):
        err.print("[red]错误 Error:[/] 只支持 .csv 或 .xlsx / only .csv and .xlsx are supported")
        raise typer.Exit(2)

    async def work(settings: Settings, engine: AsyncEngine):
        async with session_scope(create_sessionmaker(engine)) as session:
            return await roster_of(session, unit_code=unit)

    roster = _run(work)
    write_roster(file, roster)
    console.print(f"已导出 Exported {len(roster.units)} 单位 units, {len(roster.people)} 人员 people, "
                  f"{len(roster.teams)} 队伍 teams → {file}")


@app.command()
def template(directory: Annotated[Path, typer.Argument(help="输出目录 output directory")] = Path(".")) -> None:
    """生成空白花名册模板（CSV 与 XLSX）Write empty roster templates."""
    from rosters.exporter import write_template

    directory.mkdir(parents=True, exist_ok=True)
    for path in write_template(directory):
        console.print(f"  {path}")


@app.command()
def units(
    root: Annotated[str | None, typer.Option(help="从该单位开始 start at this unit code")] = None,
    depth: Annotated[int, typer.Option(help="显示层数 levels to show")] = 4,
) -> None:
    """组织架构及编码 Show the org tree with codes."""
    from rosters.models import OrgUnit

    async def work(settings: Settings, engine: AsyncEngine):
        async with session_scope(create_sessionmaker(engine)) as session:
            rows = (await session.execute(select(OrgUnit).order_by(OrgUnit.path))).scalars().all()
            return rows

    rows = _run(work)
    if not rows:
        console.print("还没有组织架构：先导入花名册或运行 mobilize demo / No units yet: import a roster or run `mobilize demo`.")
        return
    by_parent: dict[int | None, list] = {}
    for u in rows:
        by_parent.setdefault(u.parent_id, []).append(u)
    starts = [u for u in rows if u.code == root] if root else by_parent.get(None, [])
    if root and not starts:
        err.print(f"[red]错误 Error:[/] 单位编码 {root} 不存在 / no unit with code {root}")
        raise typer.Exit(1)
    for start in starts:
        tree = Tree(f"[bold]{start.name}[/] {start.code} ({start.level})")
        _grow(tree, start, by_parent, depth - 1)
        console.print(tree)


def _grow(tree: Tree, unit, by_parent, depth: int) -> None:
    children = by_parent.get(unit.id, [])
    if depth <= 0:
        if children:
            tree.add(f"[dim]… {len(children)} 个下级 children[/]")
        return
    for child in children:
        _grow(tree.add(f"{child.name} [cyan]{child.code}[/] ({child.level})"), child, by_parent, depth - 1)


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="用户名 username")],
    role: Annotated[str, typer.Option(help="admin | city_commander | district_commander | street_commander | "
                                           "community_commander | drill_planner")],
    scope: Annotated[str | None, typer.Option(help="管辖单位编码 unit code the role covers")] = None,
    name: Annotated[str | None, typer.Option(help="显示名 display name")] = None,
    password: Annotated[str | None, typer.Option(help="密码（不填则提示输入）password; prompted if omitted",
                                                 envvar="MOBILIZE_NEW_PASSWORD")] = None,
) -> None:
    """新增操作员 Add an operator with a role scoped to a unit."""
    from pydantic import ValidationError

    from mobilize.operators import OperatorCreate, create_operator
    from mobilize.validation import validation_problems

    if password is None:
        password = typer.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
    try:
        data = OperatorCreate(username=username, password=password, role=role, scope_code=scope, display_name=name)
    except ValidationError as exc:
        err.print("[bold red]错误 Error:[/] 输入有误 / invalid input")
        for problem in validation_problems(exc.errors()):
            err.print(f"  • {problem}", markup=False)
        raise typer.Exit(1) from None

    async def work(settings: Settings, engine: AsyncEngine):
        async with session_scope(create_sessionmaker(engine)) as session:
            return await create_operator(session, data, actor="cli")

    op = _run(work)
    console.print(f"已创建操作员 Created operator [bold]{op.username}[/] ({op.role_zh} {op.role.value}"
                  f"{', ' + op.scope_code if op.scope_code else ''})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 host")] = None,
    port: Annotated[int | None, typer.Option(help="端口 port")] = None,
) -> None:
    """启动服务 Serve the API and the dashboard."""
    settings = Settings()
    _run(_noop, settings)
    _serve(settings, host, port)


async def _noop(settings: Settings, engine: AsyncEngine) -> None:
    return None


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    import uvicorn

    from mobilize.app import create_app

    host = host or settings.host
    port = port or settings.port
    if "MOBILIZE_PUBLIC_URL" not in os.environ:  # links must point where this server listens
        settings.public_url = f"http://{host}:{port}"
    names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost", "0.0.0.0") else {host}
    own = [f"http://{name}:{port}" for name in sorted(names) if name != "0.0.0.0"]
    settings.allowed_origins = [*settings.allowed_origins, *(o for o in own if o not in settings.allowed_origins)]
    console.print(f"服务地址 Serving on [bold]http://{host}:{port}/[/]  (API 文档 docs: /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower(),
                ws="websockets-sansio" if _has_sansio() else "auto")


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True


DEMO_DB = "sqlite+aiosqlite:///./mobilize-demo.db"


@app.command()
def demo(
    size: Annotated[str, typer.Option(help="small（一个街道约1200人）| city（31个街道293个社区44000人）")] = "small",
    seed: Annotated[int, typer.Option(help="随机种子 seed")] = 1,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="生成后启动服务 serve afterwards")] = True,
    host: Annotated[str | None, typer.Option(help="监听地址 host")] = None,
    port: Annotated[int | None, typer.Option(help="端口 port")] = None,
    password: Annotated[str | None, typer.Option(help="演示管理员密码 demo admin password (default: random)")] = None,
) -> None:
    """演示：生成演示城市到新数据库并启动服务 Generate a demo city into a fresh database and serve it."""
    if size not in ("small", "city"):
        err.print("[red]错误 Error:[/] --size 只能是 small 或 city / --size must be small or city")
        raise typer.Exit(2)
    if "MOBILIZE_DATABASE_URL" not in os.environ:
        os.environ["MOBILIZE_DATABASE_URL"] = DEMO_DB
    settings = Settings()
    if settings.is_sqlite:
        _remove_sqlite_files(settings.database_url)
    password = password or secrets.token_urlsafe(9)
    accounts = _run(lambda s, e: _make_demo(s, e, size, seed, password), settings)
    table = Table(title="演示账号 Demo accounts")
    for col in ("用户名 username", "角色 role", "管辖 scope", "密码 password"):
        table.add_column(col)
    for username, role, scope in accounts:
        table.add_row(username, role, scope or "全市 whole city", password)
    console.print(table)
    if serve_:
        _serve(settings, host, port)


def _remove_sqlite_files(url: str) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(database + suffix).unlink(missing_ok=True)


async def _make_demo(settings: Settings, engine: AsyncEngine, size: str, seed: int, password: str):
    from mobilize.operators import OperatorCreate, create_operator
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.models import OrgUnit
    from rosters.vocabulary import load_skills, load_workgroups

    maker = create_sessionmaker(engine)
    async with session_scope(maker) as session:
        if (await session.execute(select(func.count()).select_from(OrgUnit))).scalar_one():
            raise MobilizeError("数据库非空，演示需要一个新数据库", "The database is not empty; the demo needs a fresh one",
                                status=409, code="conflict")
    skills, workgroups = load_skills(settings.skills_file), load_workgroups(settings.workgroups_file)
    started = time.perf_counter()
    with _spinner(f"正在生成演示城市 Generating the {size} demo city…") as progress:
        progress.add_task("gen")
        roster = generate_city(size, seed, skills=skills, workgroups=workgroups, today=settings.local_now().date())
    with _spinner(f"正在写入 {len(roster.people)} 人 Loading {len(roster.people)} people…") as progress:
        progress.add_task("load")
        async with session_scope(maker) as session:
            await load_roster(session, roster, workgroups=workgroups)
    with _spinner("正在平时编组（防汛、防台）Pre-assigning people to flood and typhoon posts…") as progress:
        progress.add_task("pins")
        pinned = await _demo_preassign(settings, maker, roster, seed)
    console.print(f"演示城市已生成 Demo city ready: {len(roster.units)} 单位 units, {len(roster.people)} 人 people, "
                  f"{len(roster.teams)} 队伍 teams, {pinned} 编组到岗 pins in {time.perf_counter() - started:.1f}s")
    city = next(u for u in roster.units if u.level == "city")
    street = next(u for u in roster.units if u.level == "street")
    community = next(u for u in roster.units if u.level == "community")
    accounts = [("admin", "admin", None), ("street", "street_commander", street.code),
                ("community", "community_commander", community.code), ("planner", "drill_planner", city.code)]
    async with session_scope(maker) as session:
        for username, role, scope in accounts:
            await create_operator(session, OperatorCreate(username=username, password=password, role=role,
                                                          scope_code=scope, display_name=username), actor="cli:demo")
    return accounts



def _plans(settings: Settings):
    from mobilize.plans import load_plans
    from rosters.vocabulary import load_skills, load_workgroups

    return load_plans(settings.plans_dir, skills=load_skills(settings.skills_file),
                      workgroups=load_workgroups(settings.workgroups_file))


async def _demo_preassign(settings: Settings, maker, roster, seed: int) -> int:
    """Give the demo city named places and pin people to flood and typhoon posts (level II)."""
    from mobilize.activations.pins import suggest_pins
    from rosters.models import OrgUnit
    from rosters.places import demo_places

    city = next(u.code for u in roster.units if u.level == "city")
    async with session_scope(maker) as session:
        communities = (await session.execute(select(OrgUnit).where(OrgUnit.level == "community"))).scalars().all()
        await demo_places(session, communities, seed)
    plans = _plans(settings)
    pinned = 0
    for hazard in ("flood", "typhoon"):
        async with session_scope(maker) as session:
            result = await suggest_pins(session, None, city, plans[hazard], "II", at=settings.local_now())
            pinned += result["pins"]
    return pinned


def main() -> None:  # pragma: no cover
    app()


# The activation commands (activate, level, end) live beside this file and register on ``app``.
from mobilize import cli_activation  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
