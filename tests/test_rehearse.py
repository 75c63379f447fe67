"""rehearse: the whole pipeline against two throwaway local indexes, on real sample projects."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import git, run_nox

pytestmark = pytest.mark.slow

STEPS = (
    "build",
    "check_dist",
    "upload_testpypi",
    "verify_testpypi",
    "upload_pypi",
    "verify_pypi",
    "upload_testpypi again",
    "upload_pypi again",
    "audit",
)


def test_rehearse_passes_and_leaves_the_project_untouched(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(releasekit='smoke = ["sample-pkg"]')
    result = run_nox(root, "-s", "rehearse")
    assert result.returncode == 0, result.stdout
    summary = result.stdout[result.stdout.index("Rehearsal: 9 steps") :]
    for step in STEPS:
        assert re.search(rf"^  {step} {{2,}}\S", summary, re.MULTILINE), summary
    assert summary.count("already there") == 4  # two files, two indexes, second round
    # each file went with an attestation, signed by a local key: never by Sigstore
    assert summary.count("uploaded with attestation") == 4, summary
    assert "Signed 2 attestation(s) with a local test key (not Sigstore)" in result.stdout
    assert "Rehearsal passed" in result.stdout
    assert "scope project: sample-pkg" in result.stdout
    assert "account-wide" not in result.stdout
    assert git(root, "status", "--porcelain", "--ignored") == ""  # no dist dir, nothing written


def test_rehearse_failure_names_the_step(make_project: Callable[..., Path]) -> None:
    root = make_project(releasekit='smoke = ["python -c \\"raise SystemExit(3)\\""]')
    result = run_nox(root, "-s", "rehearse")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout
    assert "exited 3" in result.stdout
    summary = result.stdout[result.stdout.index("Rehearsal: 4 steps") :]
    assert re.search(r"^  verify_testpypi +FAILED", summary, re.MULTILINE), summary
    assert "upload_pypi" not in summary
    assert git(root, "status", "--porcelain", "--ignored") == ""
