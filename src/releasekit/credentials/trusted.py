"""Trusted publishing: the CI's OIDC identity token exchanged for a short-lived upload token.

The audience is bound to the index (:attr:`Index.oidc_audience`): PyPI's and TestPyPI's are
fixed by the instance, another index has one only when configured. Whatever the index's
``/_/oidc/audience`` answers is compared with it, and a mismatch is refused before an identity
token is even requested; the token is minted at, and later sent to, the web root of the index's
upload URL only. The same identity machinery gives Sigstore its token (audience ``sigstore``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import httpx

from releasekit._redaction import register_secret
from releasekit.ci import detect as detect_ci
from releasekit.ci import gitlab_id_token_variable
from releasekit.errors import CredentialError
from releasekit.indexes import USER_AGENT, Index, RetryPolicy, http_event_hooks
from releasekit.indexes.endpoints import is_loopback, public_upload_urls

#: Seconds a minted token lives on PyPI, and the age after which a fresh one is minted
#: before the next file is sent (twine does the same).
MINTED_LIFETIME = 900.0
REFRESH_AFTER = 600.0
#: The audience of identity tokens for Sigstore's certificate authority (signing).
SIGSTORE_AUDIENCE = "sigstore"


def _claims(jwt: str) -> dict[str, Any]:
    try:
        import id as oidc

        _header, payload, _signature = oidc.decode_oidc_token(jwt)
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class Publisher:
    """The trusted publisher an identity token matches: its kind and the exact fields to
    register on the index, read from the token's claims."""

    kind: str
    fields: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """The fields as one line: ``owner 'acme', repository 'pkg', ...``."""
        if not self.fields:
            return "(no claims could be read)"
        return ", ".join(f"{name} {value!r}" for name, value in self.fields)


def publisher_from_claims(claims: dict[str, Any]) -> Publisher:
    """The publisher fields an index matches against these identity-token claims."""
    text = {key: str(value) for key, value in claims.items() if isinstance(value, (str, int))}
    if "job_workflow_ref" in text or "workflow_ref" in text:
        repository = text.get("repository", "")
        workflow_ref = text.get("job_workflow_ref") or text.get("workflow_ref", "")
        return Publisher(
            "GitHub",
            (
                ("owner", text.get("repository_owner") or repository.partition("/")[0]),
                ("repository", repository.partition("/")[2]),
                ("workflow", workflow_ref.partition("@")[0].rpartition("/")[2]),
                ("environment", text.get("environment", "")),
            ),
        )
    if "project_path" in text:
        namespace, _, project = text["project_path"].rpartition("/")
        config = text.get("ci_config_ref_uri", "").partition("//")[2].partition("@")[0]
        return Publisher(
            "GitLab",
            (
                ("namespace", namespace),
                ("project", project),
                ("top-level pipeline file path", config),
                ("environment", text.get("environment", "")),
                ("issuer", text.get("iss", "")),
            ),
        )
    if "organization_slug" in text and "pipeline_slug" in text:
        return Publisher(
            "Buildkite",
            (("organization", text["organization_slug"]), ("pipeline", text["pipeline_slug"])),
        )
    if "email" in text and "google" in text.get("iss", ""):
        return Publisher("Google", (("email", text["email"]), ("subject", text.get("sub", ""))))
    shown = ("iss", "sub", "repository", "ref", "environment")
    return Publisher("", tuple((key, text[key]) for key in shown if text.get(key)))


def _register_fix(index: Index, publisher: Publisher, *, existing: bool = False) -> str:
    kind = f"a {publisher.kind} publisher" if publisher.kind else "a publisher"
    empty = " (an empty environment: leave it empty)" if publisher.kind else ""
    where = (
        "the existing project's Publishing settings"
        if existing
        else "the project's Publishing settings (or as a pending publisher for a new project)"
    )
    return (
        f"On {index.name}, in {where}, register {kind} with exactly: "
        f"{publisher.describe()}{empty}. Every field must match; a renamed workflow file or "
        "environment is another publisher."
    )


def _code_explanation(code: str, index: Index, publisher: Publisher) -> tuple[str, str]:
    """Why the index refused with ``code``, and what to do; the publisher's fields included."""
    register = _register_fix(index, publisher)
    rerun = "Rerun the job; if it happens again, publish with a token secret meanwhile."
    explanations = {
        "invalid-payload": (
            "The identity token was missing or malformed in the request to the index.",
            rerun,
        ),
        "not-enabled": (
            f"Trusted publishing (for this CI provider) is switched off on {index.name}, "
            "temporarily or for good.",
            "Wait and rerun, or publish with a token secret meanwhile.",
        ),
        "invalid-token": (
            f"{index.name} could not verify the identity token: expired, made for another "
            "audience, or issued by an identity provider it does not trust (a self-managed "
            "GitLab instance must be one the index supports).",
            rerun,
        ),
        "invalid-pending-publisher": (
            "A pending publisher matches this job, but its project exists already (a pending "
            "publisher only creates a new project).",
            _register_fix(index, publisher, existing=True),
        ),
        "invalid-reuse-token": (
            "This identity token was used to mint an upload token already; each may be used once.",
            "Rerun the job (GitLab: each job gets one value per `id_tokens` entry, so mint "
            "once per job).",
        ),
        "invalid-publisher": (
            f"No trusted publisher registered on {index.name} matches this job's identity.",
            register,
        ),
    }
    return explanations.get(
        code,
        (f"{index.name} refused to mint an upload token for this job's identity.", register),
    )


