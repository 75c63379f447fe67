"""The forge token that publishes a GitHub or GitLab release: the CI job's own token.

Read from this process's environment, registered for redaction at once, and sent only as a
request header to the forge's API; child processes never see these variables
(:data:`releasekit.credentials.environment.SECRET_ENV_VARS`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from releasekit._redaction import register_secret
from releasekit.errors import MissingCredentials

#: Where each forge's token is looked for, in order, with the header that carries it.
FORGE_TOKENS: dict[str, tuple[tuple[str, str], ...]] = {
    "github": (("GITHUB_TOKEN", "Authorization"),),
    "gitlab": (("GITLAB_TOKEN", "PRIVATE-TOKEN"), ("CI_JOB_TOKEN", "JOB-TOKEN")),
}


@dataclass(frozen=True)
class ForgeToken:
    """A forge API token: the variable it came from and the header that carries it."""

    variable: str
    header: str
    value: str = field(repr=False)

    def headers(self) -> dict[str, str]:
        """The request header that authenticates with this token."""
        if self.header == "Authorization":
            return {"Authorization": f"Bearer {self.value}"}
        return {self.header: self.value}


def forge_token(
    provider: Literal["github", "gitlab"], environ: Mapping[str, str] | None = None
) -> ForgeToken:
    """The token for ``provider``'s API: ``GITHUB_TOKEN``; on GitLab a ``GITLAB_TOKEN`` (a
    project or personal access token) when set, else the job's ``CI_JOB_TOKEN``.

    Raises :class:`MissingCredentials` naming the variable and how a job gets it.
    """
    environ = os.environ if environ is None else environ
    for variable, header in FORGE_TOKENS[provider]:
        value = environ.get(variable, "").strip()
        if value:
            register_secret(value)
            return ForgeToken(variable, header, value)
    if provider == "github":
        raise MissingCredentials(
            "GITHUB_TOKEN is not set: publish_release has no token for GitHub's API.",
            why="GitHub Actions gives each job a token, but passes it to a step only when "
            "the step asks for it.",
            fix="In the publish_release job: `permissions: contents: write` and, on the step, "
            "`env: GITHUB_TOKEN: ${{ github.token }}`.",
        )
    raise MissingCredentials(
        "Neither GITLAB_TOKEN nor CI_JOB_TOKEN is set: publish_release has no token for "
        "GitLab's API.",
        why="GitLab CI sets CI_JOB_TOKEN in every job; outside a job neither exists.",
        fix="Run publish_release in a GitLab CI job, or set GITLAB_TOKEN to a project access "
        "token with the api scope and the Developer role.",
    )
