"""Where credentials come from, and what a token is. The only module that handles secrets.

Credentials for an index are resolved in this order (SPEC): the index's token variable
(``TEST_PYPI_API_TOKEN``, ``PYPI_API_TOKEN`` or a configured ``token-env``), twine's
``TWINE_USERNAME``/``TWINE_PASSWORD``, the system keyring, then trusted publishing when
running in a CI that issues OIDC tokens. Every token is read offline (instance, scope,
expiry) and refused with the reason before any request is made.

Indexes named ``pypi`` and ``testpypi`` expect tokens made for the public instance's domain
even when their URLs are overridden (local stand-ins exercise the same checks). Any other
index accepts any password; but a token made for PyPI or TestPyPI is refused there, because
sending it to a third-party server would leak it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
from packaging.utils import canonicalize_name

from releasekit.errors import CredentialError
from releasekit.indexes import PYPI, TESTPYPI, USER_AGENT, Index, builtin_indexes, web_root
from releasekit.redaction import register_secret

if TYPE_CHECKING:
    from releasekit.project import Project

#: Environment variables that may hold a secret; build backends and smoke commands never see them.
SECRET_ENV_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_PASSWORD")
TOKEN_PREFIX = "pypi-"  # noqa: S105 - a prefix, not a secret
TOKEN_USERNAME = "__token__"  # noqa: S105 - the fixed username of token uploads
_INSTANCE_NAMES = {PYPI: "PyPI", TESTPYPI: "TestPyPI"}
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_CI_WITH_OIDC = ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI")


def scrubbed_environ(project: Project | None = None) -> dict[str, str]:
    """A copy of the environment without any variable that may hold an index secret.

    With ``project``, the ``token-env`` variables of its configured indexes go too.
    """
    drop = set(SECRET_ENV_VARS)
    if project is not None:
        indexes: dict[str, dict[str, str]] = project.settings.get("indexes", {})
        drop.update(table["token-env"] for table in indexes.values() if "token-env" in table)
    return {key: value for key, value in os.environ.items() if key not in drop}


# --- what a token is --------------------------------------------------------------------


def public_locations() -> dict[str, str]:
    """The location (domain) written in tokens of PyPI and TestPyPI, from twine's endpoints."""
    return {name: _host(web_root(index.upload_url)) for name, index in builtin_indexes().items()}


def _host(url: str) -> str:
    return httpx.URL(url).host


def instance_name(location: str) -> str:
    """How messages name the instance a token location stands for."""
    for name, domain in public_locations().items():
        if domain == location:
            return f"{_INSTANCE_NAMES[name]} ({domain})"
    return f"an index at {location!r}" if location else "no index (empty location)"


@dataclass(frozen=True)
class TokenInfo:
    """What a PyPI API token says about itself, read offline (nothing here is verified).

    ``project_names`` is None when no caveat limits the token to named projects; several
    name caveats intersect. ``trusted_publisher`` is the publisher id of a token minted by
    trusted publishing.
    """

    location: str
    project_names: frozenset[str] | None = None
    project_ids: tuple[str, ...] = ()
    user_id: str | None = None
    trusted_publisher: str | None = None
    not_before: int | None = None
    expires_at: int | None = None
    unknown_caveats: int = 0

    @property
    def instance(self) -> str:
        """The instance the token was made for, in words."""
        return instance_name(self.location)

    @property
    def account_wide(self) -> bool:
        """True when the token can upload to every project of its account."""
        return (
            self.project_names is None and not self.project_ids and self.trusted_publisher is None
        )

    @property
    def scope(self) -> str:
        """The token's scope, in words."""
        if self.trusted_publisher is not None:
            return f"trusted publisher {self.trusted_publisher} (projects registered to it)"
        if self.project_names is not None:
            names = ", ".join(sorted(self.project_names)) or "no project at all"
            return f"project{'s' if len(self.project_names) != 1 else ''}: {names}"
        if self.project_ids:
            return f"project id{'s' if len(self.project_ids) != 1 else ''}: " + ", ".join(
                self.project_ids
            )
        return "account-wide (every project of the account)"

    @property
    def expiry(self) -> str:
        """When the token expires, in words."""
        if self.expires_at is None:
            return "no expiry"
        return "expires " + _when(self.expires_at)

    def allows(self, project_name: str) -> bool | None:
        """Whether the token may upload to ``project_name`` (None: cannot tell offline)."""
        if self.project_names is not None:
            return canonicalize_name(project_name) in self.project_names
        if self.project_ids or self.trusted_publisher is not None:
            return None
        return True

    def describe(self) -> str:
        """Instance, scope and expiry in one line (never any part of the secret)."""
        text = f"a token for {self.instance}; scope {self.scope}; {self.expiry}"
        if self.unknown_caveats:
            text += f"; {self.unknown_caveats} restriction(s) releasekit cannot read"
        return text


