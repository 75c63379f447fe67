"""The release sessions, for a project's noxfile: ``releasekit.nox.register_sessions()``.

Sessions are thin: they parse the arguments after ``--``, call the library, and turn an
error into one explained failure. They run in the nox process (no virtualenv of their own)
and are not run by a bare ``nox``: name them with ``-s``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import nox
import nox.command

from releasekit.errors import ReleasekitError, UsageError
from releasekit.project import Project, load_projects
from releasekit.redaction import install_log_redaction
from releasekit.report import get_reporter
from releasekit.workspace import for_each

Overrides = dict[str, Any]
SessionBody = Callable[[nox.Session, Overrides], None]


class _HelpShown(Exception):
    """``--help`` was shown; the session ends there."""


class SessionArguments(argparse.ArgumentParser):
    """An argument parser whose errors and help go through the reporter, not to stderr."""

    def error(self, message: str) -> NoReturn:
        """Refuse bad arguments as a :class:`UsageError`."""
        raise UsageError(
            f"{self.prog}: {message}.", fix=f"See `{self.prog} --help` for the arguments."
        )

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            get_reporter().info(message.rstrip())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """End the session after ``--help`` (argparse would end the whole process)."""
        if message:
            self._print_message(message)
        raise _HelpShown


def arguments(session: nox.Session, description: str, *, package: bool = True) -> SessionArguments:
    """A parser for the arguments of ``session``; ``package`` adds ``--package NAME``."""
    parser = SessionArguments(prog=f"nox -s {session.name} --", description=description)
    if package:
        parser.add_argument(
            "--package", metavar="NAME", help="in a monorepo, act on this package only"
        )
    return parser


def projects(args: argparse.Namespace, overrides: Overrides) -> list[Project]:
    """The projects a session acts on (all packages of a monorepo, or ``--package``)."""
    return load_projects(Path.cwd(), getattr(args, "package", None), **overrides)


def run(session: nox.Session, action: Callable[[], object]) -> None:
    """Run ``action``; a :class:`ReleasekitError` becomes one explained session failure.

    Any other exception is reported as an internal error, without a traceback unless
    ``RELEASEKIT_DEBUG`` is set.
    """
    install_log_redaction()
    reporter = get_reporter()
    try:
        action()
    except _HelpShown:
        return
    except ReleasekitError as exc:
        reporter.error(exc)
        raise nox.command.CommandFailed(exc.what.splitlines()[0]) from None
    except Exception as exc:
        if os.environ.get("RELEASEKIT_DEBUG"):
            raise
        reporter.error(
            ReleasekitError(
                f"releasekit hit an internal error: {type(exc).__name__}: {exc}",
                why="This is a bug in releasekit, not in your project.",
                fix="Set RELEASEKIT_DEBUG=1 to see the traceback, and report it.",
            )
        )
        raise nox.command.CommandFailed(f"internal error: {type(exc).__name__}") from None


def _build(session: nox.Session, overrides: Overrides) -> None:
    """Build the sdist and wheel into the dist dir; prints each file's size and sha256."""
    from releasekit.build import build

    args = arguments(session, "Build the sdist and the wheel.").parse_args(session.posargs)
    for_each(projects(args, overrides), build)


def _check_dist(session: nox.Session, overrides: Overrides) -> None:
    """Check the built files (metadata, README, names, versions, sizes); lists every problem."""
    from releasekit.check import check

    args = arguments(session, "Check the built files.").parse_args(session.posargs)
    for_each(projects(args, overrides), check)


def _verify(session: nox.Session, overrides: Overrides, index: str) -> None:
    from releasekit.verify import verify

    parser = arguments(
        session,
        f"Wait until {index} lists every file of the dist dir with the same sha256, then "
        "install that version in a fresh isolated environment and run the smoke commands.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds to wait for the files to appear on the index (default: 300)",
    )
    args = parser.parse_args(session.posargs)
    if args.timeout < 0:
        parser.error("--timeout must be 0 or more seconds")
    for_each(projects(args, overrides), lambda p: verify(p, index, timeout=args.timeout))


