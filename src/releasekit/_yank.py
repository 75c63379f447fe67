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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.version import Version

from releasekit._changelog import changelog_format, changelog_path
from releasekit._headings import ChangelogFormat, headings, retitled
from releasekit._polling import Backoff, poll
from releasekit._project import Project, decoded, parse_version
from releasekit._report import get_reporter
from releasekit.ci import detect as detect_ci
from releasekit.credentials.sources import read_auth
from releasekit.errors import ActionNeeded, ConfigError, UsageError, YankError
from releasekit.indexes import PYPI, Index, IndexClient, IndexFile
from releasekit.indexes.yanking import Handover, YankBackend, backend_for

#: How long to wait for a person to act on the web page, in seconds.
DEFAULT_TIMEOUT = 900.0
POLL_BACKOFF = Backoff(first=0.5, factor=1.5, cap=10.0)
YANKED_MARK = "[YANKED]"


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


@dataclass(frozen=True)
class YankRequest:
    """Yank ``version`` on the index ``index_name`` (``undo``: restore it).

    ``reason`` is required to yank (the index shows it to users); ``force`` allows a yank
    that leaves no installable release.
    """

    version: str
    reason: str | None = None
    index_name: str = PYPI
    undo: bool = False
    force: bool = False

    @property
    def verb(self) -> str:
        """``yank`` or ``un-yank``."""
        return "un-yank" if self.undo else "yank"

    @property
    def target(self) -> str:
        """The state the release should reach: ``yanked`` or ``not yanked``."""
        return "not yanked" if self.undo else "yanked"


@dataclass(frozen=True)
class WaitPolicy:
    """How to wait while a person acts on the index's page.

    ``wait`` False prints the steps and returns; ``timeout`` bounds the wait in seconds;
    ``interactive`` (default: a terminal, not CI) says whether a person can answer here, and
    ``open_page`` opens the page (default: asks, then opens the browser).
    """

    wait: bool = True
    timeout: float = DEFAULT_TIMEOUT
    interactive: bool | None = None
    open_page: Callable[[str], object] | None = None


def yank(
    project: Project,
    request: YankRequest,
    waiting: WaitPolicy | None = None,
    *,
    backend: YankBackend | None = None,
) -> YankResult:
    """Do ``request`` on ``project``'s index and wait until the index reports it.

    Refuses a missing reason when yanking, a version the index does not have, and leaving
    no installable release without ``force``. Where a person must act, prints the page and
    the steps; then, when interactive, offers to open the page and polls until the index
    agrees or the timeout passes. Not interactive: raises :class:`ActionNeeded`, unless
    ``waiting.wait`` is False. Once the index agrees, marks the version in the project's
    changelog (:func:`releasekit._changelog.changelog_path`), if it has one.
    """
    waiting = waiting or WaitPolicy()
    reporter = get_reporter()
    _require_reason(project, request)
    wanted = parse_version(request.version)
    index = project.index(request.index_name)
    changelog = _changelog_file(project)
    with IndexClient(index, credentials=read_auth(index, project.name)) as client:
        versions = client.versions(project.name)
        files = versions.get(wanted)
        if files is None:
            raise _not_found(project, request.version, index, versions)
        if _yanked(files) != request.undo:
            reporter.info(
                f"{project.name} {wanted} is already {request.target} on {index.name}: "
                "nothing to do."
            )
            marked = _sync_changelog(changelog, wanted, request.undo)
            return YankResult(str(wanted), "already", changelog=marked)
        if not request.undo:
            replacement = _replacement(versions, wanted)
            _explain(project, wanted, request.reason or "", replacement, request.force)
        handover = _hand_over(backend or backend_for(index), project, wanted, request)
        if not handover.done:
            person = _Person(index, project, wanted, request, handover, changelog)
            pending = person.ask(waiting)
            if pending is not None:
                return pending
        _wait_for_index(client, project, wanted, request, handover, waiting.timeout)
    reporter.success(f"{index.name} reports {project.name} {wanted} {request.target}.")
    marked = _sync_changelog(changelog, wanted, request.undo)
    return YankResult(str(wanted), "confirmed", url=handover.url, changelog=marked)


def _require_reason(project: Project, request: YankRequest) -> None:
    if not request.undo and not (request.reason and request.reason.strip()):
        raise UsageError(
            f"Refusing to yank {project.name} {request.version} without a reason.",
            why="The index shows the reason to everyone who still installs the pinned version; "
            "it is how they learn what is wrong and what to use instead.",
            fix='Add --reason "...", for example --reason "Crashes on import; use 0.2.1".',
        )


def _hand_over(
    backend: YankBackend, project: Project, version: Version, request: YankRequest
) -> Handover:
    name = project.normalized_name
    if request.undo:
        return backend.unyank(name, str(version))
    return backend.yank(name, str(version), request.reason or "")


