"""A key press or a level change whose transaction fails while its worker threads run: the error comes out only
after they have ended, and nothing is written."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from mobilize.activations import solving, writes
from mobilize.activations.levels import change_level
from mobilize.activations.models import Activation, Order, Post
from mobilize.activations.service import ActivateRequest, activate
from mobilize.db import session_scope
from mobilize.plans import load_plans
from rosters.vocabulary import load_skills, load_workgroups

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("demo")


class _Broken(Exception):
    pass


def _slow_solver(monkeypatch) -> list[str]:
    """Make the solver take a while and note when it ends; return the notes."""
    notes: list[str] = []
    real = solving.solve

    def slow(*args, **kwargs):
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            notes.append(f"solver ended in {threading.current_thread().name}")
    monkeypatch.setattr(solving, "solve", slow)
    return notes


async def _counts(sessionmaker) -> tuple[int, int, int]:
    async with session_scope(sessionmaker) as s:
        return tuple([(await s.execute(select(func.count()).select_from(t))).scalar_one()
                      for t in (Activation, Post, Order)])


async def test_a_key_press_failing_beside_the_solver_waits_for_it_and_writes_nothing(sessionmaker, demo, monkeypatch):
    plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
    notes = _slow_solver(monkeypatch)
    before = await _counts(sessionmaker)

    async def broken(*args, **kwargs):
        raise _Broken  # the posts' insert fails (beside the solver on SQLite, after it on PostgreSQL)
    monkeypatch.setattr(writes, "insert_posts", broken)
    with pytest.raises(_Broken):
        async with session_scope(sessionmaker) as s:
            await activate(s, ActivateRequest(demo["street"], "flood", "I"), plans=plans, at=AT)
    assert len(notes) == 1  # the solver had ended when the error came out
    assert await _counts(sessionmaker) == before


async def test_a_raise_failing_while_the_record_is_made_waits_for_it(sessionmaker, demo, monkeypatch):
    plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
    async with session_scope(sessionmaker) as s:
        act, _ = await activate(s, ActivateRequest(demo["street"], "flood", "III"), plans=plans, at=AT)
    before = await _counts(sessionmaker)
    ended: list[bool] = []
    real = solving.records.encode_solve

    def slow_record(*args):
        time.sleep(0.3)
        ended.append(True)
        return real(*args)
    monkeypatch.setattr(solving.records, "encode_solve", slow_record)

    async def broken(*args, **kwargs):
        raise _Broken  # the orders' insert fails while the record and the branches are made
    monkeypatch.setattr(writes, "insert_orders", broken)
    with pytest.raises(_Broken):
        async with session_scope(sessionmaker) as s:
            await change_level(s, act.id, "I", plans=plans, at=AT)
    assert ended == [True]
    assert await _counts(sessionmaker) == before
    async with session_scope(sessionmaker) as s:
        assert (await s.get(Activation, act.id)).level == "III"
