"""Trusted publishing: the CI's OIDC identity token exchanged for a short-lived upload token."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from releasekit._redaction import register_secret
from releasekit.errors import CredentialError
from releasekit.indexes import USER_AGENT, Index, http_event_hooks

if TYPE_CHECKING:
    pass

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


def exchange_identity(index: Index, *, timeout: float = 15.0) -> str | None:
    """Exchange the CI's OIDC identity token for a short-lived upload token for ``index``.

    Uses the index's ``/_/oidc/audience`` and ``/_/oidc/mint-token`` endpoints (from its web
    root). Returns None outside a CI that issues identity tokens; failures are explained,
    with the identity token's claims beside the index's error codes.
    """
    import id as oidc

    root = index.web_url
    with httpx.Client(
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
        event_hooks=http_event_hooks(),
    ) as http:
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
    return token


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
