"""benchmarks/reporting.py: provenance of the result files."""

import subprocess

from benchmarks import reporting


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


def test_commit_is_dirty_for_code_changes_but_not_for_benchmark_outputs(tmp_path, monkeypatch):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "r.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    monkeypatch.setattr(reporting, "REPO", tmp_path)
    head = reporting.commit()
    assert len(head) == 40 and not head.endswith("-dirty")

    # A benchmark rewriting its committed result file is not a code change.
    (tmp_path / "benchmarks" / "results" / "r.json").write_text('{"new": 1}\n')
    assert reporting.commit() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert reporting.commit() == f"{head}-dirty"