@dataclass(frozen=True)
class _Person:
    """The person who must act on the index's page: what to tell them, how to wait."""

    index: Index
    project: Project
    version: Version
    request: YankRequest
    handover: Handover
    changelog: Path | None

    def ask(self, waiting: WaitPolicy) -> YankResult | None:
        """Show the steps and offer the page; a pending result when not waiting, None when
        this run should now poll the index. Raises :class:`ActionNeeded` when nobody can
        answer here."""
        interactive = is_interactive() if waiting.interactive is None else waiting.interactive
        self.show_steps(waiting=waiting.wait and interactive)
        url = self.handover.url
        if interactive and url:
            (waiting.open_page or _offer_to_open)(url)
        if not waiting.wait:
            return YankResult(str(self.version), "pending", url=url)
        if not interactive:
            raise ActionNeeded(
                f"Action needed: {self.request.verb} {self.project.name} {self.version} on "
                f"{self.index.name} by hand at {url}.",
                why=f"{self.index.name} offers this on its web page only, and this run is not "
                "interactive (CI, or no terminal), so it cannot wait for you.",
                fix="Follow the steps above, then run the same command again to confirm; "
                "pass --no-wait to print the steps without failing.",
            )
        return None

    def show_steps(self, *, waiting: bool) -> None:
        """The numbered steps, and what to do once they are done."""
        index, request, verb = self.index, self.request, self.request.verb
        command = ["nox", "-s", "yank", "--", str(self.version)]
        command += ["--undo"] if request.undo else ["--reason", request.reason or ""]
        if index.name != PYPI:
            command += ["--index", index.name]
        marks = f" and marks {self.changelog.name}" if self.changelog else ""
        last = (
            f"Come back here: this waits until {index.name} reports it{marks}."
            if waiting
            else f"Then run `{shlex.join(command)}` again: it confirms the new state{marks}."
        )
        steps = [*self.handover.steps, last]
        get_reporter().info(
            f"{index.name} has no API to {verb} a release: a person must do it on its web "
            f"page. To {verb} {self.project.name} {self.version}:\n"
            + "\n".join(f"  {number}. {step}" for number, step in enumerate(steps, 1))
        )


def _wait_for_index(
    client: IndexClient,
    project: Project,
    version: Version,
    request: YankRequest,
    handover: Handover,
    timeout: float,
) -> None:
    """Poll until the index reports ``request.target``; raises :class:`YankError` after
    ``timeout`` seconds."""
    index = client.index

    def agrees() -> bool | None:
        now = client.versions(project.name).get(version)
        return True if now and _yanked(now) != request.undo else None

    with get_reporter().status(
        f"Waiting up to {timeout:.0f} s for {index.name} to report {version} {request.target}"
    ):
        confirmed = poll(agrees, timeout, POLL_BACKOFF)
    if not confirmed:
        at = f" at {handover.url}" if handover.url else ""
        raise YankError(
            f"{index.display} did not report {project.name} {version} {request.target} within "
            f"{timeout:.0f} s.",
            why="Nobody has acted on the page yet, or the index still serves a cached page.",
            fix=f"{request.verb.capitalize()} it{at}, then run the same command again: it "
            "finds the new state and finishes.",
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


def mark_changelog(
    text: str, version: Version, yanked: bool, form: ChangelogFormat = "md"
) -> str | None:
    """``text`` with the heading of ``version`` marked ``[YANKED]`` (or unmarked).

    Returns None when no heading names that version; headings already right stay as they are.
    """
    heading = next((h for h in headings(text, form) if h.version == version), None)
    if heading is None:
        return None
    title = heading.title
    if yanked and YANKED_MARK not in title:
        title = f"{title} {YANKED_MARK}"
    elif not yanked:
        title = re.sub(r"[ \t]*\[YANKED\]", "", title)
    return retitled(text, heading, title)


def _changelog_file(project: Project) -> Path | None:
    """The changelog a release of ``project`` writes, when it exists."""
    try:
        path = changelog_path(project)
    except ConfigError as exc:
        get_reporter().warn(f"{exc.what} The changelog is not marked.")
        return None
    return path if path.is_file() else None


def _sync_changelog(path: Path | None, version: Version, undo: bool) -> Path | None:
    """Mark (or unmark) ``version`` in the changelog at ``path``; the path when it changed."""
    if path is None:
        return None
    text = decoded(path.read_bytes(), path, f"mark {version} in the changelog")
    marked = mark_changelog(text, version, yanked=not undo, form=changelog_format(path) or "md")
    reporter = get_reporter()
    if marked is None:
        reporter.warn(f"{path.name} has no heading for {version}; not marked")
        return None
    if marked == text:
        return None
    path.write_text(marked, encoding="utf-8")
    state = f"no longer {YANKED_MARK}" if undo else YANKED_MARK
    reporter.info(f"Marked {version} {state} in {path} (working tree only): review and commit it.")
    return path
