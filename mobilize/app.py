"""The app factory: ``create_app(settings)`` builds the FastAPI app; the lifespan owns every connection."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mobilize import __version__
from mobilize.activations.answers import AnswerWriter
from mobilize.activations.fanout import fan_out_next
from mobilize.activations.notices import Notices
from mobilize.activations.phone_routes import fast_actions
from mobilize.activations.sweeper import sweep
from mobilize.db import checkpoint, create_engine, create_sessionmaker
from mobilize.errors import MobilizeError
from mobilize.live import LiveStatus
from mobilize.live import router as live_router
from mobilize.logs import install as install_log_mask
from mobilize.notify.channels import make_channels
from mobilize.notify.worker import Notifier
from mobilize.plans import load_plans
from mobilize.security import load_secret
from mobilize.settings import Settings
from mobilize.validation import validation_problems
from realtime.hub import Hub
from realtime.follow import LogFollower
from realtime.log import bind_hub
from realtime.stats import StatsTicker
from realtime.websocket import RealtimeEndpoint
from rosters.vocabulary import load_skills, load_workgroups

__all__ = ["create_app"]

log = logging.getLogger("mobilize")
CHECKPOINT_SECONDS = 5  # how often a SQLite app copies its write-ahead log into the database file


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the mobilize app for ``settings``; nothing connects until the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        install_log_mask(settings.log_level)
        engine = create_engine(settings.database_url, echo=settings.sql_echo)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.skills = load_skills(settings.skills_file)
        app.state.workgroups = load_workgroups(settings.workgroups_file)
        app.state.plans = load_plans(settings.plans_dir, skills=app.state.skills, workgroups=app.state.workgroups)
        async with app.state.sessionmaker() as session:
            app.state.secret = await load_secret(session, settings.secret_key)
        live = app.state.live = LiveStatus(app.state.sessionmaker, app.state.secret)
        app.state.notices = Notices(channel=settings.notify_channel, base_url=settings.public_url,
                                    inline_limit=settings.notices_inline)
        hub = Hub.from_url(settings.hub_url)
        await hub.connect()
        ticker = StatsTicker(hub, live.counts, interval=1.0)
        await ticker.start()
        bind_hub(app.state.sessionmaker, hub, stats=ticker)
        app.state.hub = hub
        # One process owns an in-memory hub: events other processes commit (the CLI) reach it from the log.
        follower = LogFollower(app.state.sessionmaker, hub, stats=ticker, interval=settings.follow_seconds) \
            if settings.hub_url.startswith("memory") else None
        if follower is not None:
            await follower.start()
        app.state.realtime = RealtimeEndpoint(
            hub=hub, sessionmaker=app.state.sessionmaker, authenticate=live.authenticate, authorize=live.authorize,
            snapshot=live.snapshot, filter=live.filter, allowed_origins=settings.allowed_origins,
            heartbeat_interval=settings.heartbeat_seconds, queue_size=settings.subscriber_queue)
        if settings.notify_channel == "sms" and not settings.sms_url:
            raise RuntimeError("MOBILIZE_NOTIFY_CHANNEL=sms needs MOBILIZE_SMS_URL")
        notifier = Notifier(app.state.sessionmaker, make_channels(
            sms_url=settings.sms_url, sms_auth_header=settings.sms_auth_header, sms_template=settings.sms_template,
            sms_timeout=settings.sms_timeout), fanout=partial(fan_out_next, app.state.sessionmaker, app.state.notices))
        await notifier.start()
        app.state.notifier = notifier
        app.state.answers = AnswerWriter(app.state.sessionmaker)  # phone answers, group commit
        await app.state.answers.start()
        scheduler = AsyncIOScheduler(timezone="UTC")

        async def sweep_job() -> None:
            try:
                await sweep(app.state.sessionmaker, plans=app.state.plans, local_now=settings.local_now(),
                            notices=app.state.notices)
            except Exception:  # the next run tries again; nothing is lost (deadlines live on rows)
                log.exception("escalation sweep failed")

        # One instance at a time per process; runs missed while busy are coalesced, never stacked.
        scheduler.add_job(sweep_job, "interval", seconds=settings.sweep_seconds, max_instances=1, coalesce=True,
                          id="escalation-sweep")
        if engine.dialect.name == "sqlite":
            async def checkpoint_job() -> None:
                try:
                    await checkpoint(engine)
                except Exception:  # the next run tries again; commits checkpoint on their own past the backstop
                    log.exception("SQLite checkpoint failed")

            # Commits leave the copy of the log into the database file to this job (see db.checkpoint).
            scheduler.add_job(checkpoint_job, "interval", seconds=CHECKPOINT_SECONDS, max_instances=1,
                              coalesce=True, id="sqlite-checkpoint")
        scheduler.start()
        # What startup built (modules, app, plans: ~200k objects) lives as long as the app: keep it out of every
        # later full collection, whose pause would otherwise land on whichever broadcast is under way.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            scheduler.shutdown(wait=False)
            await app.state.answers.stop()
            await notifier.stop()
            if follower is not None:
                await follower.stop()
            await ticker.stop()
            await hub.disconnect()
            await engine.dispose()

    app = FastAPI(
        title="mobilize 平急转换动员协调",
        version=__version__,
        description=(
            "平急转换动员协调系统 API：花名册、组织架构、一键启动、派单与回执、实时状态。\n\n"
            "Peacetime/emergency switch mobilization coordinator: rosters, org tree, one-key activation, "
            "dispatch and acknowledgement, live status. Errors carry `message` (中文) and `message_en`."
        ),
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings

    @app.exception_handler(MobilizeError)
    async def _mobilize_error(_request: Request, exc: MobilizeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.as_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc.errors())
        body = MobilizeError("请求内容有误", "The request is invalid", problems, {}, 422, "invalid_input")
        return JSONResponse(body.as_dict(), status_code=422)

    from mobilize.router import router as api_router

    app.include_router(api_router, prefix="/api/v1")
    app.router.routes.insert(0, fast_actions)  # plain phone presses first, past FastAPI's routing
    app.include_router(live_router, prefix="/api/v1")

    web_root = resources.files("web")
    app.mount("/static", StaticFiles(directory=str(web_root)), name="static")

    async def live_status(websocket: WebSocket) -> None:
        """实时状态 Live status: see the protocol in the README."""
        await websocket.app.state.realtime(websocket)

    # A plain Starlette route: no per-connection dependency machinery for thousands of watchers.
    app.router.add_websocket_route("/api/v1/ws", live_status)

    @app.get("/m/{token}", include_in_schema=False)
    async def phone_page(token: str) -> FileResponse:
        """The phone page of a personal link (the page reads its token from the address)."""
        return FileResponse(str(web_root / "phone.html"), media_type="text/html",
                            headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/static/index.html")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    return app
