"""publish_release: the GitHub or GitLab release of the tag this CI job runs for.

Its notes are the changelog section of the version; its files are the dist files and their
attestations (``<file>.*.attestation`` beside them). Safe to repeat: an existing release is
updated, and a file already attached with the same name and size is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from releasekit._changelog import changelog_path, release_notes
from releasekit._distributions import find_distributions, single_version
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.ci import detect, forge_project
from releasekit.ci.github import GitHubReleases
from releasekit.ci.gitlab import GitLabReleases
from releasekit.ci.releases import ReleaseAPI
from releasekit.credentials.forge import forge_token
from releasekit.errors import DistributionError, ForgeError


@dataclass
class ReleaseOutcome:
    """What publish_release did: the release ``created``, ``updated`` or ``unchanged``, the
    files attached now and those already there, and the release's page."""

    tag: str
    state: str
    attached: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    web_url: str = ""


def release_files(project: Project, version: Version) -> list[Path]:
    """The dist files of ``version`` and their attestation files, sorted by name."""
    dists = find_distributions(project.dist_dir, project.name)
    built = single_version(dists)
    if built != version:
        raise DistributionError(
            f"The dist dir holds {project.name} {built}, and the tag is for {version}.",
            why="The files were built from another commit than the tag's.",
            fix="Build the tag's commit (`nox -s build` on the tag), then publish the release.",
        )
    paths = [dist.path for dist in dists]
    for dist in dists:
        paths += dist.path.parent.glob(f"{dist.path.name}.*.attestation")
    return sorted(paths, key=lambda path: path.name)


def _client(project: Project, version: Version, environ: Mapping[str, str]) -> ReleaseAPI:
    forge = forge_project(environ)
    if forge is None:
        raise ForgeError(
            "publish_release runs in a GitHub Actions or GitLab CI job; this is neither.",
            why="It publishes the release of the tag the job was started for, through the "
            "forge's API (GITHUB_API_URL / CI_API_V4_URL) with the job's own token.",
            fix="Let the workflow written by `nox -s init_ci` run it after verify_pypi.",
        )
    token = forge_token(forge.provider, environ)
    if forge.provider == "github":
        return GitHubReleases(forge.api_url, forge.project, token)
    return GitLabReleases(
        forge.api_url, forge.project, token, package=project.normalized_name, version=str(version)
    )


def publish_release(
    project: Project, *, environ: Mapping[str, str] | None = None
) -> ReleaseOutcome:
    """Create or update the forge release of this job's tag and attach the files to it."""
    environ = os.environ if environ is None else environ
    reporter = get_reporter()
    tag = detect(environ).tag
    if not tag:
        raise ForgeError(
            "publish_release needs a tag, and this job was not started for one.",
            why="A release belongs to a tag: GITHUB_REF_TYPE=tag with GITHUB_REF_NAME, or "
            "CI_COMMIT_TAG.",
            fix="Run it only in the tag's pipeline (the generated workflow does).",
        )
    version = project.version_of_tag(tag)
    if version is None:
        raise ForgeError(
            f"The tag {tag} is not a release tag of {project.name} ({project.tag('VERSION')}).",
            fix="In a monorepo, pass --package for the tag's package.",
        )
    files = release_files(project, version)
    notes = release_notes(project, str(version))
    if notes is None:
        reporter.warn(
            f"{changelog_path(project).name} has no section for {version}: the release notes "
            "only name the version."
        )
        notes = f"{project.name} {version}\n"
    name = f"{project.name} {version}"
    with _client(project, version, environ) as api:
        release = api.find(tag)
        if release is None:
            release = api.create(tag, name, notes, version.is_prerelease)
            state = "created"
        elif (release.name, release.notes.strip(), release.prerelease) != (
            name,
            notes.strip(),
            version.is_prerelease and api.has_prerelease,
        ):
            release = api.update(release, name, notes, version.is_prerelease)
            state = "updated"
        else:
            state = "unchanged"
        outcome = ReleaseOutcome(tag, state, web_url=release.web_url)
        present = api.assets(release)
        for path in files:
            size = path.stat().st_size
            if present.get(path.name) == size:
                outcome.skipped.append(path.name)
                continue
            if path.name in present:
                raise ForgeError(
                    f"The release of {tag} already has a file {path.name} of another size "
                    f"({present[path.name]} bytes, here {size}).",
                    why="An earlier run attached a different file under this name.",
                    fix="Delete that file from the release if it is wrong, then re-run "
                    "publish_release.",
                )
            api.attach(release, path)
            outcome.attached.append(path.name)
            reporter.info(f"Attached {path.name} ({size} bytes).")
    page = f" {outcome.web_url}" if outcome.web_url else ""
    reporter.success(
        f"{api.forge} release {tag} {state}: {len(outcome.attached)} file(s) attached, "
        f"{len(outcome.skipped)} already there.{page}"
    )
    return outcome
