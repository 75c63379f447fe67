"""The GitHub Actions workflow that publishes a project with releasekit's own sessions."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

from releasekit import __version__
from releasekit._project import Project
from releasekit.errors import ConfigError, UsageError

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_PEP508_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")


def workflow_text(project: Project, repository: str, root: Path, *, monorepo: bool) -> str:
    """The publishing workflow for ``project``, from the template shipped with releasekit.

    ``repository`` is the GitHub ``owner/name`` allowed to publish; ``root`` is the
    repository's top directory (paths in the workflow are relative to it); ``monorepo``
    adds ``--package "$PACKAGE"`` to every session. Every value is validated and quoted;
    ``run:`` lines see values only through environment variables.
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
    if not _PEP508_NAME.fullmatch(project.name):
        raise ConfigError(
            f"The project name {project.name!r} is not a valid package name.",
            why="Names may hold only letters, digits, '.', '-' and '_', and start and end with "
            "a letter or digit (PEP 508); indexes refuse any other, and init_ci writes the "
            "name into the workflow and its file name.",
            fix="Correct [project] name in pyproject.toml.",
        )
    tag_glob, branch = project.tag("*"), project.settings.release_branch
    for what, value in (
        ("tag-format", tag_glob),
        ("release-branch", branch),
        ("dist-dir", dist_dir),
    ):
        if "${{" in value or any(ord(c) < 32 for c in value):
            raise ConfigError(
                f"[tool.releasekit] {what} {value!r} holds '${{{{' or a control character.",
                why="GitHub would evaluate it as an expression, or it would break the workflow.",
                fix=f"Choose a plain {what}.",
            )
    package = ' --package "$PACKAGE"' if monorepo else ""
    values = {
        "NAME": project.normalized_name,
        "TAG_GLOB": json.dumps(tag_glob),
        "BRANCH": json.dumps(branch),
        "REPOSITORY": repository,
        "RELEASEKIT": f"releasekit=={__version__}",
        "DIST_DIR": json.dumps(f"{dist_dir}/"),
        "PACKAGE_ENV": f"\n  PACKAGE: {json.dumps(project.normalized_name)}" if monorepo else "",
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