def _verify_testpypi(session: nox.Session, overrides: Overrides) -> None:
    """Wait for the release on TestPyPI, install it in a fresh environment and smoke-test it."""
    _verify(session, overrides, "testpypi")


def _verify_pypi(session: nox.Session, overrides: Overrides) -> None:
    """Wait for the release on PyPI, install it in a fresh environment and smoke-test it."""
    _verify(session, overrides, "pypi")


def _init_ci(session: nox.Session, overrides: Overrides) -> None:
    """Write a GitHub Actions workflow that publishes with these sessions (trusted publishing)."""
    from releasekit.ci import workflow_text, write_workflow

    parser = arguments(session, "Write .github/workflows/publish.yml for this project.")
    parser.add_argument(
        "--repository",
        required=True,
        metavar="OWNER/NAME",
        help="the GitHub repository allowed to publish",
    )
    parser.add_argument("--output", type=Path, help="workflow file to write (one package only)")
    parser.add_argument("--force", action="store_true", help="overwrite a different file")
    args = parser.parse_args(session.posargs)
    chosen = projects(args, overrides)
    monorepo = len(load_projects(Path.cwd(), **overrides)) > 1
    if args.output and len(chosen) > 1:
        raise UsageError(
            "--output names one file, and this monorepo has several packages.",
            fix="Add --package NAME, or leave out --output.",
        )
    for project in chosen:
        default = f"publish-{project.normalized_name}.yml" if monorepo else "publish.yml"
        path = args.output or Path(".github", "workflows", default)
        text = workflow_text(project, args.repository, Path.cwd(), monorepo=monorepo)
        get_reporter().success(f"Wrote {write_workflow(path, text, force=args.force)}.")


def _upload_to(index: str) -> SessionBody:
    def body(session: nox.Session, overrides: Overrides) -> None:
        from releasekit.upload import upload

        parser = arguments(session, f"Upload the dist dir to {index}.")
        parser.add_argument("--dist-dir", type=Path, metavar="DIR", help="upload from here instead")
        args = parser.parse_args(session.posargs)
        for_each(projects(args, overrides), lambda p: upload(p, index, dist_dir=args.dist_dir))

    return body


def _upload_testpypi(session: nox.Session, overrides: Overrides) -> None:
    """Upload the dist dir to TestPyPI; files already there with the same sha256 are skipped."""
    _upload_to("testpypi")(session, overrides)


def _upload_pypi(session: nox.Session, overrides: Overrides) -> None:
    """Upload the dist dir to PyPI; files already there with the same sha256 are skipped."""
    _upload_to("pypi")(session, overrides)


def _doctor(session: nox.Session, overrides: Overrides) -> None:
    """Offline preflight: configuration, version files, credentials (never shown) per index."""
    from releasekit.doctor import doctor

    args = arguments(session, "Check configuration and credentials offline.").parse_args(
        session.posargs
    )
    for project in projects(args, overrides):
        doctor(project)


#: Every session, by its fixed name (SPEC.md), in the order ``nox -l`` lists them.
SESSIONS: dict[str, SessionBody] = {
    "build": _build,
    "check_dist": _check_dist,
    "verify_testpypi": _verify_testpypi,
    "verify_pypi": _verify_pypi,
    "init_ci": _init_ci,
    "upload_testpypi": _upload_testpypi,
    "upload_pypi": _upload_pypi,
    "doctor": _doctor,
}


def _session(body: SessionBody, overrides: Overrides) -> Callable[[nox.Session], None]:
    def session(session: nox.Session) -> None:
        run(session, lambda: body(session, overrides))

    session.__doc__ = body.__doc__
    return session


def register_sessions(**overrides: Any) -> None:
    """Register releasekit's sessions in the calling noxfile.

    Keyword arguments override ``[tool.releasekit]`` keys (Python names, underscores:
    ``dist_dir="wheelhouse"``). Sessions are not run by a bare ``nox``; name them with ``-s``.
    """
    for name, body in SESSIONS.items():
        nox.session(name=name, python=False, default=False)(_session(body, overrides))
