"""GitLab: the CI pipeline that publishes a project with releasekit's own sessions, the OIDC
variables its jobs carry, and the release API that publish_release uses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from releasekit import __version__
from releasekit._platforms import wheel_platforms
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._settings import WheelPlatform
from releasekit.ci.releases import ForgeRelease, ReleaseAPI, json_list, json_object
from releasekit.ci.workflow import (
    CIBUILDWHEEL_VERSION,
    WorkflowValues,
    package_dir,
    render,
    replace_job,
    shared_branch,
    workflow_values,
)
from releasekit.errors import ForgeError, UsageError
from releasekit.indexes.endpoints import PYPI, TESTPYPI, public_upload_urls, web_root

#: A GitLab project path: a group, any subgroups, the project.
_PROJECT_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+")
#: What the ``id`` library replaces in an audience to name its variable (``<AUD>_ID_TOKEN``).
_NOT_IN_VARIABLE = re.compile(r"[^A-Z0-9_]|^[^A-Z_]")
#: Sigstore's audience, for the identity token that signs attestations.
SIGSTORE_AUDIENCE = "sigstore"
#: The platform families the pipeline's own wheel job builds (on a Linux runner, in docker).
GITLAB_WHEEL_PLATFORMS: tuple[WheelPlatform, ...] = ("manylinux", "musllinux")
#: The image of the wheel job (the docker CLI) and the docker daemon beside it.
_DOCKER = ("docker:28", "docker:28-dind")


def oidc_audience(index: str) -> str:
    """The OIDC audience of the public index ``index`` (``pypi``, ``testpypi``).

    Each instance's audience is its service name: its web host's labels before the top-level
    domain, joined. It is derived from twine's upload endpoints, so no host name is written
    here; at run time trusted publishing asks the index itself (``/_/oidc/audience``) and an
    id token for another audience is an explained error.
    """
    host = urlsplit(web_root(public_upload_urls()[index])).hostname or ""
    return "".join(host.split(".")[:-1])


def id_token_variable(audience: str) -> str:
    """The job variable that holds the id token for ``audience``, as the ``id`` library
    reads it on GitLab: ``<AUDIENCE>_ID_TOKEN``, upper-cased, other characters ``_``."""
    return _NOT_IN_VARIABLE.sub("_", audience.upper()) + "_ID_TOKEN"


def _tag_pattern(tag_glob: str) -> str:
    """A GitLab rules regex (``/.../``) matching exactly the tags of ``tag_glob``."""
    parts = (re.escape(part).replace("/", r"\/") for part in tag_glob.split("*"))
    return "/^" + ".+".join(parts) + r"\z/"  # \z, not $: GitLab expands $ in variables


def _check_project_path(repository: str) -> None:
    if not _PROJECT_PATH.fullmatch(repository) or ".." in repository:
        raise UsageError(
            f"--repository {repository!r} is not a GitLab GROUP/PROJECT path.",
            fix="Pass the project path as it appears in its address, e.g. "
            "--repository acme/tools/mypkg.",
        )


def _shared_values(repository: str, branch: str) -> dict[str, str]:
    audiences = {index: oidc_audience(index) for index in (PYPI, TESTPYPI)}
    return {
        "BRANCH": json.dumps(branch),
        "PROJECT": json.dumps(repository),
        "RELEASEKIT": f"releasekit=={__version__}",
        "PYPI_ID_TOKEN": id_token_variable(audiences[PYPI]),
        "PYPI_AUDIENCE": json.dumps(audiences[PYPI]),
        "TESTPYPI_ID_TOKEN": id_token_variable(audiences[TESTPYPI]),
        "TESTPYPI_AUDIENCE": json.dumps(audiences[TESTPYPI]),
    }


def pipeline_text(project: Project, repository: str, root: Path, *, monorepo: bool) -> str:
    """The GitLab CI pipeline for ``project``, from the template shipped with releasekit.

    ``repository`` is the GitLab project path (``group/project``, subgroups allowed) allowed
    to publish; ``root`` is the repository's top directory; ``monorepo`` suffixes every job
    with the package name and adds ``--package "$PACKAGE"`` to every session. Every value is
    validated and quoted, and reaches ``script:`` only as a variable.

    For a compiled project the build job becomes ``templates/gitlab-wheels.yml``: the sdist,
    cibuildwheel's Linux wheels in docker, and a ``build`` job that gathers them and runs
    check_dist; families that need macOS or Windows runners are warned about.
    """
    _check_project_path(repository)
    checked = workflow_values(project, root, forbidden="$", where="GitLab")
    package = ' --package "$PACKAGE"' if monorepo else ""
    values = {
        **_shared_values(repository, checked.branch),
        "NAME": checked.name,
        "SUFFIX": f"-{checked.name}" if monorepo else "",
        "TAG_GLOB": checked.tag_glob,
        "TAG_PATTERN": json.dumps(_tag_pattern(checked.tag_glob)),
        "DIST_DIR": json.dumps(f"{checked.dist_dir}/"),
        "PACKAGE_VARIABLE": f"\n    PACKAGE: {json.dumps(checked.name)}" if monorepo else "",
        "PACKAGE_ARG": package,
        "POSARGS": f" --{package}" if package else "",
        "BUILD_RULES": "\n    - when: on_success",
    }
    text = render("gitlab-ci.yml", values)
    wheels = _wheel_jobs(project, checked, values)
    if wheels is None:
        return text
    return replace_job(text, f"build{values['SUFFIX']}:", f"testpypi{values['SUFFIX']}:", wheels)


def _wheel_jobs(project: Project, checked: WorkflowValues, values: dict[str, str]) -> str | None:
    """The jobs of ``templates/gitlab-wheels.yml`` for ``project`` (None for a pure one):
    its sdist, cibuildwheel's Linux wheels in docker, and the gathering ``build`` job. The
    families it expects that need macOS or Windows runners are warned about."""
    families = wheel_platforms(project).families
    if not families:
        return None
    elsewhere = [family for family in families if family not in GITLAB_WHEEL_PLATFORMS]
    if elsewhere:
        get_reporter().warn(
            f"{project.name} expects wheels for {', '.join(elsewhere)} too (wheel-platforms), "
            "which this pipeline cannot build on GitLab's Linux runners: its check_dist will "
            "refuse the set until a job on a runner of those systems adds them (see the "
            "comment above its `build` job), or until [tool.releasekit] wheel-platforms "
            'lists only the platforms you ship, e.g. ["manylinux", "musllinux"].'
        )
    return render(
        "gitlab-wheels.yml",
        values
        | {
            "WHEEL_PLATFORMS": ", ".join(families),
            "WHEEL_GLOB": json.dumps(f"{checked.dist_dir}/*.whl"),
            "CIBUILDWHEEL": f"cibuildwheel=={CIBUILDWHEEL_VERSION}",
            "DOCKER_IMAGE": _DOCKER[0],
            "DOCKER_DAEMON": _DOCKER[1],
        },
    )


def _files_glob(directory: str) -> str:
    return "**/*" if directory == "." else f"{directory}/**/*"


#: The line above the matrix pipeline's ``build`` job (of the pure packages).
_PURE_BUILD = "# The packages without extension modules; each with them has jobs of its own below."
#: The most jobs GitLab makes of one ``parallel:matrix``.
MATRIX_LIMIT = 200


def matrix_pipeline_text(projects: Sequence[Project], repository: str, root: Path) -> str:
    """One GitLab CI pipeline for every package of a monorepo, its jobs fanning out over the
    packages with a ``parallel:matrix`` written now (GitLab fixes a matrix when it creates the
    pipeline): per package its name, directory and tag pattern. Values are validated and
    quoted as in :func:`pipeline_text`.

    The ``build`` matrix holds the pure packages only: each compiled package gets jobs of its
    own (``templates/gitlab-wheels.yml``, suffixed with its name), as in its own pipeline."""
    _check_project_path(repository)
    if len(projects) > MATRIX_LIMIT:
        raise UsageError(
            f"This monorepo has {len(projects)} packages; GitLab makes at most {MATRIX_LIMIT} "
            "jobs of one parallel:matrix.",
            fix="Pass --no-matrix for a pipeline file per package.",
        )
    checked = [workflow_values(p, root, forbidden="$", where="GitLab") for p in projects]
    shared = _shared_values(repository, shared_branch(checked))
    variables = {
        values.name: {
            "PACKAGE": json.dumps(values.name),
            "PACKAGE_FILES": json.dumps(_files_glob(package_dir(project, root))),
            "TAG_PATTERN": json.dumps(_tag_pattern(values.tag_glob)),
        }
        for project, values in zip(projects, checked, strict=True)
    }
    wheel_jobs: dict[str, str] = {}
    for project, values in zip(projects, checked, strict=True):
        package_values = _package_values(values, shared, variables[values.name])
        jobs = _wheel_jobs(project, values, package_values)
        if jobs is not None:
            wheel_jobs[values.name] = render("gitlab-matrix-package.yml", package_values) + jobs
    pure = [values for values in checked if values.name not in wheel_jobs]
    text = render(
        "gitlab-ci-matrix.yml",
        shared
        | {
            "COUNT": str(len(checked)),
            "MATRIX": _matrix(variables[values.name] for values in checked),
            "PURE_MATRIX": _matrix(variables[values.name] for values in pure),
            "DIST_DIRS": ", ".join(json.dumps(f"{values.dist_dir}/") for values in pure),
        },
    )
    if not pure:
        text = replace_job(text, _PURE_BUILD, "testpypi:", "")
    at = text.index("\ntestpypi:\n") + 1
    return text[:at] + "".join(wheel_jobs.values()) + text[at:]


def _matrix(entries: Iterable[dict[str, str]]) -> str:
    """The entries of a ``parallel:matrix``, one package's variables each."""
    return "".join(
        "".join(
            f"\n      {'-' if i == 0 else ' '} {key}: {value}"
            for i, (key, value) in enumerate(entry.items())
        )
        for entry in entries
    )


