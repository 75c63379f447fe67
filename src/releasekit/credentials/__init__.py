"""Where credentials come from, and what a token is. The only module that handles secrets.

Credentials for an index are resolved in this order (docs/tokens.md): the index's token variable
(``TEST_PYPI_API_TOKEN``, ``PYPI_API_TOKEN`` or a configured ``token-env``), twine's
``TWINE_USERNAME``/``TWINE_PASSWORD``, the system keyring, then trusted publishing when
running in a CI that issues OIDC tokens. Every token is read offline (instance, scope,
expiry) and refused with the reason before any request is made.

Indexes named ``pypi`` and ``testpypi`` expect tokens made for the public instance's domain
even when their URLs are overridden (local stand-ins exercise the same checks). Any other
index accepts any password; but a token made for PyPI or TestPyPI is refused there, because
sending it to a third-party server would leak it.

Its names are imported on first use (PEP 562): a child process's environment needs only
:mod:`releasekit.credentials.environment`, not the HTTP client that minting and checking
tokens use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from releasekit.credentials.environment import SECRET_ENV_VARS, netrc_for, scrubbed_environ
    from releasekit.credentials.sources import (
        Credentials,
        describe_sources,
        forget_secrets,
        read_credentials,
        refuse_plain_http,
        resolve_credentials,
        take_secret,
        token_credentials,
    )
    from releasekit.credentials.tokens import (
        TOKEN_PREFIX,
        TOKEN_USERNAME,
        TokenInfo,
        check_token,
        expected_location,
        instance_name,
        mint_token,
        public_locations,
        read_token,
    )
    from releasekit.credentials.trusted import exchange_identity
    from releasekit.errors import MissingCredentials

_EXPORTS = {
    "SECRET_ENV_VARS": "releasekit.credentials.environment",
    "netrc_for": "releasekit.credentials.environment",
    "scrubbed_environ": "releasekit.credentials.environment",
    "Credentials": "releasekit.credentials.sources",
    "describe_sources": "releasekit.credentials.sources",
    "forget_secrets": "releasekit.credentials.sources",
    "read_credentials": "releasekit.credentials.sources",
    "refuse_plain_http": "releasekit.credentials.sources",
    "resolve_credentials": "releasekit.credentials.sources",
    "take_secret": "releasekit.credentials.sources",
    "token_credentials": "releasekit.credentials.sources",
    "TOKEN_PREFIX": "releasekit.credentials.tokens",
    "TOKEN_USERNAME": "releasekit.credentials.tokens",
    "TokenInfo": "releasekit.credentials.tokens",
    "check_token": "releasekit.credentials.tokens",
    "expected_location": "releasekit.credentials.tokens",
    "instance_name": "releasekit.credentials.tokens",
    "mint_token": "releasekit.credentials.tokens",
    "public_locations": "releasekit.credentials.tokens",
    "read_token": "releasekit.credentials.tokens",
    "exchange_identity": "releasekit.credentials.trusted",
    "MissingCredentials": "releasekit.errors",
}

__all__ = [
    "SECRET_ENV_VARS",
    "TOKEN_PREFIX",
    "TOKEN_USERNAME",
    "Credentials",
    "MissingCredentials",
    "TokenInfo",
    "check_token",
    "describe_sources",
    "exchange_identity",
    "expected_location",
    "forget_secrets",
    "instance_name",
    "mint_token",
    "netrc_for",
    "public_locations",
    "read_credentials",
    "read_token",
    "refuse_plain_http",
    "resolve_credentials",
    "scrubbed_environ",
    "take_secret",
    "token_credentials",
]


def __getattr__(name: str) -> Any:
    """Import a name on first use, and keep it for the next use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'releasekit.credentials' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
