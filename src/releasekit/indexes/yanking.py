"""Yank backends: how an index yanks a release, by API or by handing over to a person.

PyPI and TestPyPI offer yanking on their web pages only (no API): :class:`WebPageBackend`
names the release's management page and the steps. An index with a yank API needs only
another :class:`YankBackend`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urljoin

from releasekit.indexes.endpoints import Index


@dataclass(frozen=True)
class Handover:
    """What a backend did: ``done``, or a person must act at ``url`` following ``steps``."""

    done: bool
    url: str | None = None
    steps: list[str] = field(default_factory=list)


class YankBackend(Protocol):
    """How an index yanks: by API (``done``) or by handing over to a person."""

    def yank(self, name: str, version: str, reason: str) -> Handover:
        """Yank ``name`` ``version`` with ``reason``."""

    def unyank(self, name: str, version: str) -> Handover:
        """Undo a yank of ``name`` ``version``."""


class WebPageBackend:
    """An index that yanks only on the release's management page (PyPI, TestPyPI)."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def page(self, name: str, version: str) -> str:
        """The management page of release ``name`` ``version``."""
        return urljoin(self.index.web_url, f"manage/project/{name}/release/{version}/")

    def yank(self, name: str, version: str, reason: str) -> Handover:
        """Hand over: the page, the button, the reason to paste."""
        return self._handover(
            name,
            version,
            f'Choose "Yank", type {version} to confirm, and paste this reason: {reason}',
        )

    def unyank(self, name: str, version: str) -> Handover:
        """Hand over: the page and the button that undoes the yank."""
        return self._handover(name, version, f'Choose "Un-yank" and type {version} to confirm.')

    def _handover(self, name: str, version: str, action: str) -> Handover:
        url = self.page(name, version)
        steps = [f"Open {url} and log in as an owner or maintainer of {name}.", action]
        return Handover(done=False, url=url, steps=steps)


def backend_for(index: Index) -> YankBackend:
    """The way ``index`` yanks (today every known index: its web page)."""
    return WebPageBackend(index)
