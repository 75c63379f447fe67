"""The CI provider this process runs in, and everything releasekit reads from its variables.

Every provider-specific environment variable is read here and nowhere else; a new provider
adds its variables to :func:`detect`. The publishing workflow template lives in
:mod:`releasekit.ci.github`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from releasekit.errors import VersionError

Provider = Literal["github", "gitlab", "other", "none"]

#: Providers that issue OIDC identity tokens (for trusted publishing), by their marker variable.
_ISSUES_OIDC = ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI")


@dataclass(frozen=True)
class CIEnvironment:
    """What the CI job this process runs in says about itself.

    ``name`` is the provider (``none`` outside CI); ``is_ci`` is True when ``CI`` is set, as
    every provider does; ``tag`` is the git tag the job was started for; ``run_number_text``
    is the provider's run counter as given (see :meth:`run_number`); ``issues_oidc`` is True
    in a CI that can issue OIDC identity tokens, and ``oidc_permitted`` False when this job
    may not request one (GitHub Actions without ``permissions: id-token: write``).
    """

    name: Provider
    is_ci: bool
    tag: str | None = None
    run_number_text: str = ""
    issues_oidc: bool = False
    oidc_permitted: bool = True

    def run_number(self) -> int | None:
        """The run counter for dev versions (``GITHUB_RUN_NUMBER``, GitLab's
        ``CI_PIPELINE_IID``), None when unset.

        Raises :class:`VersionError` when it is set but is not a number.
        """
        if not self.run_number_text:
            return None
        if not self.run_number_text.isdigit():
            raise VersionError(
                f"The CI run number (GITHUB_RUN_NUMBER, CI_PIPELINE_IID) is "
                f"{self.run_number_text!r}, not a number.",
                fix="Leave GITHUB_RUN_NUMBER and CI_PIPELINE_IID to the CI, or unset them.",
            )
        return int(self.run_number_text)


def _tag(environ: Mapping[str, str]) -> str | None:
    if environ.get("GITHUB_REF_TYPE") == "tag":
        return environ.get("GITHUB_REF_NAME") or None
    return environ.get("CI_COMMIT_TAG") or None


def detect(environ: Mapping[str, str] | None = None) -> CIEnvironment:
    """The CI environment described by ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    is_ci = bool(environ.get("CI"))
    github = bool(environ.get("GITHUB_ACTIONS"))
    name: Provider
    if github:
        name = "github"
    elif environ.get("GITLAB_CI"):
        name = "gitlab"
    elif is_ci or any(environ.get(marker) for marker in _ISSUES_OIDC):
        name = "other"
    else:
        name = "none"
    return CIEnvironment(
        name=name,
        is_ci=is_ci,
        tag=_tag(environ),
        run_number_text=(
            environ.get("GITHUB_RUN_NUMBER") or environ.get("CI_PIPELINE_IID") or ""
        ).strip(),
        issues_oidc=any(environ.get(marker) for marker in _ISSUES_OIDC),
        oidc_permitted=not github or bool(environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")),
    )


@dataclass(frozen=True)
class ForgeProject:
    """Where the forge's REST API is and which project this job belongs to.

    ``project`` is GitHub's ``OWNER/NAME`` (``GITHUB_REPOSITORY``) or GitLab's numeric
    project id (``CI_PROJECT_ID``); ``api_url`` is ``GITHUB_API_URL`` or ``CI_API_V4_URL``.
    """

    provider: Literal["github", "gitlab"]
    api_url: str
    project: str


def forge_project(environ: Mapping[str, str] | None = None) -> ForgeProject | None:
    """The forge of this CI job (GitHub Actions, GitLab CI), or None outside them or when
    the job lacks the variables every such job has."""
    environ = os.environ if environ is None else environ
    provider = detect(environ).name
    if provider == "github":
        api, project = environ.get("GITHUB_API_URL"), environ.get("GITHUB_REPOSITORY")
    elif provider == "gitlab":
        api, project = environ.get("CI_API_V4_URL"), environ.get("CI_PROJECT_ID")
    else:
        return None
    if not api or not project:
        return None
    return ForgeProject(provider, api.rstrip("/"), project)


__all__ = ["CIEnvironment", "ForgeProject", "Provider", "detect", "forge_project"]