def _when(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class _Malformed(ValueError):
    """The token's bytes are not a macaroon; the message says what is wrong."""


def _b64url_decode(text: str) -> bytes:
    if not text:
        raise _Malformed("nothing follows `pypi-`")
    if not _B64URL.fullmatch(text):
        raise _Malformed("it has characters that are not base64url (letters, digits, - and _)")
    if len(text) % 4 == 1:
        raise _Malformed("it is truncated (its length cannot be base64)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the checks above catch what this does
        raise _Malformed("it is not valid base64url") from exc


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed("it is truncated (a field runs past the end)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _Malformed("a field length is impossibly large")


def _fields(data: bytes, pos: int) -> tuple[list[tuple[int, bytes]], int]:
    """One section of a V2 binary macaroon: fields up to the end marker."""
    found: list[tuple[int, bytes]] = []
    while True:
        kind, pos = _uvarint(data, pos)
        if kind == 0:
            return found, pos
        length, pos = _uvarint(data, pos)
        if pos + length > len(data):
            raise _Malformed("it is truncated (a field runs past the end)")
        found.append((kind, data[pos : pos + length]))
        pos += length


def _macaroon(data: bytes) -> tuple[str, list[bytes]]:
    """(location, first-party caveats) of a V2 binary macaroon (pymacaroons' format)."""
    if not data or data[0] != 2:
        raise _Malformed("it is not a version 2 macaroon")
    header, pos = _fields(data, 1)
    kinds = [kind for kind, _ in header]
    if kinds not in ([1, 2], [2]):
        raise _Malformed("its header lacks an identifier")
    location = header[0][1].decode("utf-8", "replace") if kinds == [1, 2] else ""
    caveats = []
    while True:
        section, pos = _fields(data, pos)
        if not section:
            break
        caveats += [value for kind, value in section if kind == 2]
    signature, pos = _fields(data + b"\x00", pos)  # the signature has no end marker
    if [kind for kind, _ in signature] != [6] or len(signature[0][1]) != 32:
        raise _Malformed("its signature is missing or truncated")
    if pos != len(data) + 1:
        raise _Malformed("it has bytes after the signature")
    return location, caveats


def read_token(secret: str, source: str = "the token") -> TokenInfo:
    """Read a PyPI API token offline: location, scope and expiry from its caveats.

    Understands the current caveat lists (``[tag, ...]``, tags 0-4 including trusted
    publishers) and the legacy JSON objects. Raises :class:`CredentialError` naming
    ``source`` (never showing the value) when ``secret`` is not a token.
    """
    secret = secret.strip()
    if not secret.startswith(TOKEN_PREFIX):
        raise _not_a_token(source, "it does not start with `pypi-`")
    try:
        location, caveats = _macaroon(_b64url_decode(secret[len(TOKEN_PREFIX) :]))
    except _Malformed as exc:
        raise _not_a_token(source, str(exc)) from None
    info: dict[str, Any] = {"location": location}
    for raw in caveats:
        try:
            caveat = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            info["unknown_caveats"] = info.get("unknown_caveats", 0) + 1
            continue
        if not _apply_caveat(caveat, info):
            info["unknown_caveats"] = info.get("unknown_caveats", 0) + 1
    return TokenInfo(**info)


def _apply_caveat(caveat: Any, info: dict[str, Any]) -> bool:
    """Fold one caveat into ``info``; False when it is not one releasekit knows."""

    def names(values: Iterable[Any]) -> None:
        mine = frozenset(canonicalize_name(str(v)) for v in values)
        known = info.get("project_names")
        info["project_names"] = mine if known is None else known & mine

    def expiry(expires_at: Any, not_before: Any) -> None:
        info["expires_at"] = min(int(expires_at), info.get("expires_at") or int(expires_at))
        info["not_before"] = max(int(not_before), info.get("not_before") or int(not_before))

    if isinstance(caveat, list) and caveat and isinstance(caveat[0], int):
        tag, fields = caveat[0], caveat[1:]
        if tag == 0 and len(fields) >= 2:
            expiry(fields[0], fields[1])
        elif tag == 1 and fields and isinstance(fields[0], list):
            names(fields[0])
        elif tag == 2 and fields and isinstance(fields[0], list):
            info["project_ids"] = (*info.get("project_ids", ()), *map(str, fields[0]))
        elif tag == 3 and fields:
            info["user_id"] = str(fields[0])
        elif tag == 4 and fields:
            info["trusted_publisher"] = str(fields[0])
        else:
            return False
        return True
    if isinstance(caveat, dict):
        permissions = caveat.get("permissions")
        if caveat.get("version") == 1 and permissions == "user":
            return True
        if caveat.get("version") == 1 and isinstance(permissions, dict):
            names(permissions.get("projects", []))
            return True
        if "exp" in caveat and "nbf" in caveat:
            expiry(caveat["exp"], caveat["nbf"])
            return True
        if isinstance(caveat.get("project_ids"), list):
            info["project_ids"] = (*info.get("project_ids", ()), *map(str, caveat["project_ids"]))
            return True
    return False


def _not_a_token(source: str, reason: str) -> CredentialError:
    return CredentialError(
        f"The value of {source} is not a PyPI API token: {reason}.",
        why="It may be cut short, carry quotes or extra text, or be a password or another "
        "service's token.",
        fix=f"Copy the whole token (it starts with `pypi-`) into {source} again; if it was "
        "lost, create a new one in the index's account settings under API tokens.",
    )


def expected_location(index: Index) -> str | None:
    """The token location ``index`` expects: PyPI's or TestPyPI's domain for those two names
    (even when their URLs are overridden), otherwise None (no PyPI token expected)."""
    return public_locations().get(index.name)


def check_token(
    info: TokenInfo,
    index: Index,
    source: str,
    project_name: str | None = None,
    now: float | None = None,
) -> None:
    """Refuse, with the reason, a token that ``index`` would refuse or must never see.

    Checked offline: the instance (a production token for TestPyPI or the reverse; a public
    instance's token for any other index), expiry, and the project scope.
    """
    expected = expected_location(index)
    if expected is not None and info.location != expected:
        raise CredentialError(
            f"{source} holds a token made for {info.instance}, but it is used for "
            f"{index.name}, which is {instance_name(expected)}.",
            why="PyPI and TestPyPI are separate services with separate accounts; each only "
            "knows its own tokens (the other would answer 403 Invalid or non-existent "
            "authentication information).",
            fix=f"Put a token created on {instance_name(expected)} in {source}.",
        )
    if expected is None and info.location in public_locations().values():
        raise CredentialError(
            f"{source} holds a token made for {info.instance}, but {index.display} is not "
            "that index.",
            why="Sending a PyPI or TestPyPI token to another server would hand it to that "
            "server's operators.",
            fix=f"Use {index.name}'s own credentials in {source}.",
        )
    moment = time.time() if now is None else now
    if info.expires_at is not None and moment >= info.expires_at:
        raise CredentialError(
            f"The token in {source} expired on {_when(info.expires_at)}.",
            why="Tokens with an expiry caveat stop working after it.",
            fix=f"Create a new token and put it in {source}.",
        )
    if info.not_before is not None and moment < info.not_before:
        raise CredentialError(
            f"The token in {source} is not valid before {_when(info.not_before)}.",
            why="Its expiry caveat starts in the future (or this machine's clock is behind).",
            fix="Check the system clock, or use a token that is valid now.",
        )
    if project_name is not None and info.allows(project_name) is False:
        raise CredentialError(
            f"The token in {source} is limited to {info.scope}; it cannot upload {project_name}.",
            why="The index refuses a project-scoped token for any other project.",
            fix=f"Create a token scoped to {project_name} (or, for its very first upload, an "
            f"account-wide one) and put it in {source}.",
        )


# --- where credentials come from ---------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one index, where they came from, and what the token is.

    ``token`` is None for a password that is not a PyPI token (private indexes). The secret
    never appears in ``repr``.
    """

    username: str
    password: str = field(repr=False)
    source: str
    token: TokenInfo | None = None

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

    The secret is registered for redaction first. A value that does not look like a PyPI
    token is accepted only for indexes other than PyPI and TestPyPI.
    """
    secret = secret.strip()
    register_secret(secret)
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


class MissingCredentials(CredentialError):
    """No credentials were found for an index."""


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


def in_oidc_ci() -> bool:
    """True when running in a CI that can issue OIDC identity tokens."""
    return any(os.environ.get(name) for name in _CI_WITH_OIDC)


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
    if trusted_publishing and in_oidc_ci():
        minted = trusted_publishing_credentials(index, project_name)
        if minted is not None:
            return minted
    raise _missing(index)


def describe_sources(index: Index, project_name: str | None = None) -> Credentials | str:
    """For ``doctor``: the credentials ``index`` would use (checked offline), or how trusted
    publishing would provide them. Never makes a request."""
    try:
        return resolve_credentials(index, project_name, trusted_publishing=False)
    except MissingCredentials:
        if not in_oidc_ci():
            raise
    if os.environ.get("GITHUB_ACTIONS") and not os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        raise MissingCredentials(
            f"No credentials for {index.display}, and this GitHub Actions job cannot use "
            "trusted publishing.",
            why="The job has no permission to request an OIDC identity token.",
            fix="Give the job `permissions: id-token: write`, or pass a token secret.",
        )
    return "trusted publishing (a short-lived token is minted at upload time)"


# --- trusted publishing ------------------------------------------------------------------


def _claims(jwt: str) -> dict[str, Any]:
    try:
        import id as oidc

        _header, payload, _signature = oidc.decode_oidc_token(jwt)
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _claims_text(claims: dict[str, Any]) -> str:
    shown = ("repository", "job_workflow_ref", "workflow_ref", "environment", "ref")
    parts = [f"{key}={claims[key]!r}" for key in shown if claims.get(key)]
    return "; ".join(parts) if parts else "(no claims could be read)"


def trusted_publishing_credentials(
    index: Index, project_name: str | None = None, *, timeout: float = 15.0
) -> Credentials | None:
    """Exchange the CI's OIDC identity token for a short-lived upload token for ``index``.

    Uses the index's ``/_/oidc/audience`` and ``/_/oidc/mint-token`` endpoints (from its web
    root). Returns None outside a CI that issues identity tokens; failures are explained,
    with the identity token's claims beside the index's error codes.
    """
    import id as oidc

    root = index.web_url
    with httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}, trust_env=False) as http:
        try:
            answer = http.get(root + "_/oidc/audience")
        except httpx.HTTPError as exc:
            raise _tp_error(index, f"its audience endpoint could not be reached ({exc})") from None
        if answer.status_code != 200:
            raise _tp_error(
                index,
                f"it answered {answer.status_code} for its audience ({_message(answer)})",
                why="Trusted publishing is not enabled on this index (private indexes and "
                "local stand-ins usually have none).",
            )
        audience = str(answer.json().get("audience", ""))
        try:
            jwt = oidc.detect_credential(audience)
        except oidc.IdentityError as exc:
            raise _tp_error(
                index,
                f"the CI would not issue an identity token ({exc})",
                why="The job lacks the permission to request OIDC tokens.",
                fix="Add `permissions: id-token: write` to the publishing job (GitHub "
                "Actions), or pass a token secret instead.",
            ) from None
        if jwt is None:
            return None
        register_secret(jwt)
        claims = _claims(jwt)
        try:
            minted = http.post(root + "_/oidc/mint-token", json={"token": jwt})
        except httpx.HTTPError as exc:
            raise _tp_error(index, f"its mint-token endpoint failed ({exc})") from None
    body = _json(minted)
    token = body.get("token")
    if minted.status_code != 200 or not isinstance(token, str):
        errors = body.get("errors") or [{"code": str(minted.status_code), "description": ""}]
        codes = "; ".join(f"{e.get('code')}: {e.get('description')}" for e in errors)
        raise _tp_error(
            index,
            f"it refused to mint a token ({codes})",
            why=f"No trusted publisher on {index.name} matches this workflow's identity: "
            f"{_claims_text(claims)}.",
            fix=f"On {index.name}, the project's publishing settings must name exactly this "
            "repository, workflow file and environment (or add a pending publisher for a "
            "new project).",
        )
    return token_credentials(token, index, "trusted publishing", project_name)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    return str(_json(response).get("message") or response.reason_phrase)


def _tp_error(index: Index, what: str, why: str = "", fix: str = "") -> CredentialError:
    return CredentialError(
        f"Trusted publishing to {index.display} failed: {what}.",
        why=why or "The index or the CI's identity service is unreachable or misconfigured.",
        fix=fix or "Retry; or pass a token secret instead of trusted publishing.",
    )


# --- synthetic tokens, for local stand-ins and tests --------------------------------------


def mint_token(
    index_name: str,
    *,
    projects: Sequence[str] | None = None,
    expires_at: int | None = None,
    not_before: int | None = None,
    trusted_publisher: str | None = None,
    location: str | None = None,
) -> str:
    """A synthetic, correctly formed token for index ``index_name`` (signed with a random
    key: it works only where it is configured, such as a :class:`LocalIndex`).

    Its location is PyPI's or TestPyPI's domain for those names (else ``location``, default
    ``localhost``); ``projects`` scopes it, otherwise it is account-wide; ``expires_at``
    adds an expiry; ``trusted_publisher`` makes it look minted by trusted publishing.
    """
    from pypitoken import Token

    domain = public_locations().get(index_name) or location or "localhost"
    token = Token.create(domain=domain, identifier=str(uuid.uuid4()), key=secrets.token_bytes(32))
    if projects is not None:
        token.restrict(project_names=[canonicalize_name(p) for p in projects])
    elif trusted_publisher is None:
        token.restrict(user_id=str(uuid.uuid4()))
    if trusted_publisher is not None:
        token._macaroon.add_first_party_caveat(json.dumps([4, trusted_publisher]))
    if expires_at is not None:
        start = not_before if not_before is not None else min(int(time.time()), expires_at) - 60
        token.restrict(not_before=start, not_after=expires_at)
    return str(token.dump())
