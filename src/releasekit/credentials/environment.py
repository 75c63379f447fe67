"""Environments for child processes: no credential of any kind reaches them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from releasekit._project import Project

#: Environment variables that may hold a secret; build backends and smoke commands never see them.
SECRET_ENV_VARS = (
    "PYPI_API_TOKEN",
    "TEST_PYPI_API_TOKEN",
    "TWINE_PASSWORD",
    # forge tokens, for publish_release (credentials/forge.py)
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
)


def scrubbed_environ(project: Project | None = None) -> dict[str, str]:
    """A copy of the environment without any variable that may hold an index secret.

    With ``project``, the ``token-env`` variables of its configured indexes go too.
    """
    drop = set(SECRET_ENV_VARS)
    if project is not None:
        indexes = project.settings.indexes.values()
        drop.update(index.token_env for index in indexes if index.token_env is not None)
    return {key: value for key, value in os.environ.items() if key not in drop}
