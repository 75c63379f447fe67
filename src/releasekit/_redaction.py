"""Masks anything token-shaped, and every secret registered at run time, in text."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

#: A PyPI API token: ``pypi-`` and a base64url macaroon. Shorter runs are left alone.
TOKEN_PATTERN = re.compile(r"pypi-[A-Za-z0-9_\-]{16,}")
#: A JSON Web Token, such as a CI's OIDC identity token.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+")
#: The password in a URL's userinfo (``scheme://user:password@host``).
URL_PASSWORD_PATTERN = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
MASK = "pypi-****"
_MIN_SECRET = 6
_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Mask ``secret`` wherever it appears in later output (passwords that are not tokens)."""
    secret = secret.strip()
    if len(secret) >= _MIN_SECRET:
        _secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with every token-shaped string, registered secret and URL password
    masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "****")
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
