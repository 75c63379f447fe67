"""The only place that writes to the terminal: rich when interactive, plain in CI or pipes.

Everything passes through :func:`releasekit._redaction.redact` first.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text

from releasekit._redaction import redact
from releasekit.errors import ReleasekitError


def _plain_wanted() -> bool:
    # CI, like NO_COLOR, is a convention every provider follows, not provider-specific.
    return bool(os.environ.get("CI")) or not sys.stdout.isatty() or "NO_COLOR" in os.environ


class Reporter:
    """Writes what releasekit does: messages, tables, progress, errors.

    ``plain`` (default: in CI, when output is not a terminal, or with ``NO_COLOR``) drops
    colour, progress bars and spinners, and writes one line per event.
    """

    def __init__(self, console: Console | None = None, *, plain: bool | None = None) -> None:
        self.plain = _plain_wanted() if plain is None else plain
        if console is None:
            console = (
                Console(color_system=None, highlight=False, soft_wrap=True, emoji=False)
                if self.plain
                else Console(highlight=False, emoji=False)
            )
        self.console = console

    def _line(self, text: str, style: str = "") -> None:
        self.console.print(Text(redact(text), style=style))

    def info(self, message: str) -> None:
        """A plain statement of what is happening or what was found."""
        self._line(message)

    def success(self, message: str) -> None:
        """Something finished as hoped."""
        self._line(message if self.plain else f"✓ {message}", "green")

    def warn(self, message: str) -> None:
        """Worth a look, but not a failure."""
        self._line(f"warning: {message}", "yellow")

    def error(self, error: ReleasekitError | str) -> None:
        """A failure: what happened, why, and the fix."""
        self._line(f"error: {error}", "bold red")

    def document(self, text: str) -> None:
        """Machine-readable output (JSON): unstyled, and never wrapped at the terminal's width."""
        self.console.print(Text(redact(text)), soft_wrap=True)

    def trail(self, message: str) -> None:
        """One line of the verbose trail (a request, a command, a decision); dim on a terminal."""
        self._line(message, "dim")

    def output(self, title: str, text: str) -> None:
        """A block of another program's output, indented under a title."""
        self._line(title, "dim")
        for line in text.rstrip().splitlines():
            self._line(f"    {line}")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A table; in plain mode, one line per row with aligned columns."""
        if self.plain:
            self._line(title)
            cells = [[str(cell) for cell in row] for row in rows]
            widths = (
                [max(len(row[i]) for row in cells) for i in range(len(columns))] if cells else []
            )
            for line in cells:
                padded = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                self._line("  " + "  ".join(padded).rstrip())
            return
        from rich.table import Table  # only for terminals: keeps plain (CI) start-up fast

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(Text(redact(str(cell))) for cell in row))
        self.console.print(table)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while something without measurable progress runs."""
        if self.plain:
            self._line(message)
            yield
            return
        with self.console.status(redact(message)):
            yield

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A byte progress bar; yields ``advance(nbytes)``. Plain mode: one line."""
        if self.plain:
            self._line(description)
            yield lambda _n: None
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(redact(description), total=total)
            yield lambda n: bar.advance(task, n)


#: Libraries whose debug and info logs are noise on a user's terminal (nox shows every level).
_CHATTY_LOGGERS = (
    "passlib",
    "pypiserver",
    "httpx",
    "httpcore",
    "urllib3",
    "requests",
    "twine",
    "keyring",
    "filelock",
    "markdown_it",
    "commitizen",
    "build",
)


def quiet_library_logs() -> None:
    """Let only warnings and errors of third-party libraries through to the terminal."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def verbose_wanted() -> bool:
    """True when ``RELEASEKIT_VERBOSE`` asks for the verbose trail (set, and not 0/false/no)."""
    return os.environ.get("RELEASEKIT_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


class _TrailHandler(logging.Handler):
    """Renders records of the ``releasekit`` loggers through the reporter of the thread that
    logged them: warnings as warnings, the rest as trail lines, named by their module."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = record.name.split(".")[1:] or ["releasekit"]
            text = f"[{'.'.join(part.lstrip('_') for part in parts)}] {record.getMessage()}"
            reporter = get_reporter()
            if record.levelno >= logging.WARNING:
                reporter.warn(text)
            else:
                reporter.trail(text)
        except Exception:
            self.handleError(record)


def show_trail(verbose: bool) -> None:
    """Render releasekit's own log records through the reporter, and only there: with
    ``verbose`` every HTTP request, child process and decision; otherwise only warnings."""
    logger = logging.getLogger("releasekit")
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not any(isinstance(handler, _TrailHandler) for handler in logger.handlers):
        logger.addHandler(_TrailHandler())


_reporter: Reporter | None = None
_thread = threading.local()


def get_reporter() -> Reporter:
    """The reporter of this thread inside :func:`captured`, else the process-wide one."""
    captured_here: Reporter | None = getattr(_thread, "reporter", None)
    if captured_here is not None:
        return captured_here
    global _reporter
    if _reporter is None:
        _reporter = Reporter()
    return _reporter


def set_reporter(reporter: Reporter | None) -> None:
    """Replace the process-wide reporter (``None`` makes a fresh default on next use)."""
    global _reporter
    _reporter = reporter


@contextmanager
def captured() -> Iterator[io.StringIO]:
    """Inside this block, what this thread reports goes, as plain lines, into a buffer.

    Work done in parallel reports through it, and the whole buffer is shown afterwards,
    so outputs never interleave.
    """
    buffer = io.StringIO()
    console = Console(
        file=buffer, color_system=None, highlight=False, soft_wrap=True, emoji=False, width=200
    )
    previous = getattr(_thread, "reporter", None)
    _thread.reporter = Reporter(console, plain=True)
    try:
        yield buffer
    finally:
        _thread.reporter = previous
