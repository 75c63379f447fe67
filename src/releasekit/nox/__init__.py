"""The release sessions, for a project's noxfile: ``releasekit.nox.register_sessions()``.

Sessions are thin: they parse the arguments after ``--``, call the library, and turn an
error into one explained failure. They run in the nox process (no virtualenv of their own)
and are not run by a bare ``nox``: name them with ``-s``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nox

from releasekit.nox._arguments import (
    Overrides,
    SessionArguments,
    SessionBody,
    _HelpShown,  # noqa: F401 - the tests read it here
    arguments,
    projects,
    run,
)
from releasekit.nox._maintenance import (
    _audit,
    _changed,
    _doctor,
    _release,
    _scan_secrets,
    _status,
    _yank,
)
from releasekit.nox._publishing import (
    _build,
    _check_dist,
    _init_ci,
    _publish_release,
    _rehearse,
    _upload_any,
    _upload_pypi,
    _upload_testpypi,
    _verify_any,
    _verify_pypi,
    _verify_testpypi,
)

__all__ = ["SESSIONS", "SessionArguments", "arguments", "projects", "register_sessions", "run"]

#: Every session, by its fixed name (docs/sessions.md), in the order ``nox -l`` lists them.
SESSIONS: dict[str, SessionBody] = {
    "build": _build,
    "check_dist": _check_dist,
    "upload_testpypi": _upload_testpypi,
    "upload_pypi": _upload_pypi,
    "verify_testpypi": _verify_testpypi,
    "verify_pypi": _verify_pypi,
    "yank": _yank,
    "release": _release,
    "status": _status,
    "doctor": _doctor,
    "audit": _audit,
    "scan_secrets": _scan_secrets,
    "rehearse": _rehearse,
    "upload": _upload_any,
    "verify": _verify_any,
    "publish_release": _publish_release,
    "changed": _changed,
    "init_ci": _init_ci,
}


def _session(body: SessionBody, overrides: Overrides) -> Callable[[nox.Session], None]:
    def session(session: nox.Session) -> None:
        run(session, lambda: body(session, overrides))

    session.__doc__ = body.__doc__
    return session


def register_sessions(**overrides: Any) -> None:
    """Register releasekit's sessions in the calling noxfile.

    Keyword arguments override ``[tool.releasekit]`` keys (Python names, underscores:
    ``dist_dir="wheelhouse"``). Sessions are not run by a bare ``nox``; name them with ``-s``.
    """
    for name, body in SESSIONS.items():
        nox.session(name=name, python=False, default=False)(_session(body, overrides))
