"""Yank a release, or undo a yank, and wait until the index reports it.

PyPI and TestPyPI offer yanking on their web pages only (no API), so the built-in backend
hands over to a person: it names the exact page and the reason to paste, and releasekit then
polls the simple API (PEP 691 ``yanked`` / PEP 503 ``data-yanked``) until the index agrees.
An index with a yank API needs only another :class:`YankBackend`.
"""

from __future__ import annotations

import re
import shlex
import sys
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urljoin

from packaging.version import InvalidVersion, Version

from releasekit._polling import Backoff, poll
from releasekit._project import Project, parse_version
from releasekit._report import get_reporter
from releasekit.ci import detect as detect_ci
from releasekit.errors import ActionNeeded, UsageError, YankError
from releasekit.indexes import PYPI, Index, IndexClient, IndexFile, resolve_index

#: How long to wait for a person to act on the web page, in seconds.
DEFAULT_TIMEOUT = 900.0
POLL_BACKOFF = Backoff(first=0.5, factor=1.5, cap=10.0)
CHANGELOG = "CHANGELOG.md"
YANKED_MARK = "[YANKED]"
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*$", re.MULTILINE)
_HEADING_VERSION = re.compile(r"\[?v?(\d[^\]\s()]*)")


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
        url = self.page(name, version)
        return Handover(
            done=False,
            url=url,
            steps=[
                f"Open {url} and log in as an owner or maintainer of {name}.",
                f'Choose "Yank", type {version} to confirm, and paste this reason: {reason}',
            ],
        )

    def unyank(self, name: str, version: str) -> Handover:
        """Hand over: the page and the button that undoes the yank."""
        url = self.page(name, version)
        return Handover(
            done=False,
            url=url,
            steps=[
                f"Open {url} and log in as an owner or maintainer of {name}.",
                f'Choose "Un-yank" and type {version} to confirm.',
            ],
        )


def backend_for(index: Index) -> YankBackend:
    """The way ``index`` yanks (today every known index: its web page)."""
    return WebPageBackend(index)


@dataclass(frozen=True)
class YankResult:
    """How a yank ended: it was ``already`` so, the index ``confirmed`` it, or it is
    ``pending`` a person's action at ``url``. ``changelog`` is set when it was marked."""

    version: str
    state: Literal["already", "confirmed", "pending"]
    url: str | None = None
    changelog: Path | None = None


def is_interactive() -> bool:
    """True when a person can answer: stdin is a terminal and this is not CI."""
    return sys.stdin.isatty() and not detect_ci().is_ci


def _offer_to_open(url: str) -> None:
    get_reporter().info("Open the page in your browser now? [Y/n]")
    try:
        answer = input()
    except EOFError:
        return
    if answer.strip().lower() in ("", "y", "yes"):
        webbrowser.open(url)


def _yanked(files: list[IndexFile]) -> bool:
    return all(item.is_yanked for item in files)


def _replacement(versions: dict[Version, list[IndexFile]], excluded: Version) -> Version | None:
    """The newest release left installable, preferring final releases."""
    left = [v for v, files in versions.items() if v != excluded and not _yanked(files)]
    finals = [v for v in left if not v.is_prerelease]
    return max(finals or left, default=None)


def yank(
    project: Project,
    version: str,
    reason: str | None = None,
    *,
    index_name: str = PYPI,
    undo: bool = False,
    force: bool = False,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    interactive: bool | None = None,
    open_page: Callable[[str], object] | None = None,
    backend: YankBackend | None = None,
) -> YankResult:
    """Yank ``version`` of ``project`` on the index (``undo``: restore it).

    Refuses a missing ``reason`` when yanking, a version the index does not have, and
    leaving no installable release without ``force``. Where a person must act, prints the
    page and the steps; then, when ``interactive`` (default: a terminal, not CI), offers to
    open the page (``open_page``) and polls until the index agrees or ``timeout`` passes.
    Not interactive: raises :class:`ActionNeeded`, unless ``wait`` is False. Once the index
    agrees, marks the version in the project's CHANGELOG.md, if there is one.
    """
    reporter = get_reporter()
    if not undo and not (reason and reason.strip()):
        raise UsageError(
            f"Refusing to yank {project.name} {version} without a reason.",
            why="The index shows the reason to everyone who still installs the pinned version; "
            "it is how they learn what is wrong and what to use instead.",
            fix='Add --reason "...", for example --reason "Crashes on import; use 0.2.1".',
        )
    wanted = parse_version(version)
    index = resolve_index(index_name, project.settings["indexes"])
    verb = "un-yank" if undo else "yank"
    with IndexClient(index) as client:
        versions = client.versions(project.name)
        files = versions.get(wanted)
        if files is None:
            raise _not_found(project, version, index, versions)
        if _yanked(files) != undo:
            state = "not yanked" if undo else "yanked"
            reporter.info(
                f"{project.name} {wanted} is already {state} on {index.name}: nothing to do."
            )
            return YankResult(
                str(wanted), "already", changelog=_sync_changelog(project, wanted, undo)
            )
        replacement = _replacement(versions, wanted)
        if not undo:
            _explain(project, wanted, reason or "", replacement, force)
        backend = backend or backend_for(index)
        name = project.normalized_name
        handover = (
            backend.unyank(name, str(wanted))
            if undo
            else backend.yank(name, str(wanted), reason or "")
        )
        if not handover.done:
            interactive = is_interactive() if interactive is None else interactive
            waiting = wait and interactive
            _show_steps(index, project, wanted, verb, handover, undo, reason, waiting)
            if interactive and handover.url:
                (open_page or _offer_to_open)(handover.url)
            if not wait:
                return YankResult(str(wanted), "pending", url=handover.url)
            if not interactive:
                raise ActionNeeded(
                    f"Action needed: {verb} {project.name} {wanted} on {index.name} by hand at "
                    f"{handover.url}.",
                    why=f"{index.name} offers this on its web page only, and this run is not "
                    "interactive (CI, or no terminal), so it cannot wait for you.",
                    fix="Follow the steps above, then run the same command again to confirm; "
                    "pass --no-wait to print the steps without failing.",
                )

        def agrees() -> bool | None:
            now = client.versions(project.name).get(wanted)
            return True if now and _yanked(now) != undo else None

        target = "not yanked" if undo else "yanked"
        with reporter.status(
            f"Waiting up to {timeout:.0f} s for {index.name} to report {wanted} {target}"
        ):
            confirmed = poll(agrees, timeout, POLL_BACKOFF)
    if not confirmed:
        raise YankError(
            f"{index.display} did not report {project.name} {wanted} {target} within "
            f"{timeout:.0f} s.",
            why="Nobody has acted on the page yet, or the index still serves a cached page.",
            fix=f"{verb.capitalize()} it{f' at {handover.url}' if handover.url else ''}, then run "
            "the same command again: it finds the new state and finishes.",
        )
    reporter.success(f"{index.name} reports {project.name} {wanted} {target}.")
    return YankResult(
        str(wanted), "confirmed", url=handover.url, changelog=_sync_changelog(project, wanted, undo)
    )


