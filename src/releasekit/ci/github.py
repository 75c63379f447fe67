"""GitHub: the Actions workflow that publishes a project with releasekit's own sessions, and
the release API that publish_release uses."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from releasekit import __version__
from releasekit._changes import ChangedPackage, matrix_json
from releasekit._platforms import wheel_platforms
from releasekit._project import Project
from releasekit._settings import WheelPlatform
from releasekit.ci.releases import ForgeRelease, ReleaseAPI, json_list, json_object
from releasekit.ci.workflow import (
    CIBUILDWHEEL_COMMIT,
    CIBUILDWHEEL_VERSION,
    render,
    replace_job,
    runners_for,
    shared_branch,
    workflow_values,
)
from releasekit.errors import ForgeError, UsageError

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
#: The runners whose wheels make up each platform family (x86-64 and arm64 Linux; the
#: latest macOS, arm64, where cibuildwheel also builds x86-64 and universal2; Windows).
WHEEL_RUNNERS: Mapping[WheelPlatform, tuple[str, ...]] = {
    "manylinux": ("ubuntu-latest", "ubuntu-24.04-arm"),
    "musllinux": ("ubuntu-latest", "ubuntu-24.04-arm"),
    "macos": ("macos-latest",),
    "windows": ("windows-latest",),
}


def workflow_text(
    project: Project,
    repository: str,
    root: Path,
    *,
    monorepo: bool,
    workflow_file: str = "publish.yml",
) -> str:
    """The publishing workflow for ``project``, from the template shipped with releasekit.

    ``repository`` is the GitHub ``owner/name`` allowed to publish; ``root`` is the
    repository's top directory (paths in the workflow are relative to it); ``monorepo``
    adds ``--package "$PACKAGE"`` to every session; ``workflow_file`` is the workflow's file
    name (its manual release job starts it again for the new tag). Every value is validated
    and quoted; ``run:`` lines see values only through environment variables.

    For a compiled project (:func:`~releasekit._platforms.wheel_platforms`) the ``build``
    job becomes ``templates/wheels.yml``: the sdist, a cibuildwheel job per runner, and a
    ``build`` job that gathers them all into the dist dir and runs check_dist.
    """
    _check_repository(repository)
    checked = workflow_values(project, root, forbidden="${{", where="GitHub")
    package = ' --package "$PACKAGE"' if monorepo else ""
    values = {
        "NAME": checked.name,
        "TAG_GLOB": json.dumps(checked.tag_glob),
        "BRANCH": json.dumps(checked.branch),
        "REPOSITORY": repository,
        "RELEASEKIT": f"releasekit=={__version__}",
        "DIST_DIR": json.dumps(f"{checked.dist_dir}/"),
        "WORKFLOW_FILE": json.dumps(workflow_file),
        "PACKAGE_ENV": f"\n  PACKAGE: {json.dumps(checked.name)}" if monorepo else "",
        "PACKAGE_ARG": package,
        "POSARGS": f" --{package}" if package else "",
    }
    text = render("publish.yml", values)
    families = wheel_platforms(project).families
    if not families:
        return text
    values |= {
        "WHEEL_PLATFORMS": ", ".join(families),
        "WHEEL_RUNNERS": json.dumps(runners_for(families, WHEEL_RUNNERS)),
        "SDIST_GLOB": json.dumps(f"{checked.dist_dir}/*.tar.gz"),
        "CIBUILDWHEEL_COMMIT": CIBUILDWHEEL_COMMIT,
        "CIBUILDWHEEL_VERSION": CIBUILDWHEEL_VERSION,
    }
    return replace_job(text, "  build:", "  testpypi:", render("wheels.yml", values))


def _check_repository(repository: str) -> None:
    if not _REPOSITORY.fullmatch(repository):
        raise UsageError(
            f"--repository {repository!r} is not a GitHub OWNER/NAME.",
            fix="Pass the repository as it appears in its address, e.g. --repository acme/tool.",
        )


def matrix_workflow_text(
    projects: Sequence[Project], repository: str, root: Path, *, workflow_file: str
) -> str:
    """One publishing workflow for every package of a monorepo, its jobs fanning out over the
    packages: a ``plan`` job runs ``changed`` (the packages changed since the previous push,
    or the package of a tag) and each following job is a matrix over its outputs
    (:func:`matrix_outputs`): pure packages are built on one runner, compiled ones by an
    sdist job, a cibuildwheel job per runner and a job gathering them, and every package is
    then uploaded and verified by one matrix. Values are validated and quoted as in
    :func:`workflow_text`."""
    _check_repository(repository)
    checked = [workflow_values(p, root, forbidden="${{", where="GitHub") for p in projects]
    values = {
        "COUNT": str(len(checked)),
        "TAG_GLOBS": ", ".join(json.dumps(values.tag_glob) for values in checked),
        "BRANCH": json.dumps(shared_branch(checked)),
        "REPOSITORY": repository,
        "RELEASEKIT": f"releasekit=={__version__}",
        "WORKFLOW_FILE": json.dumps(workflow_file),
        "CIBUILDWHEEL_COMMIT": CIBUILDWHEEL_COMMIT,
        "CIBUILDWHEEL_VERSION": CIBUILDWHEEL_VERSION,
    }
    return render("publish-matrix.yml", values)


def matrix_outputs(plan: Sequence[ChangedPackage]) -> dict[str, str]:
    """The step outputs the matrix workflow's ``plan`` job sets, each one line of JSON:
    ``packages`` (the whole plan), ``pure`` and ``compiled`` (its packages without and with
    platform wheels) and ``wheels`` (one entry per compiled package and runner of
    :data:`WHEEL_RUNNERS`: ``package``, ``dist``, ``os``); GitHub's expressions can filter
    no list and build no cross product, so releasekit does."""
    compiled = [package for package in plan if package.platforms]
    wheels = [
        {"package": package.name, "dist": package.dist, "os": runner}
        for package in compiled
        for runner in runners_for(package.platforms, WHEEL_RUNNERS)
    ]
    return {
        "packages": matrix_json(plan),
        "pure": matrix_json([package for package in plan if not package.platforms]),
        "compiled": matrix_json(compiled),
        "wheels": json.dumps(wheels, separators=(",", ":")),
    }


def step_output(name: str, value: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set the GitHub Actions step output ``name`` (appended to ``$GITHUB_OUTPUT``); False
    outside GitHub Actions. ``value`` must be one line."""
    environ = os.environ if environ is None else environ
    path = environ.get("GITHUB_OUTPUT")
    if not path or "\n" in value or "\r" in value:
        return False
    with open(path, "a", encoding="utf-8") as outputs:
        outputs.write(f"{name}={value}\n")
    return True


