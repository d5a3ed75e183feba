"""The bulk writers' rows: an order's cost columns built once per breakdown are still each order's own;
the compact JSON encoder built once writes what ``json.dumps`` writes."""

from __future__ import annotations

import asyncio
import doctest
import json
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy.dialects import postgresql, sqlite

import realtime.log
from mobilize.activations import rows as bulk, writes
from mobilize.costs import COMPONENTS
from mobilize.solver import Assignment
from realtime.log import compact_json


class _Connection:
    """Records the statements; answers the two id reads as the databases would (last rowid 106; ids 501…)."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.calls: list[tuple[str, list]] = []

    async def exec_driver_sql(self, statement, rows):
        if "last_insert_rowid" in statement:
            return [(106,)]
        if "nextval" in statement:
            return [(501 + i,) for i in range(rows[1])]
        self.calls.append((statement, rows))


class _Session:
    def __init__(self, dialect):
        self.conn = _Connection(dialect)

    async def connection(self):
        return self.conn


def _assignment(person: int, post: str, travel: int, *, borrowed=False, leader=False, fairness=0) -> Assignment:
    return Assignment(person, post, post, leader, borrowed, travel, travel + 3 + fairness, travel, 0, 3, 0, fairness, 0)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()], ids=["sqlite", "postgres"])
def test_each_order_row_is_its_own_assignments(dialect):
    at = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assignments = [_assignment(1, "a", 4), _assignment(2, "b", 4), _assignment(3, "a", 4, borrowed=True),
                   _assignment(4, "a", 4, leader=True), _assignment(5, "b", 9, fairness=2), _assignment(6, "a", 4)]
    session = _Session(dialect)
    arrive, ids = asyncio.run(writes.insert_orders(session, 7, assignments, {"a": 10, "b": 11}, ack_minutes=5,
                                                   arrive_minutes=30, at=at))
    ((statement, rows),) = session.conn.calls
    assert "INSERT INTO orders" in statement
    columns = [c.strip().strip('"') for c in statement.split("(", 1)[1].split(")", 1)[0].split(",")]
    rows = [dict(zip(columns, row, strict=True)) for row in rows]
    if dialect.name == "sqlite":  # the rowids one executemany gave, ending at last_insert_rowid()
        assert ids == {a.person: 101 + i for i, a in enumerate(assignments)}
    else:  # drawn from the sequence and inserted with the rows
        assert ids == {a.person: 501 + i for i, a in enumerate(assignments)}
        assert [row.pop("id") for row in rows] == list(ids.values())
    db = bulk.Rows(session.conn)
    now = db.when(at)
    ack, arrive_at = writes.deadlines(at, 5, 30)
    assert arrive == arrive_at
    expected = [{"activation_id": 7, "person_id": a.person, "post_id": {"a": 10, "b": 11}[a.post], "status": "notified",
                 "leader_part": a.leader_part, "borrowed": a.borrowed, "travel_minutes": a.travel_minutes,
                 "cost": a.cost, "explanation": writes._explanation(a), "created_at": now, "updated_at": now,
                 "ack_deadline_at": db.when(ack), "arrive_deadline_at": db.when(arrive_at), "arrive_minutes": 30,
                 "escalation_step": 0, "next_check_at": db.when(ack)} for a in assignments]
    assert rows == expected
    for a, row in zip(assignments, rows, strict=True):
        stored = SimpleNamespace(explanation=json.loads(row["explanation"]), leader_part=row["leader_part"],
                                 borrowed=row["borrowed"], travel_minutes=row["travel_minutes"], cost=row["cost"])
        explanation = writes.explanation_of(stored)
        assert (explanation["borrowed"], explanation["leader_part"]) == (a.borrowed, a.leader_part)
        assert explanation["cost"] == a.cost and explanation["travel_minutes"] == a.travel_minutes
        assert explanation["parts"] == {k: getattr(a, k) for k in COMPONENTS}


def test_an_explanation_stored_whole_reads_as_stored():
    moved = {"moved_from": 3, "replaces": 17, "by": "operator:1"}
    assert writes.explanation_of(SimpleNamespace(explanation=moved, travel_minutes=0, cost=0, borrowed=False,
                                                 leader_part=False)) == moved


def test_compact_json_writes_what_json_dumps_writes():
    dumps = compact_json()
    for value in [{"post": "巡查", "n": [1, -2.5, None, True, False]}, "a\"b\\c\n\u2028", [], {},
                  {"nested": {"x": [{"y": 1e300}]}, "nan": float("nan")}, 3, 0.1, None, ("t", 1)]:
        assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(TypeError):
        dumps({"when": date(2026, 1, 1)})
    iso = compact_json(default=lambda v: v.isoformat())
    assert iso({"when": date(2026, 1, 2)}) == '{"when":"2026-01-02"}'


def test_doctests():
    assert doctest.testmod(realtime.log).failed == 0
    assert doctest.testmod(writes).failed == 0


def test_an_old_sqlite_is_refused_with_a_clear_message():
    from mobilize.db import check_sqlite

    check_sqlite()  # this machine's SQLite has JSON and UPDATE … FROM
    with pytest.raises(RuntimeError, match=r"SQLite 3\.33 or newer.*PostgreSQL") as caught:
        check_sqlite((3, 31, 1))
    assert "3.31.1 is too old" in str(caught.value) and "需要 SQLite 3.33" in str(caught.value)


def test_rows_sent_as_json_refuse_values_read_back_otherwise():
    row = (1, "巡查", True, None, 30.123456789012345)
    assert json.loads(bulk._json_rows([row])) == [list(row)]
    for value in (datetime(2026, 11, 21, 9, 0, tzinfo=UTC), date(2026, 11, 21), SimpleNamespace(x=1)):
        with pytest.raises(TypeError):
            bulk._json_rows([(1, value)])
