"""Where credentials come from, in the order docs/tokens.md gives, each checked offline."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from releasekit._redaction import register_credentials
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
) -> Credentials:
    """Credentials from ``secret`` found in ``source``, checked offline for ``index``.

    The secret (and its Basic form with ``username``) is registered for redaction first. A
    value that does not look like a PyPI token is accepted only for indexes other than PyPI
    and TestPyPI.
    """
    secret = secret.strip()
    register_credentials(username, secret)
    public = expected_location(index) is not None
    if not public and not secret.startswith(TOKEN_PREFIX):
        return Credentials(username, secret, source)
    if public and username != TOKEN_USERNAME:
        raise CredentialError(
            f"{source} pairs a password with the username {username!r} for {index.name}.",
            why="PyPI and TestPyPI accept only API tokens, with the username __token__ "
            "(username/password authentication is no longer supported).",
            fix="Unset TWINE_USERNAME (or set it to __token__) and give an API token.",
        )
    info = read_token(secret, source)
    check_token(info, index, source, project_name, now)
    return Credentials(TOKEN_USERNAME, secret, source, info)


def _missing(index: Index) -> MissingCredentials:
    variable = index.token_env
    if variable is None:
        return MissingCredentials(
            f"No credentials for {index.display}: it has no token-env, and TWINE_PASSWORD "
            "is not set.",
            why="releasekit looked at TWINE_USERNAME/TWINE_PASSWORD and the keyring, and "
            "found nothing.",
            fix=f'Add token-env = "VARIABLE" to [tool.releasekit.indexes.{index.name}] and '
            "export that variable (or TWINE_USERNAME and TWINE_PASSWORD).",
        )
    expected = expected_location(index)
    what = f"a token created on {instance_name(expected)}" if expected else "the secret"
    return MissingCredentials(
        f"No credentials for {index.display}: {variable} is not set.",
        why=f"releasekit looked, in order, at {variable}, TWINE_USERNAME/TWINE_PASSWORD, the "
        "keyring and trusted publishing (only in CI with OIDC), and found nothing.",
        fix=f"Export {variable} with {what}. In GitHub Actions, store it as the repository "
        f"secret {variable} and pass it to the step: "
        f"`env: {variable}: ${{{{ secrets.{variable} }}}}`; or set up trusted publishing "
        "and give the job `permissions: id-token: write`.",
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

    Order: the index's token variable, ``TWINE_USERNAME``/``TWINE_PASSWORD``, the keyring,
    trusted publishing (in CI, unless ``trusted_publishing`` is False; this one makes
    requests to the index).
    """
    variable = index.token_env
    if variable and os.environ.get(variable, "").strip():
        secret = os.environ[variable]
        return token_credentials(secret, index, variable, project_name, now, index.username)
    if os.environ.get("TWINE_PASSWORD", "").strip():
        username = os.environ.get("TWINE_USERNAME") or TOKEN_USERNAME
        return token_credentials(
            os.environ["TWINE_PASSWORD"], index, "TWINE_PASSWORD", project_name, now, username
        )
    stored = _from_keyring(index)
    if stored:
        return token_credentials(stored, index, "the keyring", project_name, now, index.username)
    if trusted_publishing and detect_ci().issues_oidc:
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
