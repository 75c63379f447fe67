"""MkDocs hooks for the API reference (mkdocs.yml `hooks:`).

releasekit's docstrings name other objects with Sphinx roles (:func:`build`), which the
Markdown renderer leaves as text; this keeps the name, as code, and drops the role.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """Drop the Sphinx role before each name it marks (the name is already code)."""
    return _ROLE.sub("", html)
