"""Drill jobs started from the dashboard, kept as records in a folder (no database table).

Each job is a folder ``<MOBILIZE_DRILL_DIR>/<id>/``:

* ``job.json`` — what was asked (scenario, runs, seed, by whom) and the state the server gave it
  (``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; ``interrupted`` when the server or
  the runner died first). Only the server writes it, always by an atomic rename.
* ``scenario.yaml`` — the scenario text as submitted (a shipped one is copied), so a job can be re-read.
* ``progress.json``, ``outcome.json``, ``report.html``, ``result.json`` — written by the runner process
  (:mod:`scenarios.jobrun`); the outcome is read back even when the server restarted meanwhile.

An idempotency key maps to its job through ``keys/<digest>``, published with an exclusive hard link:
of two identical requests racing, exactly one creates a job and the other gets it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mobilize.errors import Conflict, Problem

__all__ = ["DrillSettings", "JobStore", "FINAL"]

FINAL = ("done", "failed", "cancelled", "interrupted")


class DrillSettings(BaseSettings):
    """Where drill jobs live and how many may run (``MOBILIZE_DRILL_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="MOBILIZE_DRILL_", env_file=None, extra="ignore")

    dir: Path = Field(default=Path("drills"), description="Folder of drill job records and reports")
    concurrent: int = Field(default=1, ge=1, le=4, description="Jobs running at once (each uses all its processes)")
    queued: int = Field(default=8, ge=1, le=100, description="Jobs waiting at most; more are refused (409)")
    max_runs: int = Field(default=2000, ge=1, description="Most runs one job may ask for")
    processes: int | None = Field(default=None, ge=1, description="Processes per job (default: all cores)")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(pid: int | None, host: str | None) -> bool:
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """The job folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "keys").mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path:
        if not job_id or not all(c.isalnum() or c == "-" for c in job_id):
            return self.root / "-missing-"
        return self.root / job_id

    def _key_file(self, key_scope: str, key: str) -> Path:
        return self.root / "keys" / hashlib.sha256(f"{key_scope}\n{key}".encode()).hexdigest()

    def lookup(self, key_scope: str, key: str, digest: str) -> dict[str, Any] | None:
        """Return the job this idempotency key made, None if new; 409 if the key asked for something else."""
        known = _read_json(self._key_file(key_scope, key))
        if known is None:
            return None
        if known["request_hash"] != digest:
            raise Conflict("幂等键已用于另一个请求", "This idempotency key was used for a different request",
                           [Problem("请为新的操作使用新的键", "use a new key for a new action", field="Idempotency-Key")])
        return self.read(known["job"])

    def create(self, job: dict[str, Any], scenario_text: str, key_scope: str, key: str, digest: str
               ) -> tuple[dict[str, Any], bool]:
        """Return ``(job, created)``: a new queued job, or the one a racing request with this key made."""
        job_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S-") + secrets.token_hex(4)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        (folder / "scenario.yaml").write_text(scenario_text, encoding="utf-8")
        job = {**job, "id": job_id, "status": "queued", "created_at": now(), "started_at": None, "finished_at": None,
               "request_hash": digest, "server": {"pid": os.getpid(), "host": socket.gethostname()}}
        _write_json(folder / "job.json", job)
        link = self._key_file(key_scope, key)
        tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps({"job": job_id, "request_hash": digest}), encoding="utf-8")
        try:
            os.link(tmp, link)  # exclusive: fails if another request published this key first
        except FileExistsError:
            shutil.rmtree(folder, ignore_errors=True)  # the other request's job stands
            return self.lookup(key_scope, key, digest), False
        finally:
            tmp.unlink(missing_ok=True)
        return job, True

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        path = self.folder(job_id) / "job.json"
        job = _read_json(path) or {}
        job.update(changes)
        _write_json(path, job)
        return job

    def read(self, job_id: str) -> dict[str, Any] | None:
        """Return the job with what its runner reported (progress, outcome), or None."""
        folder = self.folder(job_id)
        job = _read_json(folder / "job.json")
        if job is None:
            return None
        progress = _read_json(folder / "progress.json") or {}
        job["done"], job["total"] = progress.get("done", 0), progress.get("total", job.get("total", 0))
        if job["status"] == "running":
            outcome = _read_json(folder / "outcome.json")
            if outcome is not None:  # the runner finished (perhaps while no server watched)
                job = self.update(job_id, **outcome)
                job["done"], job["total"] = progress.get("done", 0), progress.get("total", 0)
            elif not _alive((job.get("runner") or {}).get("pid"), (job.get("runner") or {}).get("host")):
                job = self.update(job_id, status="interrupted", finished_at=now())
        elif job["status"] == "queued" and not _alive(job["server"]["pid"], job["server"]["host"]):
            job = self.update(job_id, status="interrupted", finished_at=now())
        job["has_report"] = job["status"] == "done" and (folder / "report.html").exists()
        return job

    def jobs(self) -> list[dict[str, Any]]:
        """Return every job, newest first."""
        ids = sorted((p.name for p in self.root.iterdir() if (p / "job.json").exists()), reverse=True)
        return [j for j in (self.read(i) for i in ids) if j is not None]
