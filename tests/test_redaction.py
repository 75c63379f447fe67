"""Redaction and the reporter: nothing token-shaped reaches the terminal or the logs."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from releasekit._redaction import RedactingFilter, redact, register_secret
from releasekit._report import Reporter
from releasekit.errors import ReleasekitError

TOKEN = "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmFiLTEyMzQtNTY3OC05YWJjLWRlZjAxMjM0NTY3OAACKlszLCJhYmMiXQ"


def capture() -> tuple[Reporter, io.StringIO]:
    buffer = io.StringIO()
    return Reporter(Console(file=buffer, width=200), plain=True), buffer


def test_redact_tokens_jwts_and_registered_secrets() -> None:
    register_secret("hunter2-password")
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2lnbmF0dXJlLXZhbHVl"
    text = redact(f"token={TOKEN} pw=hunter2-password id={jwt} short=pypi-abc")
    assert TOKEN[5:45] not in text and "hunter2-password" not in text and jwt not in text
    assert "pypi-abc" in text  # too short to be a token


def test_reporter_redacts_every_channel() -> None:
    reporter, buffer = capture()
    reporter.info(f"info {TOKEN}")
    reporter.warn(f"warn {TOKEN}")
    reporter.error(ReleasekitError(f"what {TOKEN}", why=f"why {TOKEN}", fix="fix"))
    reporter.output("out", f"line {TOKEN}")
    reporter.table("t", ("a",), [(TOKEN,)])
    output = buffer.getvalue()
    assert TOKEN[5:45] not in output
    assert output.count("pypi-****") == 6


def test_error_renders_what_why_fix() -> None:
    reporter, buffer = capture()
    reporter.error(ReleasekitError("It broke.", why="A cause.", fix="Do this."))
    assert buffer.getvalue().splitlines() == ["error: It broke.", "Why: A cause.", "Fix: Do this."]


def test_logging_filter_redacts_third_party_records() -> None:
    record = logging.LogRecord(
        "twine", logging.ERROR, __file__, 1, "auth %s failed", (TOKEN,), None
    )
    assert RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage() and "pypi-****" in record.getMessage()
