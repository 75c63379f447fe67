"""Where credentials come from, in the order docs/tokens.md gives, each checked offline."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from releasekit._redaction import register_credentials, register_secret
from releasekit.ci import detect as detect_ci
from releasekit.ci import gitlab_id_token_variable
from releasekit.credentials.tokens import (
    TOKEN_PREFIX,
    TOKEN_USERNAME,
    TokenInfo,
    check_token,
    expected_location,
    instance_name,
    read_token,
)
from releasekit.credentials.trusted import exchange_identity
from releasekit.errors import CredentialError, MissingCredentials
from releasekit.indexes import Index

# --- secrets read from the environment, kept in memory only -------------------------------

_held: dict[str, str] = {}
_taking = threading.Lock()  # a monorepo's packages read their credentials at once


def take_secret(name: str) -> str | None:
    """The secret in environment variable ``name``, moved out of ``os.environ`` on first read.

    A value set in ``os.environ`` (again) is taken and replaces the one held; otherwise the
    value taken earlier in this process is returned (nox runs every session of one
    invocation in one process). The value is registered for redaction.
    """
    with _taking:
        value = os.environ.pop(name, None)
        if value is not None and value.strip():
            register_secret(value)
            _held[name] = value
        return _held.get(name)


def held_secrets() -> tuple[str, ...]:
    """The names of the variables whose secrets are held in memory."""
    return tuple(_held)


def forget_secrets() -> None:
    """Drop every secret held in memory (a long-lived process between jobs; tests)."""
    _held.clear()


# --- credentials only over an encrypted connection ---------------------------------------


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def plain_http(url: str) -> bool:
    """True when ``url`` is plain ``http://`` to a host other than this machine."""
    return urlsplit(url).scheme.lower() == "http" and not is_loopback(url)


def refuse_plain_http(index: Index, url: str, what: str) -> None:
    """Raise :class:`CredentialError` when ``what`` (credentials, by where they come from)
    would travel in cleartext to ``url`` of ``index``, unless it allows insecure HTTP."""
    if not plain_http(url) or index.allow_insecure_http:
        return
    host = urlsplit(url).hostname
    raise CredentialError(
        f"Refusing to send {what} to {index.name} over plain http:// (host {host}).",
        why="Over http anyone on the network path can read the credentials (an HTTP Basic "
        "Authorization header is only base64); only this machine (localhost, 127.0.0.0/8, "
        "::1) is exempt.",
        fix=f"Use an https:// URL for index {index.name}. If the network path is trusted and "
        f"you accept the risk, add allow-insecure-http = true to "
        f"[tool.releasekit.indexes.{index.name}].",
    )


