"""commitizen, imported without its side effects on the running process.

Importing the ``commitizen`` package calls ``logging.config.dictConfig`` with
``disable_existing_loggers=True`` (silencing every logger that exists, nox's own included:
its "Session ... was successful" lines vanish) and ``colorama.init()`` (which wraps
``sys.stdout``). This module undoes both, and is the only place that imports commitizen.
"""

import logging
import sys

_disabled = {
    name: logger.disabled
    for name, logger in logging.Logger.manager.loggerDict.items()
    if isinstance(logger, logging.Logger)
}
_streams = (sys.stdout, sys.stderr)

from commitizen import changelog  # noqa: E402
from commitizen.config.base_config import BaseConfig  # noqa: E402
from commitizen.config.toml_config import TomlConfig  # noqa: E402
from commitizen.cz.base import BaseCommitizen  # noqa: E402
from commitizen.exceptions import CommitizenException  # noqa: E402
from commitizen.factory import committer_factory  # noqa: E402
from commitizen.git import GitCommit  # noqa: E402
from commitizen.version_increment import VersionIncrement  # noqa: E402
from commitizen.version_schemes import get_version_scheme  # noqa: E402

for _name, _was_disabled in _disabled.items():
    logging.getLogger(_name).disabled = _was_disabled
sys.stdout, sys.stderr = _streams

__all__ = [
    "BaseCommitizen",
    "BaseConfig",
    "CommitizenException",
    "GitCommit",
    "TomlConfig",
    "VersionIncrement",
    "changelog",
    "committer_factory",
    "get_version_scheme",
]
