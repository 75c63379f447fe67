"""releasekit: publish Python packages to PyPI and TestPyPI safely, from a laptop or from CI.

The public API, re-exported here and imported on first use (so ``import releasekit.nox``
stays cheap): :class:`Project`, :class:`Index`, :class:`Distribution`, the actions
:func:`build`, :func:`check`, :func:`upload`, :func:`verify`, :func:`release`,
:func:`yank`, :func:`audit`, :func:`rehearse`, :func:`doctor`, :func:`scan_secrets`, and
the errors in :mod:`releasekit.errors`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Project": "project",
    "load_projects": "project",
    "Distribution": "distributions",
    "Index": "indexes",
    "IndexClient": "indexes",
    "resolve_index": "indexes",
    "LocalIndex": "localindex",
    "Credentials": "credentials",
    "resolve_credentials": "credentials",
    "read_token": "credentials",
    "mint_token": "credentials",
    "build": "build",
    "check": "check",
    "upload": "upload",
    "UploadResult": "upload",
    "verify": "verify",
    "VerifyReport": "verify",
    "release": "release",
    "stamped": "stamp",
    "yank": "yank",
    "YankResult": "yank",
    "audit": "audit",
    "AuditResult": "audit",
    "doctor": "doctor",
    "rehearse": "rehearse",
    "scan_secrets": "secrets",
    "errors": "",
}

__all__ = [
    "AuditResult",
    "Credentials",
    "Distribution",
    "Index",
    "IndexClient",
    "LocalIndex",
    "Project",
    "UploadResult",
    "VerifyReport",
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
    "upload",
    "verify",
    "yank",
]

if TYPE_CHECKING:
    from releasekit import errors
    from releasekit.audit import AuditResult, audit
    from releasekit.build import build
    from releasekit.check import check
    from releasekit.credentials import Credentials, mint_token, read_token, resolve_credentials
    from releasekit.distributions import Distribution
    from releasekit.doctor import doctor
    from releasekit.indexes import Index, IndexClient, resolve_index
    from releasekit.localindex import LocalIndex
    from releasekit.project import Project, load_projects
    from releasekit.rehearse import rehearse
    from releasekit.release import release
    from releasekit.secrets import scan_secrets
    from releasekit.stamp import stamped
    from releasekit.upload import UploadResult, upload
    from releasekit.verify import VerifyReport, verify
    from releasekit.yank import YankResult, yank


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'releasekit' has no attribute {name!r}")
    if not module:
        return import_module(f"releasekit.{name}")
    return getattr(import_module(f"releasekit.{module}"), name)
