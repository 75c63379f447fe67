"""Package indexes: endpoints and resolution, the simple API reader, retries, refusals,
yank backends.

The local throwaway index lives in :mod:`releasekit.indexes.local` (it imports pypiserver,
so it is imported only where it is used).
"""

from releasekit.indexes.endpoints import (
    PYPI,
    TESTPYPI,
    USER_AGENT,
    Index,
    builtin_indexes,
    http_event_hooks,
    public_upload_urls,
    resolve_index,
    web_root,
)
from releasekit.indexes.network import tls_context
from releasekit.indexes.retry import RetryPolicy, describe_http_failure, is_transient
from releasekit.indexes.simple import (
    IndexClient,
    IndexFile,
    ProjectPage,
    parse_project_page,
    parse_simple_page,
)

__all__ = [
    "PYPI",
    "TESTPYPI",
    "USER_AGENT",
    "Index",
    "IndexClient",
    "IndexFile",
    "ProjectPage",
    "RetryPolicy",
    "builtin_indexes",
    "describe_http_failure",
    "http_event_hooks",
    "is_transient",
    "parse_project_page",
    "parse_simple_page",
    "public_upload_urls",
    "resolve_index",
    "tls_context",
    "web_root",
]