def _package_values(
    checked: WorkflowValues, shared: dict[str, str], variables: dict[str, str]
) -> dict[str, str]:
    """What ``gitlab-matrix-package.yml`` and ``gitlab-wheels.yml`` need for one package of the
    matrix pipeline: jobs suffixed with its name, its variables, the matrix's rules."""
    package = ' --package "$PACKAGE"'
    return {
        **shared,
        **variables,
        "NAME": checked.name,
        "SUFFIX": f"-{checked.name}",
        "DIST_DIR": json.dumps(f"{checked.dist_dir}/"),
        "PACKAGE_ARG": package,
        "POSARGS": f" --{package}",
        "BUILD_RULES": "\n    - if: $CI_COMMIT_TAG\n    - changes:\n        - $PACKAGE_FILES",
    }


class GitLabReleases(ReleaseAPI):
    """GitLab's release API (v4) for project ``project`` (its numeric id or its path).

    Files go to the project's generic package registry (package = the project name, version
    = the release version) and are linked from the release as package assets.
    """

    forge = "GitLab"
    has_prerelease = False
    forbidden_why = (
        "The token may not create releases here: CI_JOB_TOKEN acts with the rights of the "
        "user who started the pipeline (Developer at least, and allowed to create the "
        "protected tag), and a GITLAB_TOKEN needs the api scope and the Developer role."
    )
    forbidden_fix = (
        "Run the pipeline as a member with the Developer role (or higher) who may create "
        "the tag, or set a masked, protected GITLAB_TOKEN variable holding a project access "
        "token with the api scope and the Developer role."
    )

    def __init__(self, *args: Any, package: str, version: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.package, self.version = package, version
        self._stored: dict[str, int] = {}
        self._linked: set[str] = set()

    @property
    def _base(self) -> str:
        return f"projects/{quote(self.project, safe='')}"

    def _release_url(self, tag: str) -> str:
        return f"{self._base}/releases/{quote(tag, safe='')}"

    def _file_url(self, name: str) -> str:
        return (
            f"{self.api_url}/{self._base}/packages/generic/{quote(self.package, safe='')}/"
            f"{quote(self.version, safe='')}/{quote(name, safe='')}"
        )

    @staticmethod
    def _release(body: dict[str, Any]) -> ForgeRelease:
        links = body.get("_links")
        return ForgeRelease(
            id=str(body.get("tag_name", "")),
            tag=str(body.get("tag_name", "")),
            name=str(body.get("name") or ""),
            notes=str(body.get("description") or ""),
            web_url=str(links.get("self") or "") if isinstance(links, dict) else "",
        )

    def find(self, tag: str) -> ForgeRelease | None:
        """The release of ``tag`` (``GET /projects/:id/releases/:tag_name``)."""
        answer = self.request(
            "GET", self._release_url(tag), what=f"look up the release of {tag}", missing_ok=True
        )
        return None if answer is None else self._release(json_object(answer))

    def create(self, tag: str, name: str, notes: str, prerelease: bool) -> ForgeRelease:
        """Create the release of ``tag`` (GitLab has no pre-release flag)."""
        body = {"tag_name": tag, "name": name, "description": notes}
        answer = self.request(
            "POST", f"{self._base}/releases", what=f"create the release of {tag}", json=body
        )
        return self._release(json_object(answer))

    def update(
        self, release: ForgeRelease, name: str, notes: str, prerelease: bool
    ) -> ForgeRelease:
        """Give ``release`` this title and these notes."""
        answer = self.request(
            "PUT",
            self._release_url(release.tag),
            what=f"update the release of {release.tag}",
            json={"name": name, "description": notes},
        )
        return self._release(json_object(answer))

    def assets(self, release: ForgeRelease) -> dict[str, int]:
        """The files both stored in the package registry and linked from ``release``."""
        what = f"list the files of the release of {release.tag}"
        links = self.request("GET", f"{self._release_url(release.tag)}/assets/links", what=what)
        self._linked = {str(link.get("name")) for link in json_list(links)}
        packages = self.request(
            "GET",
            f"{self._base}/packages",
            what=what,
            params={
                "package_type": "generic",
                "package_name": self.package,
                "package_version": self.version,
            },
        )
        self._stored = {}
        for package in json_list(packages):
            if package.get("name") != self.package or package.get("version") != self.version:
                continue
            files = self.request(
                "GET",
                f"{self._base}/packages/{package.get('id')}/package_files",
                what=what,
                params={"per_page": 100},
            )
            for item in json_list(files):
                self._stored[str(item.get("file_name"))] = int(item.get("size") or 0)
        return {name: size for name, size in self._stored.items() if name in self._linked}

    def attach(self, release: ForgeRelease, path: Path) -> None:
        """Store ``path`` in the package registry (unless there already) and link it."""
        name = path.name
        stored = self._stored.get(name)
        if stored is not None and stored != path.stat().st_size:
            raise ForgeError(
                f"{name} is already in the package registry of {self.package} {self.version} "
                f"with another size ({stored} bytes, here {path.stat().st_size}).",
                why="An earlier run stored a different file under this name.",
                fix="Delete that package file in GitLab (Deploy > Package registry) if it is "
                "wrong, then re-run publish_release.",
            )
        if stored is None:
            self.request(
                "PUT",
                self._file_url(name),
                what=f"store {name} in the package registry",
                content=path.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
            self._stored[name] = path.stat().st_size
        if name not in self._linked:
            self.request(
                "POST",
                f"{self._release_url(release.tag)}/assets/links",
                what=f"link {name} from the release of {release.tag}",
                json={
                    "name": name,
                    "url": self._file_url(name),
                    "direct_asset_path": f"/dist/{name}",
                    "link_type": "package",
                },
            )
            self._linked.add(name)
