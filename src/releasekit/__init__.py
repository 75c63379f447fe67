"""releasekit: publish Python packages to PyPI and TestPyPI safely, from a laptop or from CI.

The public API is the names in ``__all__``, re-exported here from the private modules that
define them and imported on first use, so that ``import releasekit.nox`` stays cheap:

- the project: :class:`Project`, :func:`load_projects`, :class:`Distribution`;
- indexes and credentials: :class:`Index`, :func:`resolve_index`, :class:`IndexClient`,
  :class:`LocalIndex`, :class:`Credentials`, :func:`resolve_credentials`,
  :func:`read_token`, :func:`mint_token`;
- the actions: :func:`build`, :func:`check`, :func:`upload`, :func:`verify`,
  :func:`release`, :func:`stamped`, :func:`yank`, :func:`audit`, :func:`status`, :func:`doctor`,
  :func:`rehearse`, :func:`scan_secrets`, and what they return;
- the errors, in :mod:`releasekit.errors`.

Everything else (modules whose names start with ``_``, and the subpackages' other names) may
change without notice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Project": "_project",
    "load_projects": "_project",
    "Distribution": "_distributions",
    "Index": "indexes",
    "IndexClient": "indexes",
    "resolve_index": "indexes",
    "LocalIndex": "indexes.local",
    "Credentials": "credentials",
    "resolve_credentials": "credentials",
    "read_token": "credentials",
    "mint_token": "credentials",
    "build": "_build",
    "check": "_check",
    "upload": "_upload",
    "UploadResult": "_upload",
    "verify": "_verify",
    "VerifyReport": "_verify",
    "release": "_release",
    "stamped": "_stamp",
    "yank": "_yank",
    "YankResult": "_yank",
    "YankRequest": "_yank",
    "WaitPolicy": "_yank",
    "audit": "_audit",
    "AuditResult": "_audit",
    "status": "_status",
    "IndexStatus": "_status",
    "doctor": "_doctor",
    "rehearse": "_rehearse",
    "scan_secrets": "_scan",
    "errors": "",
}

__all__ = [
    "AuditResult",
    "Credentials",
    "Distribution",
    "Index",
    "IndexClient",
    "IndexStatus",
    "LocalIndex",
    "Project",
    "UploadResult",
    "VerifyReport",
    "WaitPolicy",
    "YankRequest",
    "YankResult",
    "__version__",
    "audit",
    "build",
    "check",
    "doctor",
    "errors",
    "load_projects",
    "mint_token",
    "read_token",
    "rehearse",
    "release",
    "resolve_credentials",
    "resolve_index",
    "scan_secrets",
    "stamped",
    "status",
    "upload",
    "verify",
    "yank",
]

if TYPE_CHECKING:
    from releasekit import errors
    from releasekit._audit import AuditResult, audit
    from releasekit._build import build
    from releasekit._check import check
    from releasekit._distributions import Distribution
    from releasekit._doctor import doctor
    from releasekit._project import Project, load_projects
    from releasekit._rehearse import rehearse
    from releasekit._release import release
    from releasekit._scan import scan_secrets
    from releasekit._stamp import stamped
    from releasekit._status import IndexStatus, status
    from releasekit._upload import UploadResult, upload
    from releasekit._verify import VerifyReport, verify
    from releasekit._yank import WaitPolicy, YankRequest, YankResult, yank
    from releasekit.credentials import Credentials, mint_token, read_token, resolve_credentials
    from releasekit.indexes import Index, IndexClient, resolve_index
    from releasekit.indexes.local import LocalIndex


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), and keep it for the next use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'releasekit' has no attribute {name!r}")
    if module:
        value = getattr(import_module(f"releasekit.{module}"), name)
    else:
        value = import_module(f"releasekit.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
