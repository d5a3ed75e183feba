"""Settings of one mobilize instance, read from ``MOBILIZE_*`` environment variables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything an instance needs to know; nothing connects when this is built."""

    model_config = SettingsConfigDict(env_prefix="MOBILIZE_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./mobilize.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    hub_url: str = Field(default="memory://", description="memory:// (one process) or redis://host:port/db[?prefix=NAME]")
    secret_key: str | None = Field(
        default=None,
        description="Key that signs operator tokens. Unset: a random key kept in the database (shared by instances).",
    )
    token_minutes: int = Field(default=30, ge=1, le=24 * 60, description="Lifetime of an operator token")
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"],
        description="Origins allowed to open websockets and call the API from a browser",
    )
    skills_file: Path | None = Field(default=None, description="Override of the skill vocabulary (YAML)")
    workgroups_file: Path | None = Field(default=None, description="Override of the work-group template (YAML)")
    plans_dir: Path | None = Field(default=None, description="Override of the plan (预案) folder")
    sweep_seconds: float = Field(default=15.0, gt=0, description="How often the escalation sweeper runs")
    notify_channel: str = Field(default="log", pattern="^(log|sms|inapp)$",
                                description="How people are told: log (demo: links in the server log), sms, inapp")
    sms_url: str | None = Field(default=None, description="SMS gateway endpoint (HTTP POST, JSON)")
    sms_auth_header: str | None = Field(default=None, description='Gateway auth header, e.g. "Authorization: Bearer …"')
    sms_template: str | None = Field(default=None, description="JSON body template for the gateway")
    sms_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for the SMS gateway")
    notices_inline: int = Field(
        default=2000, ge=0,
        description="Up to this many new orders, their links and messages are made in the dispatching transaction; "
                    "more are made right after its commit, a chunk at a time")
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base of personal phone links")
    heartbeat_seconds: float = Field(default=20.0, gt=0, description="Websocket ping interval")
    follow_seconds: float = Field(
        default=1.0, gt=0,
        description="With the memory:// hub, how often watched streams are checked for events other processes "
                    "(the CLI) committed")
    subscriber_queue: int = Field(
        default=2048, ge=16, description="Messages a websocket subscriber may fall behind before it must resync")
    timezone: str = Field(default="Asia/Shanghai", description="Local time of the city (availability, deadlines)")
    log_level: str = "INFO"
    sql_echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def local_now(self) -> datetime:
        """Return the current local time of the city (naive wall-clock time in ``timezone``)."""
        return datetime.now(ZoneInfo(self.timezone)).replace(tzinfo=None)
