"""Every hostile input and injected fault of benchmarks/reliability.py, one test each:
the exit status, the one-line message and the state left behind (the kill -9
resume is tests/reliability/test_exact_resume.py)."""

import adaptau_tf  # noqa: F401

# isort: split

import pytest

from benchmarks.reliability import CASES, run_case

CHECKED = [case for case in CASES if not case.name.startswith("kill -9")]


@pytest.mark.parametrize("case", CHECKED, ids=[case.name for case in CHECKED])
def test_case(case, tmp_path):
    row = run_case(case, tmp_path)
    assert row["ok"], row["observed"]
    assert row["data_lost"] == 0
