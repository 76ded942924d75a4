"""BENCHMARKS.md keeps every table filled: a table header with no rows (as commit c98223a left
the PFR-vs-NumPy and DQ tables) or a benchmark section without any table fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _sections(text):
    """(heading, body) for every ## / ### heading."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def _tables(body):
    """Rows per table: a header line, a separator line, then the rows up to the first non-table line."""
    lines = body.splitlines()
    out = []
    for i in range(1, len(lines)):
        if SEPARATOR.match(lines[i].strip()) and lines[i - 1].lstrip().startswith("|"):
            rows = 0
            for line in lines[i + 1:]:
                if not line.lstrip().startswith("|"):
                    break
                rows += 1
            out.append((lines[i - 1].strip(), rows))
    return out


@pytest.mark.skipif(not DOC.is_file(), reason="BENCHMARKS.md is not in this checkout")
def test_every_table_has_rows():
    empty = [(h, t) for h, body in _sections(DOC.read_text()) for t, rows in _tables(body) if rows == 0]
    assert not empty, f"tables without rows in BENCHMARKS.md: {empty}"


@pytest.mark.skipif(not DOC.is_file(), reason="BENCHMARKS.md is not in this checkout")
def test_every_benchmark_section_has_a_table():
    """A section named after a benchmark script (`benchmarks/...`) reports its numbers in a table."""
    parts = re.split(r"^(## .*)$", DOC.read_text(), flags=re.M)   # a ## section with its ### subsections
    missing = [h for h, body in zip(parts[1::2], parts[2::2]) if "benchmarks/" in h and not _tables(body)]
    assert not missing, f"benchmark sections without a table: {missing}"


def test_the_parser_finds_an_empty_table():
    body = "text\n\n| a | b |\n|---|---:|\n\nmore\n\n| c |\n|---|\n| 1 |\n"
    assert _tables(body) == [("| a | b |", 0), ("| c |", 1)]
