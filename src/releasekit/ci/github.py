"""The GitHub Actions workflow that publishes a project with releasekit's own sessions."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from releasekit import __version__
from releasekit._project import Project
from releasekit.errors import ConfigError, UsageError

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")


def workflow_text(project: Project, repository: str, root: Path, *, monorepo: bool) -> str:
    """The publishing workflow for ``project``, from the template shipped with releasekit.

    ``repository`` is the GitHub ``owner/name`` allowed to publish; ``root`` is the
    repository's top directory (paths in the workflow are relative to it); ``monorepo``
    adds ``--package NAME`` to every session.
    """
    if not _REPOSITORY.fullmatch(repository):
        raise UsageError(
            f"--repository {repository!r} is not a GitHub OWNER/NAME.",
            fix="Pass the repository as it appears in its address, e.g. --repository acme/tool.",
        )
    try:
        dist_dir = project.dist_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            f"The dist dir {project.dist_dir} is outside the repository {root}.",
            fix="Run init_ci from the repository's top directory.",
        ) from None
    package = f" --package {project.normalized_name}" if monorepo else ""
    values = {
        "NAME": project.normalized_name,
        "TAG_GLOB": project.tag("*"),
        "BRANCH": project.settings.release_branch,
        "REPOSITORY": repository,
        "RELEASEKIT": f"releasekit=={__version__}",
        "DIST_DIR": dist_dir,
        "PACKAGE_ARG": package,
        "POSARGS": f" --{package}" if package else "",
    }
    text = files("releasekit").joinpath("ci/templates/publish.yml").read_text(encoding="utf-8")
    return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], text)


def write_workflow(path: Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path``; an existing different file is kept unless ``force``."""
    if path.exists() and path.read_text(encoding="utf-8") != text and not force:
        raise UsageError(
            f"{path} exists and differs from the workflow releasekit would write.",
            fix="Compare them, then pass --force to overwrite, or --output another file.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