def _not_found(
    project: Project, version: str, index: Index, versions: dict[Version, list[IndexFile]]
) -> YankError:
    if not versions:
        return YankError(
            f"{project.name} {version} is not on {index.display}: it has no release of "
            f"{project.name} at all.",
            fix="Check the project name and --index (pypi or testpypi).",
        )
    listed = ", ".join(str(v) for v in sorted(versions)[-8:])
    return YankError(
        f"{project.name} {version} is not on {index.display}.",
        why=f"Its releases there are: {listed}.",
        fix="Give one of those versions, or pick the other index with --index.",
    )


def _explain(
    project: Project, version: Version, reason: str, replacement: Version | None, force: bool
) -> None:
    reporter = get_reporter()
    if replacement is None:
        if not force:
            raise YankError(
                f"Yanking {project.name} {version} would leave no installable release.",
                why="A plain `pip install` of the project would then fail for everyone.",
                fix="Publish a fixed release first, then yank; or pass --force if nothing "
                "should be installable.",
            )
        reporter.warn(f"no installable release of {project.name} will be left (--force)")
        return
    reporter.info(
        f"Yanking hides {version} from resolvers (`pip install {project.name}` will pick "
        f"{replacement}); `{project.name}=={version}` still installs, existing installs are "
        "unaffected."
    )
    if str(replacement) not in reason:
        reporter.info(
            f'Tip: name the release to use instead in the reason, e.g. "{reason.rstrip(".")}. '
            f'Use {replacement} instead."'
        )


def _show_steps(
    index: Index,
    project: Project,
    version: Version,
    verb: str,
    handover: Handover,
    undo: bool,
    reason: str | None,
    waiting: bool,
) -> None:
    command = ["nox", "-s", "yank", "--", str(version)]
    command += ["--undo"] if undo else ["--reason", reason or ""]
    if index.name != PYPI:
        command += ["--index", index.name]
    changelog = f" and marks {CHANGELOG}" if (project.root / CHANGELOG).is_file() else ""
    last = (
        f"Come back here: this waits until {index.name} reports it{changelog}."
        if waiting
        else f"Then run `{shlex.join(command)}` again: it confirms the new state{changelog}."
    )
    steps = [*handover.steps, last]
    get_reporter().info(
        f"{index.name} has no API to {verb} a release: a person must do it on its web page. "
        f"To {verb} {project.name} {version}:\n"
        + "\n".join(f"  {number}. {step}" for number, step in enumerate(steps, 1))
    )


def mark_changelog(text: str, version: Version, yanked: bool) -> str | None:
    """``text`` with the heading of ``version`` marked ``[YANKED]`` (or unmarked).

    Returns None when no heading names that version; headings already right stay as they are.
    """
    for found in _HEADING.finditer(text):
        title = found.group(2)
        first = _HEADING_VERSION.search(title)
        if first is None:
            continue
        try:
            if Version(first.group(1)) != version:
                continue
        except InvalidVersion:
            continue
        if yanked and YANKED_MARK not in title:
            title = f"{title} {YANKED_MARK}"
        elif not yanked:
            title = re.sub(r"[ \t]*\[YANKED\]", "", title)
        return text[: found.start(2)] + title + text[found.end(2) :]
    return None


def _sync_changelog(project: Project, version: Version, undo: bool) -> Path | None:
    """Mark (or unmark) ``version`` in the project's changelog; the path when it changed."""
    path = project.root / CHANGELOG
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    marked = mark_changelog(text, version, yanked=not undo)
    reporter = get_reporter()
    if marked is None:
        reporter.warn(f"{CHANGELOG} has no heading for {version}; not marked")
        return None
    if marked == text:
        return None
    path.write_text(marked, encoding="utf-8")
    state = f"no longer {YANKED_MARK}" if undo else YANKED_MARK
    reporter.info(f"Marked {version} {state} in {path} (working tree only): review and commit it.")
    return path
