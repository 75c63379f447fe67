"""Redaction and the reporter: nothing token-shaped reaches the terminal or the logs."""

from __future__ import annotations

import base64
import io
import logging
from urllib.parse import quote, quote_plus

import pytest
from rich.console import Console

from releasekit._redaction import RedactingFilter, redact, register_credentials, register_secret
from releasekit._report import Reporter
from releasekit.credentials import mint_token, token_credentials
from releasekit.errors import ReleasekitError
from releasekit.indexes import Index

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


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_basic_credentials_of_a_registered_token_are_masked() -> None:
    secret = mint_token("testpypi")
    register_secret(secret)
    basic = b64(f"__token__:{secret}")
    text = redact(f"echo: Basic {basic} and bare {basic} and unpadded {basic.rstrip('=')}")
    assert basic[20:60] not in text and secret[5:45] not in text
    assert text.count("****") == 3


@pytest.mark.parametrize("before", ["", "x", "xy", "a longer prefix: "])
def test_the_base64_of_a_secret_inside_longer_base64_is_masked(before: str) -> None:
    secret = "s3cret-passw0rd-for-the-index"
    register_secret(secret)
    encoded = b64(f"{before}{secret} and more after it")
    text = redact(f"body: {encoded}")
    # the characters that encode the secret's bytes alone, at whatever offset it sits
    start, end = -(-8 * len(before) // 6), 8 * (len(before) + len(secret)) // 6
    for at in range(start, end - 11):
        assert encoded[at : at + 12] not in text, f"base64 of the secret shown at {at}"
    assert "****" in text


def test_basic_credentials_of_a_username_and_password_are_masked() -> None:
    register_credentials("ci-user", "pa55-word-not-a-token")
    basic = b64("ci-user:pa55-word-not-a-token")
    assert redact(f"sent {basic}") == "sent ****"
    assert redact("user ci-user") == "user ci-user"


def test_url_encoded_secrets_are_masked() -> None:
    secret = "p@ss/w:rd&more+x y"
    register_secret(secret)
    for encoded in (quote(secret, safe=""), quote_plus(secret), quote(secret, safe="").lower()):
        assert secret not in encoded
        assert redact(f"https://me:{encoded}@127.0.0.1/simple/") == (
            "https://me:****@127.0.0.1/simple/"
        )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ****"),
        ("authorization: Bearer abc.def.ghi rest", "authorization: Bearer **** rest"),
        ('{"Authorization": "Basic Zm9vOmJhcg=="}', '{"Authorization": "Basic ****"}'),
        ("{'authorization': 'token ghp_abcdefgh'}", "{'authorization': 'token ****'}"),
        ("AUTHORIZATION=opaque-value", "AUTHORIZATION=****"),
    ],
)
def test_authorization_header_values_are_masked(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_basic_credentials_of_any_token_are_masked_unregistered() -> None:
    basic = b64(f"__token__:{mint_token('pypi')}")
    assert redact(f"echoed {basic}.") == "echoed ****."


def test_token_credentials_register_the_basic_form_with_the_username() -> None:
    index = Index("private", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    token_credentials("private-index-password", index, "T", username="deployer")
    assert redact(b64("deployer:private-index-password")) == "****"
