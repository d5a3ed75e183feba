"""Alembic environment: runs on a connection handed in by :func:`mobilize.migrate.upgrade`,
or, from the ``alembic`` command line, on ``MOBILIZE_DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context

from mobilize.migrate import target_metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # pragma: no cover - developer command line (alembic revision --autogenerate)
    from mobilize.db import create_engine
    from mobilize.settings import Settings

    async def _main() -> None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or Settings().database_url)
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_main())