# --- where credentials come from ---------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one index, where they came from, and what the token is.

    ``token`` is None for a password that is not a PyPI token (private indexes). The secret
    never appears in ``repr``. Minted (trusted-publishing) credentials carry when they were
    minted (``time.monotonic()``) and how to mint fresh ones (``renew``).
    """

    username: str
    password: str = field(repr=False)
    source: str
    token: TokenInfo | None = None
    minted_at: float | None = None
    renew: Callable[[], Credentials] | None = field(default=None, repr=False, compare=False)

    @property
    def trusted_publishing(self) -> bool:
        """True for a token minted by trusted publishing (a CI identity exists)."""
        return self.minted_at is not None

    def describe(self) -> str:
        """Where the credentials come from and what they are, without the secret."""
        what = self.token.describe() if self.token else f"username {self.username!r}, a password"
        return f"{self.source}: {what}"

    def least_privilege_warning(self, project_name: str) -> str | None:
        """What to do about an account-wide token (None for any other credentials)."""
        if self.token is None or not self.token.account_wide:
            return None
        return (
            f"the token in {self.source} is account-wide; after the first upload, "
            f"replace it with one scoped to {project_name} (least privilege)."
        )


def token_credentials(
    secret: str,
    index: Index,
    source: str,
    project_name: str | None = None,
    now: float | None = None,
    username: str = TOKEN_USERNAME,
    username_source: str = "TWINE_USERNAME",
) -> Credentials:
    """Credentials from ``secret`` found in ``source``, checked offline for ``index``.

    The secret (and its Basic form with ``username``) is registered for redaction first.
    PyPI and TestPyPI take only their own API tokens, with the username ``__token__``
    (``username_source`` says where another username came from). Any other index takes a
    password with any username; a PyPI or TestPyPI token is refused there (it would leak),
    and a private instance's token is checked for expiry and scope.
    """
    secret = secret.strip()
    register_credentials(username, secret)
    refuse_plain_http(index, index.upload_url, f"the credentials from {source}")
    public = expected_location(index) is not None
    if not public:
        if not secret.startswith(TOKEN_PREFIX):
            return Credentials(username, secret, source)
        try:
            info = read_token(secret, source)
        except CredentialError:  # a password that merely starts with `pypi-`
            return Credentials(username, secret, source)
        check_token(info, index, source, project_name, now)
        return Credentials(username, secret, source, info)
    if username != TOKEN_USERNAME:
        raise CredentialError(
            f"{source} pairs a password with the username {username!r} (from "
            f"{username_source}) for {index.name}.",
            why="PyPI and TestPyPI accept only API tokens, with the username __token__ "
            "(username/password authentication is no longer supported).",
            fix=f"Remove that username ({_unset(username_source)}) and give an API token.",
        )
    info = read_token(secret, source)
    check_token(info, index, source, project_name, now)
    return Credentials(TOKEN_USERNAME, secret, source, info)


def _unset(username_source: str) -> str:
    if username_source.startswith("["):
        return f"delete `username` from {username_source}"
    return f"unset {username_source}, or set it to __token__"


def _table(index: Index) -> str:
    return f"[tool.releasekit.indexes.{index.name}]"


def _missing(index: Index) -> MissingCredentials:
    variable = index.token_env
    who = "" if index.username == TOKEN_USERNAME else f" (the password of {index.username!r})"
    if variable is None:
        return MissingCredentials(
            f"No credentials for {index.display}: it has no token-env, and TWINE_PASSWORD "
            "is not set.",
            why="releasekit looked at TWINE_PASSWORD and at the keyring (service "
            f"{index.upload_url}, user {index.username!r}), and found nothing.",
            fix=f'Add token-env = "VARIABLE" to {_table(index)} and export that variable'
            f"{who}; or export TWINE_PASSWORD{who}; or store it with "
            f"`keyring set {index.upload_url} {index.username}`.",
        )
    expected = expected_location(index)
    what = f"a token created on {instance_name(expected)}" if expected else f"the secret{who}"
    return MissingCredentials(
        f"No credentials for {index.display}: {variable} is not set.",
        why=f"releasekit looked, in order, at {variable}, TWINE_USERNAME/TWINE_PASSWORD, the "
        "keyring and trusted publishing (only in CI with OIDC), and found nothing.",
        fix=f"Export {variable} with {what}. In GitHub Actions, store it as the repository "
        f"secret {variable} and pass it to the step: "
        f"`env: {variable}: ${{{{ secrets.{variable} }}}}`"
        + (
            "; or set up trusted publishing and give the job `permissions: id-token: write`."
            if expected
            else "."
        ),
    )


def _from_keyring(index: Index) -> str | None:
    try:
        import keyring

        return keyring.get_password(index.upload_url, index.username)
    except Exception:  # no backend, locked, or broken: the keyring is optional
        return None


def resolve_credentials(
    index: Index,
    project_name: str | None = None,
    *,
    now: float | None = None,
    trusted_publishing: bool = True,
) -> Credentials:
    """The credentials for ``index``, checked offline; raises :class:`CredentialError`.

    Order: the index's token variable, ``TWINE_USERNAME``/``TWINE_PASSWORD``, the user and
    password in the upload URL, the keyring, trusted publishing (in CI, unless
    ``trusted_publishing`` is False; this one makes requests to the index). Variables read
    are moved out of ``os.environ`` (:func:`take_secret`). Credentials for a plain
    ``http://`` URL other than this machine are refused (:func:`refuse_plain_http`).
    """
    variable = index.token_env
    table = _table(index)
    secret = take_secret(variable) if variable else None
    if variable and secret and secret.strip():
        return token_credentials(secret, index, variable, project_name, now, index.username, table)
    password = take_secret("TWINE_PASSWORD")
    if password and password.strip():
        given = os.environ.get("TWINE_USERNAME", "").strip()
        username, origin = (given, "TWINE_USERNAME") if given else (index.username, table)
        return token_credentials(
            password, index, "TWINE_PASSWORD", project_name, now, username, origin
        )
    if index.upload_auth is not None:
        user, password = index.upload_auth
        return token_credentials(
            password, index, "the upload URL", project_name, now, user, "the upload URL"
        )
    stored = _from_keyring(index)
    if stored:
        return token_credentials(
            stored, index, "the keyring", project_name, now, index.username, table
        )
    if trusted_publishing and detect_ci().issues_oidc:
        refuse_plain_http(index, index.upload_url, "an identity token (trusted publishing)")
        minted = _trusted_credentials(index, project_name)
        if minted is not None:
            return minted
    raise _missing(index)


def _trusted_credentials(index: Index, project_name: str | None) -> Credentials | None:
    """Credentials minted by trusted publishing, able to mint fresh ones (None: no identity)."""
    minted = exchange_identity(index)
    if minted is None:
        return None
    credentials = token_credentials(minted, index, "trusted publishing", project_name)

    def renew() -> Credentials:
        fresh = _trusted_credentials(index, project_name)
        if fresh is None:
            raise _missing(index)
        return fresh

    return dataclasses.replace(credentials, minted_at=time.monotonic(), renew=renew)


def describe_sources(index: Index, project_name: str | None = None) -> Credentials | str:
    """For ``doctor``: the credentials ``index`` would use (checked offline), or how trusted
    publishing would provide them. Never makes a request."""
    try:
        return resolve_credentials(index, project_name, trusted_publishing=False)
    except MissingCredentials:
        if not detect_ci().issues_oidc or index.oidc_audience is None:
            raise
    if detect_ci().identity == "gitlab":
        variable = gitlab_id_token_variable(index.oidc_audience)
        if not os.environ.get(variable, "").strip():
            raise MissingCredentials(
                f"No credentials for {index.display}, and this GitLab job has no identity "
                f"token for it ({variable} is not set).",
                why="GitLab CI issues identity tokens only as the job's `id_tokens` variables.",
                fix=f"Add `id_tokens: {{{variable}: {{aud: {index.oidc_audience}}}}}` to the "
                "job, or pass a token secret.",
            )
    if not detect_ci().oidc_permitted:
        raise MissingCredentials(
            f"No credentials for {index.display}, and this GitHub Actions job cannot use "
            "trusted publishing.",
            why="The job has no permission to request an OIDC identity token.",
            fix="Give the job `permissions: id-token: write`, or pass a token secret.",
        )
    return "trusted publishing (a short-lived token is minted at upload time)"


def read_credentials(index: Index, project_name: str | None = None) -> Credentials | None:
    """The credentials for reading a private index (its simple pages and files), checked
    offline as for uploads; None for PyPI and TestPyPI (read without credentials, and their
    tokens only upload) and when none are found (the index may be open to read)."""
    if expected_location(index) is not None:
        return None
    try:
        return resolve_credentials(index, project_name, trusted_publishing=False)
    except MissingCredentials:
        return None


def read_auth(index: Index, project_name: str | None = None) -> tuple[str, str] | None:
    """:func:`read_credentials` as the (username, password) an index client reads with."""
    found = read_credentials(index, project_name)
    return (found.username, found.password) if found else None
