"""What every generated CI file shares: the project's values, checked, and the renderer that
fills a template shipped with releasekit."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from releasekit._project import Project
from releasekit._settings import WheelPlatform
from releasekit.errors import ConfigError, UsageError

_PEP508_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")


@dataclass(frozen=True)
class WorkflowValues:
    """The project's values a CI file names, each checked: the normalised name, the tag
    glob (tag-format with ``*``), the release branch, and the dist dir relative to the
    repository root (POSIX)."""

    name: str
    tag_glob: str
    branch: str
    dist_dir: str


def workflow_values(project: Project, root: Path, *, forbidden: str, where: str) -> WorkflowValues:
    """The values of ``project`` for a CI file at ``root``, refused when one holds
    ``forbidden`` (the CI's expression syntax, evaluated by ``where``) or a control character.
    """
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
        if forbidden in value or any(ord(c) < 32 for c in value):
            raise ConfigError(
                f"[tool.releasekit] {what} {value!r} holds {forbidden!r} or a control character.",
                why=f"{where} would evaluate it as an expression, or it would break the file.",
                fix=f"Choose a plain {what}.",
            )
    return WorkflowValues(project.normalized_name, tag_glob, branch, dist_dir)


#: From this many packages on, init_ci writes one workflow whose jobs fan out over the packages
#: (a CI matrix fed by the ``changed`` session) instead of one workflow per package.
MATRIX_FROM = 6


def shared_branch(checked: Sequence[WorkflowValues]) -> str:
    """The release branch every package of a matrix workflow shares; a ConfigError when the
    packages name different ones (one workflow has one trigger branch)."""
    branches = sorted({values.branch for values in checked})
    if len(branches) > 1:
        raise ConfigError(
            f"The packages release from different branches ({', '.join(branches)}).",
            why="One workflow fanning out over every package has one release branch.",
            fix="Give them one release-branch, or pass --no-matrix for a workflow per package.",
        )
    return branches[0]


def package_dir(project: Project, root: Path) -> str:
    """The directory of ``project`` relative to ``root`` (POSIX, ``.`` for the root itself)."""
    return project.root.resolve().relative_to(root.resolve()).as_posix() or "."


def render(template: str, values: Mapping[str, str]) -> str:
    """The template ``ci/templates/<template>`` with each ``@KEY@`` replaced by its value."""
    text = files("releasekit").joinpath(f"ci/templates/{template}").read_text(encoding="utf-8")
    return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], text)


def write_workflow(path: Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path``; an existing different file is kept unless ``force``."""
    if path.exists() and path.read_text(encoding="utf-8") != text and not force:
        raise UsageError(
            f"{path} exists and differs from the file releasekit would write.",
            fix="Compare them, then pass --force to overwrite, or --output another file.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- compiled projects: the wheel jobs -----------------------------------------------------

#: cibuildwheel's release the generated jobs run, and (GitHub) its action's commit.
CIBUILDWHEEL_VERSION = "4.2.0"
CIBUILDWHEEL_COMMIT = "1828c10ab37f080699c7b81cea34097c684a7074"


def runners_for(
    families: tuple[WheelPlatform, ...], runners: Mapping[WheelPlatform, tuple[str, ...]]
) -> list[str]:
    """The runners (or images) that build ``families``, each once, in the order given."""
    return list(dict.fromkeys(runner for family in families for runner in runners[family]))


def replace_job(text: str, job: str, next_job: str, replacement: str) -> str:
    """``text`` with the block from the line ``job`` up to the line ``next_job`` (both whole
    lines, with their indentation) replaced by ``replacement``."""
    start = text.index(f"\n{job}\n") + 1
    end = text.index(f"\n{next_job}\n", start) + 1
    return text[:start] + replacement + text[end:]
