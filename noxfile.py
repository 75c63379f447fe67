"""releasekit's own sessions (tests, lint, typecheck) and, through releasekit.nox, the
release sessions that release releasekit itself (`nox -l` lists them all).

Run with releasekit importable, for example `uv run nox -s tests` from a fresh clone.
"""

from __future__ import annotations

import nox

import releasekit.nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite in parallel (pytest-xdist); arguments after -- go to pytest."""
    session.install("-e", ".", "--group", "test")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check src/ with mypy --strict."""
    session.install("-e", ".", "mypy")
    session.run("mypy")


releasekit.nox.register_sessions()
