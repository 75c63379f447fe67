"""Masks anything token-shaped, every secret registered at run time in the forms it travels
in (as is, URL-encoded, in an HTTP Basic ``Authorization`` value), and every
``Authorization`` header value, in text."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

#: A PyPI API token: ``pypi-`` and a base64url macaroon. Shorter runs are left alone.
TOKEN_PATTERN = re.compile(r"pypi-[A-Za-z0-9_\-]{16,}")
#: A JSON Web Token, such as a CI's OIDC identity token.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+")
#: The password in a URL's userinfo (``scheme://user:password@host``).
URL_PASSWORD_PATTERN = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
#: The value of an ``Authorization`` header (``Basic ...``, ``Bearer ...``), also as a JSON
#: or Python mapping entry: the scheme stays readable, the credentials do not.
AUTHORIZATION_PATTERN = re.compile(
    r"""(?P<name>\bauthorization["']?\s*[:=]\s*["']?)"""
    r"""(?P<scheme>(?:basic|bearer|token|digest|negotiate)\s+)?[^\s"',;]+""",
    re.IGNORECASE,
)
#: ``__token__:pypi-`` in base64: the start of any PyPI token's Basic credentials.
BASIC_TOKEN_PATTERN = re.compile(r"X190b2tlbl9fOnB5cGkt[A-Za-z0-9+/_\-]*=*")
MASK = "pypi-****"
_MIN_SECRET = 6
_TOKEN_USERNAME = "__token__"  # noqa: S105 - the fixed username of token uploads
_secrets: set[str] = set()
_longest_first: list[str] = []  # _secrets, longest first: the order they are masked in
_registrations = [0]  # grows with every registration (secrets and secret variables)


def _add_secret(form: str) -> None:
    if form not in _secrets:
        _secrets.add(form)
        _longest_first[:] = sorted(_secrets, key=len, reverse=True)
        _registrations[0] += 1


def registrations() -> int:
    """A number that grows whenever a secret or a secret variable is registered: what counts
    as a secret is unchanged while it stays the same."""
    return _registrations[0]


def register_secret(secret: str) -> None:
    """Mask ``secret`` wherever it appears in later output (passwords that are not tokens),
    also URL-encoded, as the password of ``__token__`` Basic credentials, and in base64
    at any of the three byte offsets it can have inside longer base64 text."""
    secret = secret.strip()
    if len(secret) < _MIN_SECRET:
        return
    _add_secret(secret)
    for encoded in (quote(secret, safe=""), quote_plus(secret)):
        _add_secret(encoded)
        _add_secret(re.sub(r"%[0-9A-F]{2}", lambda escape: escape.group().lower(), encoded))
    _add_base64(f"{_TOKEN_USERNAME}:{secret}".encode())
    raw = secret.encode()
    for offset in range(3):
        whole = base64.b64encode(bytes(offset) + raw).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        _add_base64(whole[start:end].encode(), encoded=True)


def register_credentials(username: str, password: str) -> None:
    """:func:`register_secret` for ``password``, and mask the Basic credentials
    ``username:password`` (the username alone stays readable)."""
    register_secret(password)
    if len(password.strip()) >= _MIN_SECRET:
        _add_base64(f"{username}:{password.strip()}".encode())


def _add_base64(data: bytes, *, encoded: bool = False) -> None:
    """Mask base64 ``data`` (``encoded``) or the base64 of ``data``, in both alphabets."""
    text = (data if encoded else base64.b64encode(data)).decode()
    for form in (text, text.translate(str.maketrans("+/", "-_")), text.rstrip("=")):
        if len(form) >= _MIN_SECRET:
            _add_secret(form)


def redact(text: str) -> str:
    """Return ``text`` with every token-shaped string, registered secret (in its encoded
    forms too), URL password and ``Authorization`` header value masked."""
    for secret in tuple(_longest_first):
        text = text.replace(secret, "****")
    text = AUTHORIZATION_PATTERN.sub(lambda m: f"{m['name']}{m['scheme'] or ''}****", text)
    text = BASIC_TOKEN_PATTERN.sub("****", text)
    text = TOKEN_PATTERN.sub(MASK, text)
    text = URL_PASSWORD_PATTERN.sub(r"\1****@", text)
    return JWT_PATTERN.sub("****", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record, so third-party log text is masked too."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_factory_installed = False


def _redacting_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            RedactingFilter().filter(record)
        except Exception:  # a malformed log call: logging reports it when formatting
            record.msg, record.args = redact(str(record.msg)), None
        return record

    return factory


def install_log_redaction() -> None:
    """Redact every log record where it is made (any logger, including twine's, urllib3's,
    requests', httpx's and id's children), and attach the filter to known handlers too."""
    global _factory_installed
    if not _factory_installed:
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
        _factory_installed = True
    redacting = RedactingFilter()
    for name in (None, "nox", "twine", "httpx", "urllib3", "requests", "id"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redacting)


_secret_variables: set[str] = set()


def register_secret_variable(name: str) -> None:
    """Treat environment variable ``name`` as holding a secret (a configured ``token-env``):
    releasekit takes it out of its environment when it starts a child, and no child gets it."""
    if name not in _secret_variables:
        _secret_variables.add(name)
        _registrations[0] += 1


def secret_variables() -> frozenset[str]:
    """The variables registered with :func:`register_secret_variable`."""
    return frozenset(_secret_variables)
