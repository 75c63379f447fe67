"""Environments for child processes: no credential of any kind reaches them, except an
installer's read credentials for a private index, through a netrc file (:func:`netrc_for`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from releasekit.errors import CredentialError

if TYPE_CHECKING:
    from releasekit._project import Project

#: Environment variables that may hold a secret; build backends and smoke commands never see them.
SECRET_ENV_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_PASSWORD")


def scrubbed_environ(project: Project | None = None) -> dict[str, str]:
    """A copy of the environment without any variable that may hold an index secret.

    With ``project``, the ``token-env`` variables of its configured indexes go too.
    """
    drop = set(SECRET_ENV_VARS)
    if project is not None:
        indexes = project.settings.indexes.values()
        drop.update(index.token_env for index in indexes if index.token_env is not None)
    return {key: value for key, value in os.environ.items() if key not in drop}


@contextmanager
def netrc_for(index_url: str, username: str, password: str) -> Iterator[Path]:
    """A netrc file with the credentials for ``index_url``'s host, for an installer (uv and
    pip read the file that ``NETRC`` names): mode 600, in a private temp dir, removed on exit."""
    if any(char.isspace() or char == '"' for char in username + password):
        raise CredentialError(
            "The username or password for the index contains whitespace or a quote, which a "
            "netrc file cannot carry.",
            why="The installer in the verify environment reads the index's credentials from a "
            "netrc file (never from its command line or environment).",
            fix="Use credentials without whitespace or quotes (a token, for example).",
        )
    host = urlsplit(index_url).hostname or ""
    directory = Path(tempfile.mkdtemp(prefix="releasekit-netrc-"))  # mode 700
    path = directory / "netrc"
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as netrc:
            netrc.write(f"machine {host}\nlogin {username}\npassword {password}\n")
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
