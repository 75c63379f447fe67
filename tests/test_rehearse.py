"""rehearse: the whole pipeline against two throwaway local indexes, on real sample projects."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
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


@pytest.mark.skipif(os.name != "posix", reason="stops the kept indexes with SIGINT")
def test_rehearse_keep_says_how_to_upload_and_install(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    env = {**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", "rehearse", "--", "--keep"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()])
    reader.start()
    output: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while not any("press Ctrl-C" in line for line in output):
            output.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        text = "".join(output)
        found = re.search(r"are in (\S+) \(mode 600", text)
        assert found, text
        env_file = Path(found.group(1))
        assert env_file.stat().st_mode & 0o777 == 0o600
        variables = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if line.strip()
        )
        assert {"TEST_PYPI_API_TOKEN", "PYPI_API_TOKEN", "RELEASEKIT_TESTPYPI_SIMPLE_URL"} <= set(
            variables
        )
        assert f"set -a; . '{env_file}'; set +a" in text
        assert "python -m pip install --no-deps --index-url http://127.0.0.1:" in text
        for secret in (variables["TEST_PYPI_API_TOKEN"], variables["PYPI_API_TOKEN"]):
            assert secret not in text
        # The instructions work: a new dev release goes to the kept stand-in and verifies there.
        assert run_nox(root, "-s", "build", "--", "--dev").returncode == 0
        published = run_nox(root, "-s", "upload_testpypi", "verify_testpypi", env=variables)
        assert published.returncode == 0, published.stdout
        assert "Verified sample-pkg 0.1.1.dev" in published.stdout
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
    while not lines.empty():
        output.append(lines.get())
    assert "Stopped the rehearsal indexes." in "".join(output)
    assert not env_file.exists()