class GitHubReleases(ReleaseAPI):
    """GitHub's release API (REST, version 2022-11-28) for repository ``OWNER/NAME``."""

    forge = "GitHub"
    forbidden_why = (
        "The job's GITHUB_TOKEN may not write releases: the job lacks `permissions: contents: "
        "write`, or the token is for another repository."
    )
    forbidden_fix = (
        "Give the publish_release job (only that job) `permissions: contents: write`, and pass "
        "`GITHUB_TOKEN: ${{ github.token }}` in its step's env; `nox -s init_ci` writes it so."
    )

    def extra_headers(self) -> dict[str, str]:
        """GitHub's JSON media type and the API version these calls are written for."""
        return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    @property
    def _releases(self) -> str:
        return f"repos/{self.project}/releases"

    @staticmethod
    def _release(body: dict[str, Any]) -> ForgeRelease:
        return ForgeRelease(
            id=str(body.get("id", "")),
            tag=str(body.get("tag_name", "")),
            name=str(body.get("name") or ""),
            notes=str(body.get("body") or ""),
            prerelease=bool(body.get("prerelease")),
            web_url=str(body.get("html_url") or ""),
            upload_url=re.sub(r"\{[^}]*\}$", "", str(body.get("upload_url") or "")),
        )

    def find(self, tag: str) -> ForgeRelease | None:
        """The release of ``tag`` (``GET /repos/{repo}/releases/tags/{tag}``)."""
        answer = self.request(
            "GET",
            f"{self._releases}/tags/{quote(tag, safe='')}",
            what=f"look up the release of {tag}",
            missing_ok=True,
        )
        return None if answer is None else self._release(json_object(answer))

    def create(self, tag: str, name: str, notes: str, prerelease: bool) -> ForgeRelease:
        """Create the (published) release of ``tag``."""
        body = {"tag_name": tag, "name": name, "body": notes, "prerelease": prerelease}
        answer = self.request(
            "POST", self._releases, what=f"create the release of {tag}", json=body
        )
        return self._release(json_object(answer))

    def update(
        self, release: ForgeRelease, name: str, notes: str, prerelease: bool
    ) -> ForgeRelease:
        """Give ``release`` this title, notes and pre-release flag."""
        body = {"name": name, "body": notes, "prerelease": prerelease}
        answer = self.request(
            "PATCH",
            f"{self._releases}/{release.id}",
            what=f"update the release of {release.tag}",
            json=body,
        )
        return self._release(json_object(answer))

    def assets(self, release: ForgeRelease) -> dict[str, int]:
        """The files attached to ``release``, every page of them."""
        found: dict[str, int] = {}
        page = 1
        while True:
            answer = self.request(
                "GET",
                f"{self._releases}/{release.id}/assets",
                what=f"list the files of the release of {release.tag}",
                params={"per_page": 100, "page": page},
            )
            listed = json_list(answer)
            found.update({str(a.get("name")): int(a.get("size") or 0) for a in listed})
            if len(listed) < 100:
                return found
            page += 1

    def attach(self, release: ForgeRelease, path: Path) -> None:
        """Upload ``path`` to the release's upload URL, under its own name."""
        if not release.upload_url:
            raise ForgeError(
                f"GitHub gave no upload URL for the release of {release.tag}.",
                why="The API answered without the release's `upload_url`.",
                fix="Re-run the job; if it persists, attach the files on the release page.",
            )
        self.request(
            "POST",
            release.upload_url,
            what=f"attach {path.name} to the release of {release.tag}",
            params={"name": path.name},
            content=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
