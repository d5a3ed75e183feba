"""Builders for drill tests: scenario files written on the fly (the small demo city, seed 1)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

INSTANT = """
behaviour:
  default: {answer: 1, decline: 0, answer_delay: 0, depart_delay: 0, speed_kmh: 15, no_show: 0}
"""


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Return a function writing a scenario file from YAML parts (each dedented) and returning its path."""
    def write(*parts: str, name: str = "drill.yaml") -> Path:
        path = tmp_path / name
        path.write_text("".join(textwrap.dedent(p).lstrip("\n") for p in parts), encoding="utf-8")
        return path
    return write
