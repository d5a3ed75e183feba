"""Schema migrations: bring any database to the newest schema with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "target_metadata", "upgrade"]


def target_metadata() -> list[MetaData]:
    """Return every metadata the migrations cover (ours and realtime's event log)."""
    import mobilize.activations.models  # noqa: F401  (register tables)
    import mobilize.models  # noqa: F401
    import mobilize.notify.models  # noqa: F401
    import rosters.models  # noqa: F401
    from mobilize.db import Base

    metadatas = [Base.metadata]
    try:
        from realtime.models import metadata as realtime_metadata
    except ImportError:  # pragma: no cover - realtime without its log
        pass
    else:
        metadatas.append(realtime_metadata)
    return metadatas


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config pointing at the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", "mobilize:migrations")
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision``; safe when several instances start at once."""

    def _upgrade(connection) -> None:
        if connection.dialect.name == "postgresql":
            # One migrator at a time when several instances start together.
            connection.execute(text("SELECT pg_advisory_xact_lock(727101)"))
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