def _destination_problem(index: Index) -> CredentialError | None:
    """Why trusted publishing must not run against ``index`` (None: it may)."""
    public = public_upload_urls().get(index.name)
    host = httpx.URL(index.oidc_root).host
    if public is None or index.upload_url == public or is_loopback(host):
        return None
    return CredentialError(
        f"Trusted publishing for {index.name} refused: its upload URL points at {host}, "
        f"which is not {index.name}.",
        why=f"An identity token for {index.name}'s audience sent to another host could be "
        f"replayed there to mint a real {index.name} upload token.",
        fix=f"Use {index.name}'s own endpoints (unset RELEASEKIT_{index.name.upper()}_UPLOAD_URL "
        "and the table's upload-url), or configure that index under another name with "
        "token-env (or trusted-publishing-audience, if it offers trusted publishing).",
    )


def identity_token(audience: str, *, what: str) -> str | None:
    """The CI's OIDC identity token for ``audience`` (None outside a CI that issues them).

    ``what`` names its use in explanations. The token is registered for redaction at once.
    """
    import id as oidc

    ci = detect_ci()
    if ci.identity == "gitlab":
        variable = gitlab_id_token_variable(audience)
        if not os.environ.get(variable, "").strip():
            raise CredentialError(
                f"This GitLab job has no identity token for {what}: {variable} is not set.",
                why="GitLab CI issues OIDC identity tokens only as the job's `id_tokens` "
                "variables, one per audience.",
                fix=f"Add to the job:  id_tokens: {{{variable}: {{aud: {audience}}}}}  "
                "(and SIGSTORE_ID_TOKEN with aud sigstore for attestations).",
            )
    try:
        jwt = oidc.detect_credential(audience)
    except oidc.IdentityError as exc:
        raise CredentialError(
            f"The CI would not issue an identity token for {what} ({exc}).",
            why="The job lacks the permission to request OIDC tokens, or the CI's identity "
            "service failed.",
            fix="Add `permissions: id-token: write` to the publishing job (GitHub Actions), "
            "`id_tokens` (GitLab CI); or pass a token secret instead.",
        ) from None
    if jwt is not None:
        register_secret(jwt)
    return jwt


def exchange_identity(
    index: Index, *, timeout: float = 15.0, retry: RetryPolicy | None = None
) -> str | None:
    """Exchange the CI's OIDC identity token for a short-lived upload token for ``index``.

    Returns None for an index without trusted publishing (see :attr:`Index.oidc_audience`) or
    outside a CI that issues identity tokens. The index's audience answer must equal the
    index's own audience; minting is retried on transient failures, with a fresh identity
    token each time; each refusal is explained with the publisher fields to register.
    """
    expected = index.oidc_audience
    if expected is None:
        return None
    problem = _destination_problem(index)
    if problem is not None:
        raise problem
    policy = retry or RetryPolicy(total_seconds=min(60.0, timeout * 4))
    root = index.oidc_root
    with httpx.Client(
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
        event_hooks=http_event_hooks(),
    ) as http:

        def ask_audience(budget: float) -> httpx.Response:
            response = http.get(root + "_/oidc/audience", timeout=min(timeout, budget))
            if response.status_code >= 500 or response.status_code == 429:
                response.raise_for_status()
            return response

        answer = policy.run(ask_audience, "read the trusted-publishing audience", index)
        if answer.status_code != 200:
            raise _tp_error(
                index,
                f"it answered {answer.status_code} for its audience ({_message(answer)})",
                why="Trusted publishing is not enabled on this index (private indexes and "
                "local stand-ins usually have none).",
            )
        audience = _json(answer).get("audience")
        if audience != expected:
            raise _tp_error(
                index,
                f"it answered the audience {audience!r}, but {index.name}'s audience is "
                f"{expected!r}; refused before any identity token was requested",
                why="An identity token for another audience would let this server mint upload "
                "tokens on another index: the index's URL is wrong, or it is not the index it "
                "claims to be.",
                fix=f"Check the upload URL of {index.name} (RELEASEKIT_{index.name.upper()}_"
                "UPLOAD_URL, [tool.releasekit.indexes]) and its trusted-publishing-audience.",
            )
        claims: dict[str, Any] = {}

        def mint(budget: float) -> httpx.Response:
            jwt = identity_token(expected, what=f"trusted publishing to {index.name}")
            if jwt is None:
                raise _NoIdentity
            claims.update(_claims(jwt))
            response = http.post(
                root + "_/oidc/mint-token", json={"token": jwt}, timeout=min(timeout, budget)
            )
            if response.status_code >= 500 or response.status_code == 429:
                response.raise_for_status()
            return response

        try:
            minted = policy.run(mint, "mint a trusted-publishing token", index)
        except _NoIdentity:
            return None
    body = _json(minted)
    token = body.get("token")
    if minted.status_code == 200 and isinstance(token, str):
        register_secret(token)
        return token
    raise _mint_refusal(index, minted.status_code, body, publisher_from_claims(claims))


class _NoIdentity(Exception):
    """The CI issued no identity token after all (not a failure: no trusted publishing)."""


def _mint_refusal(
    index: Index, status: int, body: dict[str, Any], publisher: Publisher
) -> CredentialError:
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if not errors:
        errors = [{"code": str(status), "description": _text(body) or "no explanation"}]
    codes = "; ".join(f"{e.get('code')}: {e.get('description')}" for e in errors)
    why, fix = _code_explanation(str(errors[0].get("code")), index, publisher)
    kind = f"{publisher.kind} " if publisher.kind else ""
    return CredentialError(
        f"Trusted publishing to {index.display} failed: it refused to mint a token ({codes}). "
        f"This job's {kind}identity: {publisher.describe()}.",
        why=why,
        fix=fix,
    )


def _text(body: dict[str, Any]) -> str:
    return str(body.get("message") or "")


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
