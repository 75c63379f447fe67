"""The CI provider this process runs in, and everything releasekit reads from its variables.

Every provider-specific environment variable is read here and nowhere else; a new provider
adds its variables to :func:`detect`. The publishing workflow template lives in
:mod:`releasekit.ci.github`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from releasekit.errors import VersionError

Provider = Literal["github", "gitlab", "other", "none"]
#: Identity providers the ``id`` library requests OIDC tokens from (trusted publishing).
Identity = Literal["github", "gitlab", "google", "buildkite", "circleci"]

#: The marker variable of each identity provider, in the order the ``id`` library tries them.
_IDENTITY_MARKERS: tuple[tuple[Identity, str], ...] = (
    ("github", "GITHUB_ACTIONS"),
    ("google", "GOOGLE_SERVICE_ACCOUNT_NAME"),
    ("buildkite", "BUILDKITE"),
    ("gitlab", "GITLAB_CI"),
    ("circleci", "CIRCLECI"),
)
#: What a Google Compute Engine / Cloud Build machine reports as its product (``id`` reads it).
_GCP_PRODUCT_FILE = Path("/sys/class/dmi/id/product_name")
_NOT_ALNUM = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True)
class CIEnvironment:
    """What the CI job this process runs in says about itself.

    ``name`` is the provider (``none`` outside CI); ``is_ci`` is True when ``CI`` is set, as
    every provider does; ``tag`` is the git tag the job was started for; ``run_number_text``
    is the provider's run counter as given (see :meth:`run_number`); ``issues_oidc`` is True
    in a CI that can issue OIDC identity tokens, and ``oidc_permitted`` False when this job
    may not request one (GitHub Actions without ``permissions: id-token: write``);
    ``identity`` names the provider of that identity (``google`` on a Google Cloud machine).
    """

    name: Provider
    is_ci: bool
    tag: str | None = None
    run_number_text: str = ""
    issues_oidc: bool = False
    oidc_permitted: bool = True
    identity: Identity | None = None

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


def _on_google_cloud(product_file: Path) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return product_file.read_text(encoding="utf-8").strip() in {
            "Google",
            "Google Compute Engine",
        }
    except (OSError, UnicodeDecodeError):
        return False


def _identity(environ: Mapping[str, str], product_file: Path) -> Identity | None:
    for identity, marker in _IDENTITY_MARKERS:
        if environ.get(marker):
            return identity
        if identity == "google" and _on_google_cloud(product_file):
            return identity
    return None


def detect(
    environ: Mapping[str, str] | None = None, *, gcp_product_file: Path | None = None
) -> CIEnvironment:
    """The CI environment described by ``environ`` (default: this process's environment).

    Identity providers are the ones the ``id`` library supports, tried in its order: GitHub
    Actions, Google Cloud (a service account to impersonate, or a machine whose
    ``gcp_product_file`` says Google), Buildkite, GitLab CI (also self-managed), CircleCI.
    """
    environ = os.environ if environ is None else environ
    is_ci = bool(environ.get("CI"))
    github = bool(environ.get("GITHUB_ACTIONS"))
    identity = _identity(environ, gcp_product_file or _GCP_PRODUCT_FILE)
    name: Provider
    if github:
        name = "github"
    elif environ.get("GITLAB_CI"):
        name = "gitlab"
    elif is_ci or identity is not None:
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
        issues_oidc=identity is not None,
        oidc_permitted=not github or bool(environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")),
        identity=identity,
    )


def gitlab_id_token_variable(audience: str) -> str:
    """The variable a GitLab job's ``id_tokens`` must define for ``audience`` (as ``id``
    reads it): ``PYPI_ID_TOKEN``, ``TESTPYPI_ID_TOKEN``, ``SIGSTORE_ID_TOKEN``."""
    name = _NOT_ALNUM.sub("_", audience.upper())
    return ("_" + name[1:] if name[:1].isdigit() else name) + "_ID_TOKEN"


def publisher_claims(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """What this CI job's identity token will tell an index, read from the job's variables
    (no request): the fields a trusted publisher is registered with. Empty outside GitHub
    Actions and GitLab CI."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS"):
        repository = environ.get("GITHUB_REPOSITORY", "")
        workflow_ref = environ.get("GITHUB_WORKFLOW_REF", "")
        workflow = workflow_ref.partition("@")[0].rpartition("/")[2]
        return [
            ("owner", environ.get("GITHUB_REPOSITORY_OWNER") or repository.partition("/")[0]),
            ("repository", repository.partition("/")[2]),
            ("workflow", workflow),
            ("environment", "the job's `environment:` (GitHub does not expose it to the job)"),
            ("ref", environ.get("GITHUB_REF", "")),
        ]
    if environ.get("GITLAB_CI"):
        return [
            ("issuer", environ.get("CI_SERVER_URL", "")),
            ("namespace", environ.get("CI_PROJECT_NAMESPACE", "")),
            ("project", environ.get("CI_PROJECT_NAME", "")),
            ("CI file path", environ.get("CI_CONFIG_PATH") or ".gitlab-ci.yml"),
            (
                "environment",
                environ.get("CI_ENVIRONMENT_NAME") or "(none: the job has no environment)",
            ),
            ("ref", environ.get("CI_COMMIT_REF_NAME", "")),
        ]
    return []


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


__all__ = [
    "CIEnvironment",
    "ForgeProject",
    "Identity",
    "Provider",
    "detect",
    "forge_project",
    "gitlab_id_token_variable",
    "publisher_claims",
]
