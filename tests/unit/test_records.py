"""Solve records: what is saved reads back as the same problem, including records saved by earlier versions."""

from __future__ import annotations

import gzip
import json

from mobilize.activations.records import columns_of, encode_inputs, encode_solve, load_solve, rows_of
from mobilize.costs import CostPolicy
from mobilize.costs import Person as Candidate
from mobilize.costs import Post as Demand
from mobilize.solver import solve

PEOPLE = [Candidate(1, "C1", "S1", 30.0, 120.0, frozenset({"medical", "driving"}), leader=True),
          Candidate(2, "C1", "S1", 30.001, 120.0005, frozenset({"driving"}), squad="SQ-甲", preassigned_post="C1/med"),
          Candidate(3, "C2", "S1", 30.01, 120.02, frozenset(), recent_duty=2, eligible=False)]
POSTS = [Demand("C1/med", "C1", "S1", 30.0, 120.0, headcount=2, skills_any=frozenset({"medical", "driving"}),
                leader_required=True, priority=1, group="medical"),
         Demand("C2/gate", "C2", "S1", 30.01, 120.02, headcount=1, priority=2)]


def test_a_record_reads_back_as_the_problem_and_answer_it_was_saved_with():
    policy = CostPolicy(borrow=7)
    solution = solve(PEOPLE, POSTS, policy)
    people, posts, read_policy, current, assignment, objective = load_solve(
        encode_solve(encode_inputs(PEOPLE, POSTS, policy, {2: "C1/med"}), solution))
    assert (people, posts, read_policy, current) == (PEOPLE, POSTS, policy, {2: "C1/med"})
    assert assignment == [[a.person, a.slot_group] for a in solution.assignments]
    assert objective == solution.objective
    assert rows_of(columns_of(PEOPLE, Candidate), Candidate) == PEOPLE


def test_a_record_written_by_the_standard_json_encoder_still_reads():
    # Records before orjson: json.dumps text (non-ASCII escaped), the same layout.
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    text = (f'{{"people":{dumps(columns_of(PEOPLE, Candidate))},"posts":{dumps(columns_of(POSTS, Demand))},'
            f'"policy":{dumps(CostPolicy().as_dict())},"current":[],"assignment":[[1,"C1/med.leader"]],"objective":5}}')
    people, posts, policy, current, assignment, objective = load_solve(gzip.compress(text.encode()))
    assert (people, posts, policy, current, assignment, objective) == (PEOPLE, POSTS, CostPolicy(), {}, [[1, "C1/med.leader"]], 5)
