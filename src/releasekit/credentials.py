"""Where credentials come from, and what a token is. The only module that handles secrets."""

from __future__ import annotations

import os

#: Environment variables that may hold a secret; build backends and smoke commands never see them.
SECRET_ENV_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_PASSWORD")


def scrubbed_environ() -> dict[str, str]:
    """A copy of the environment without any variable that may hold an index secret."""
    return {key: value for key, value in os.environ.items() if key not in SECRET_ENV_VARS}
