"""What a PyPI API token is, read offline; synthetic tokens for local stand-ins and tests."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
from packaging.utils import canonicalize_name

from releasekit.credentials.macaroons import (
    B64URL,
    Malformed,
    b64url_decode,
    header_location,
    parse_macaroon,
)
from releasekit.errors import CredentialError
from releasekit.indexes import PYPI, TESTPYPI, Index, builtin_indexes, web_root

TOKEN_PREFIX = "pypi-"  # noqa: S105 - a prefix, not a secret
TOKEN_USERNAME = "__token__"  # noqa: S105 - the fixed username of token uploads
_INSTANCE_NAMES = {PYPI: "PyPI", TESTPYPI: "TestPyPI"}


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
    trusted publishing. ``malformed_caveats`` holds (shortened) each caveat of a known kind
    whose values cannot be read; an index refuses such a token.
    """

    location: str
    project_names: frozenset[str] | None = None
    project_ids: tuple[str, ...] = ()
    user_id: str | None = None
    trusted_publisher: str | None = None
    not_before: int | None = None
    expires_at: int | None = None
    unknown_caveats: int = 0
    malformed_caveats: tuple[str, ...] = ()

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
        if self.malformed_caveats:
            text += f"; {len(self.malformed_caveats)} malformed restriction(s)"
        return text


def _when(timestamp: int) -> str:
    """A caveat's timestamp as a UTC date; one past the calendar's range, in words."""
    try:
        moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        edge = "after 9999-12-31" if timestamp > 0 else "before 0001-01-01"
        return f"{edge} (timestamp {timestamp})"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


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
        data = b64url_decode(secret[len(TOKEN_PREFIX) :])
        location, caveats, end = parse_macaroon(data)
        if end != len(data):
            raise Malformed("it has bytes after the signature")
    except Malformed as exc:
        raise _not_a_token(source, str(exc)) from None
    return _token_info(location, caveats)


def token_at(text: str) -> tuple[TokenInfo, int] | None:
    """The PyPI API token ``text`` begins with, though more text may follow it: what the
    token says about itself and its length in characters; None when there is no whole one.

    The macaroon's own structure says where it ends, so a token run together with other
    characters (string literals joined, decoded data) is found exactly.
    """
    body = _token_body(text)
    if body is None:
        return None
    try:
        location, caveats, end = parse_macaroon(b64url_decode(body))
    except Malformed:
        return None
    return _token_info(location, caveats), len(TOKEN_PREFIX) + -(-end * 4 // 3)


def token_location(text: str) -> str | None:
    """The location written in the token ``text`` begins with, also when it is cut short
    (None unless it begins like a macaroon); nothing says the rest is a token."""
    body = _token_body(text)
    if body is None:
        return None
    try:
        return header_location(b64url_decode(body[: len(body) - len(body) % 4]))
    except Malformed:
        return None


def _token_body(text: str) -> str | None:
    """The base64url run after ``pypi-`` at the start of ``text``, cut to a decodable length."""
    if not text.startswith(TOKEN_PREFIX):
        return None
    run = B64URL.match(text, len(TOKEN_PREFIX))
    if run is None:
        return None
    body = run.group()
    return body[:-1] if len(body) % 4 == 1 else body


def _token_info(location: str, caveats: list[bytes]) -> TokenInfo:
    info: dict[str, Any] = {"location": location}
    for raw in caveats:
        try:
            caveat = json.loads(raw)
        except (ValueError, RecursionError):  # not UTF-8 JSON, or nested beyond reading
            info["unknown_caveats"] = info.get("unknown_caveats", 0) + 1
            continue
        try:
            known = _apply_caveat(caveat, info)
        except (TypeError, ValueError, OverflowError):  # a known tag with unreadable values
            shown = raw.decode("utf-8", "replace")
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            info["malformed_caveats"] = (*info.get("malformed_caveats", ()), shown)
            continue
        if not known:
            info["unknown_caveats"] = info.get("unknown_caveats", 0) + 1
    return TokenInfo(**info)


def _apply_caveat(caveat: Any, info: dict[str, Any]) -> bool:
    """Fold one caveat into ``info``; False when it is not one releasekit knows."""

    def names(values: Iterable[Any]) -> None:
        mine = frozenset(canonicalize_name(str(v)) for v in values)
        known = info.get("project_names")
        info["project_names"] = mine if known is None else known & mine

    def expiry(expires_at: Any, not_before: Any) -> None:
        end, start = int(expires_at), int(not_before)
        known_end, known_start = info.get("expires_at"), info.get("not_before")
        info["expires_at"] = end if known_end is None else min(end, known_end)
        info["not_before"] = start if known_start is None else max(start, known_start)

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
    if info.malformed_caveats:
        raise CredentialError(
            f"The token in {source} has a malformed restriction: {info.malformed_caveats[0]}.",
            why="A restriction (caveat) of a kind the index knows, such as an expiry, carries "
            "values that are not of its form; the index refuses such a token.",
            fix=f"Create a new token on the index and put it in {source}.",
        )
    moment = time.time() if now is None else now
    if info.expires_at is not None and moment >= info.expires_at:
        raise CredentialError(
            f"The token in {source} has expired (expiry: {_when(info.expires_at)}).",
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
