"""What every session shares: argument parsing through the reporter, the projects a
session acts on, and turning errors into one explained failure."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import nox
import nox.command

from releasekit._project import Project, load_projects
from releasekit._redaction import install_log_redaction
from releasekit._report import get_reporter, quiet_library_logs, show_trail, verbose_wanted
from releasekit.errors import ReleasekitError, UsageError

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


class _Verbose(argparse.Action):
    """``--verbose``: the trail is shown from the moment the arguments are read."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, True)
        show_trail(True)


def arguments(session: nox.Session, description: str, *, package: bool = True) -> SessionArguments:
    """A parser for the arguments of ``session``: ``--verbose`` always, and ``--package NAME``
    with ``package``."""
    parser = SessionArguments(prog=f"nox -s {session.name} --", description=description)
    parser.add_argument(
        "--verbose",
        action=_Verbose,
        nargs=0,
        default=False,
        help="show each HTTP request, child process and decision (also RELEASEKIT_VERBOSE=1)",
    )
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
    ``RELEASEKIT_DEBUG`` is set. SIGTERM ends the session as an exception (SystemExit), so
    child processes are stopped, temporary directories removed and files restored.
    """
    from releasekit._stamp import sigterm_raises

    install_log_redaction()
    quiet_library_logs()
    show_trail(verbose_wanted())
    reporter = get_reporter()
    try:
        with sigterm_raises():
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


def _index_argument(parser: SessionArguments) -> None:
    parser.add_argument(
        "--index",
        required=True,
        metavar="NAME",
        help="an index of [tool.releasekit.indexes], or pypi or testpypi",
    )
