"""A forge's release API (GitHub, GitLab): what :mod:`releasekit.ci.github` and
:mod:`releasekit.ci.gitlab` share.

A client finds, creates and updates the release of a tag and attaches files to it, over
httpx with the CI job's own token. Every refusal becomes one :class:`ForgeError` that says
what the forge answered, why, and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from releasekit.credentials.forge import ForgeToken
from releasekit.errors import ForgeError
from releasekit.indexes import USER_AGENT, http_event_hooks


@dataclass(frozen=True)
class ForgeRelease:
    """A release as the forge has it: its id, title, notes, pre-release flag and page."""

    id: str
    tag: str
    name: str
    notes: str
    prerelease: bool = False
    web_url: str = ""
    upload_url: str = ""


class ReleaseAPI:
    """The common part of a forge's release client; a subclass speaks one forge's API.

    ``api_url`` is the API's base (``GITHUB_API_URL``, ``CI_API_V4_URL``), ``project`` the
    repository (``OWNER/NAME``) or GitLab project id.
    """

    #: How messages name the forge.
    forge = "the forge"
    #: Whether a release can be marked as a pre-release.
    has_prerelease = True
    #: Why a 403 happens on this forge, and what to change (subclasses say it exactly).
    forbidden_why = "The token may not create releases in this project."
    forbidden_fix = "Give the job's token the permission to create releases."

    def __init__(
        self, api_url: str, project: str, token: ForgeToken, *, timeout: float = 30.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.token = token
        self.http = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, **token.headers(), **self.extra_headers()},
            trust_env=True,
            event_hooks=http_event_hooks(),
        )

    def extra_headers(self) -> dict[str, str]:
        """Headers every request to this forge carries (besides the token)."""
        return {}

    def __enter__(self) -> ReleaseAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.http.close()

    # --- what a forge implements ---------------------------------------------------------

    def find(self, tag: str) -> ForgeRelease | None:
        """The release of ``tag``, or None when it has none."""
        raise NotImplementedError

    def create(self, tag: str, name: str, notes: str, prerelease: bool) -> ForgeRelease:
        """Create the release of ``tag``."""
        raise NotImplementedError

    def update(
        self, release: ForgeRelease, name: str, notes: str, prerelease: bool
    ) -> ForgeRelease:
        """Give ``release`` this title, notes and pre-release flag."""
        raise NotImplementedError

    def assets(self, release: ForgeRelease) -> dict[str, int]:
        """The files attached to ``release``: name to size in bytes."""
        raise NotImplementedError

    def attach(self, release: ForgeRelease, path: Path) -> None:
        """Attach the file at ``path`` to ``release`` under its own name."""
        raise NotImplementedError

    # --- requests --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """Send a request; a 404 is None with ``missing_ok``, any other failure a
        :class:`ForgeError` naming ``what`` was being done."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.api_url}/{url.lstrip('/')}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ForgeError(
                f"Could not {what}: {self.forge}'s API at {self.api_url} did not answer "
                f"({type(exc).__name__}: {exc}).",
                why="The network or the forge is down, or the API address is wrong.",
                fix="Re-run the job: publish_release is safe to repeat.",
            ) from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.is_success:
            return response
        raise self.refused(response, what)

    def refused(self, response: httpx.Response, what: str) -> ForgeError:
        """The :class:`ForgeError` for an unsuccessful answer."""
        status, detail = response.status_code, _detail(response)
        said = f"{self.forge} answered {status}" + (f": {detail}" if detail else "")
        if status == 401:
            return ForgeError(
                f"Could not {what}: {said}.",
                why=f"{self.forge} does not accept the token in {self.token.variable} "
                "(expired, revoked, or not a token).",
                fix=self.forbidden_fix,
            )
        if status in (403, 404):
            return ForgeError(
                f"Could not {what}: {said}.",
                why=self.forbidden_why
                + (
                    " (A project the token may not see answers 404.)"
                    if status == 404
                    else f" The token came from {self.token.variable}."
                ),
                fix=self.forbidden_fix,
            )
        return ForgeError(
            f"Could not {what}: {said}.",
            why=f"{self.forge} refused the request for the reason it gives.",
            fix="Correct what it reports, then re-run: publish_release is safe to repeat.",
        )


def _detail(response: httpx.Response) -> str:
    """The forge's own words about a failure (its JSON ``message``), shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        errors = body.get("errors")
        if errors:
            message = f"{message} {errors}".strip()
        return str(message)[:300]
    return str(body)[:200]


def json_object(response: httpx.Response | None) -> dict[str, Any]:
    """The JSON object of ``response`` ({} for none or for anything else)."""
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def json_list(response: httpx.Response | None) -> list[dict[str, Any]]:
    """The JSON list of objects of ``response`` ([] for none or for anything else)."""
    if response is None:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []
