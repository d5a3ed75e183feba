"""The solve record behind ``GET /api/v1/activations/{id}/problem``: a solve's inputs and answer, gzip JSON.

The inputs are kept as columns (a list per field, sets as sorted lists): far smaller and faster than a
dict per person.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.models import SolveRecord
from mobilize.costs import CostPolicy
from mobilize.costs import Person as Candidate
from mobilize.costs import Post as Demand
from mobilize.db import utcnow
from mobilize.solver import Solution

__all__ = ["columns_of", "rows_of", "encode_columns", "encode_inputs", "encode_solve", "save_solve", "load_solve"]


def columns_of(items: Sequence, cls) -> dict[str, list]:
    """Return ``items`` (dataclasses of ``cls``) as columns, each set as a sorted list."""
    out = {}
    for f in fields(cls):
        values = list(map(attrgetter(f.name), items))
        if values and isinstance(values[0], frozenset):
            listed: dict[frozenset, list] = {}  # items share a few sets: sort each once
            values = [listed[v] if v in listed else listed.setdefault(v, sorted(v)) for v in values]
        out[f.name] = values
    return out


def rows_of(columns: dict[str, list], cls) -> list:
    """Return the dataclasses of ``cls`` that :func:`columns_of` gave ``columns`` for (sets as frozensets)."""
    names = [f.name for f in fields(cls)]
    if not names or not columns[names[0]]:
        return []
    cols = []
    for f in fields(cls):
        values = columns[f.name]
        if "frozenset" in str(f.type):
            made: dict[tuple, frozenset] = {}  # one frozenset per distinct set, as the loader shares them
            values = [made[k] if (k := tuple(v)) in made else made.setdefault(k, frozenset(v)) for v in values]
        cols.append(values)
    return [cls(*row) for row in zip(*cols, strict=True)]  # positional: in field order


def encode_columns(people: dict[str, list], posts: dict[str, list], policy: dict, current: dict | None = None) -> bytes:
    """Return the JSON (UTF-8) of a solve's inputs given as columns, the head of its record (CPU only)."""
    current_pairs = [[p, q] for p, q in (current or {}).items()]
    return (b'{"people":' + orjson.dumps(people) + b',"posts":' + orjson.dumps(posts) + b',"policy":'
            + orjson.dumps(policy) + b',"current":' + orjson.dumps(current_pairs))


def encode_inputs(candidates: Sequence[Candidate], demands: Sequence[Demand], policy: CostPolicy,
                  current: dict | None = None) -> bytes:
    """Return the JSON of a solve's inputs, the head of its record (CPU only: run it off the event loop)."""
    return encode_columns(columns_of(candidates, Candidate), columns_of(demands, Demand), policy.as_dict(), current)


def encode_solve(inputs: bytes, solution: Solution) -> bytes:
    """Return the solve record: :func:`encode_inputs`'s JSON with the chosen slot groups, gzipped."""
    tail = orjson.dumps({"assignment": [[a.person, a.slot_group] for a in solution.assignments],
                         "objective": int(solution.objective)})
    return gzip.compress(inputs + b"," + tail[1:], compresslevel=1)


async def save_solve(session: AsyncSession, activation_id: int, blob: bytes) -> None:
    """Keep the solve's record (:func:`encode_solve`) so ``/problem`` can export exactly this problem."""
    await session.execute(delete(SolveRecord).where(SolveRecord.activation_id == activation_id))
    await session.execute(insert(SolveRecord.__table__).values(activation_id=activation_id, inputs=blob,
                                                               solved_at=utcnow()))


def load_solve(blob: bytes) -> tuple[list[Candidate], list[Demand], CostPolicy, dict, list, int]:
    """Return what :func:`save_solve` kept: candidates, demands, policy, current, assignment, objective."""
    data = orjson.loads(gzip.decompress(blob))  # records of every version: plain JSON
    return (rows_of(data["people"], Candidate), rows_of(data["posts"], Demand), CostPolicy.from_dict(data["policy"]),
            {p: q for p, q in data["current"]}, data["assignment"], data["objective"])
