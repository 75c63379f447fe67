"""The release sessions, for a project's noxfile: ``releasekit.nox.register_sessions()``.

Sessions are thin: they parse the arguments after ``--``, call the library, and turn an
error into one explained failure. They run in the nox process (no virtualenv of their own)
and are not run by a bare ``nox``: name them with ``-s``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn

import nox
import nox.command

from releasekit._project import Project, load_projects
from releasekit._redaction import install_log_redaction
from releasekit._report import get_reporter, quiet_library_logs, show_trail, verbose_wanted
from releasekit._workspace import for_each, for_each_in_order
from releasekit.errors import ReleasekitError, UsageError

Overrides = dict[str, Any]
SessionBody = Callable[[nox.Session, Overrides], None]


class _HelpShown(Exception):
    """``--help`` was shown; the session ends there."""


class SessionArguments(argparse.ArgumentParser):
    """An argument parser whose errors and help go through the reporter, not to stderr."""

    def error(self, message: str) -> NoReturn:
        """Refuse bad arguments as a :class:`UsageError`."""
        raise UsageError(
            f"{self.prog}: {message}.", fix=f"See `{self.prog} --help` for the arguments."
        )

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            get_reporter().info(message.rstrip())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """End the session after ``--help`` (argparse would end the whole process)."""
        if message:
            self._print_message(message)
        raise _HelpShown


class _Verbose(argparse.Action):
    """``--verbose``: the trail is shown from the moment the arguments are read."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, True)
        show_trail(True)


def arguments(session: nox.Session, description: str, *, package: bool = True) -> SessionArguments:
    """A parser for the arguments of ``session``: ``--verbose`` always, and ``--package NAME``
    with ``package``."""
    parser = SessionArguments(prog=f"nox -s {session.name} --", description=description)
    parser.add_argument(
        "--verbose",
        action=_Verbose,
        nargs=0,
        default=False,
        help="show each HTTP request, child process and decision (also RELEASEKIT_VERBOSE=1)",
    )
    if package:
        parser.add_argument(
            "--package", metavar="NAME", help="in a monorepo, act on this package only"
        )
    return parser


def projects(args: argparse.Namespace, overrides: Overrides) -> list[Project]:
    """The projects a session acts on (all packages of a monorepo, or ``--package``)."""
    return load_projects(Path.cwd(), getattr(args, "package", None), **overrides)


def run(session: nox.Session, action: Callable[[], object]) -> None:
    """Run ``action``; a :class:`ReleasekitError` becomes one explained session failure.

    Any other exception is reported as an internal error, without a traceback unless
    ``RELEASEKIT_DEBUG`` is set. SIGTERM ends the session as an exception (SystemExit), so
    child processes are stopped, temporary directories removed and files restored.
    """
    from releasekit._stamp import sigterm_raises

    install_log_redaction()
    quiet_library_logs()
    show_trail(verbose_wanted())
    reporter = get_reporter()
    try:
        with sigterm_raises():
            action()
    except _HelpShown:
        return
    except ReleasekitError as exc:
        reporter.error(exc)
        raise nox.command.CommandFailed(exc.what.splitlines()[0]) from None
    except Exception as exc:
        if os.environ.get("RELEASEKIT_DEBUG"):
            raise
        reporter.error(
            ReleasekitError(
                f"releasekit hit an internal error: {type(exc).__name__}: {exc}",
                why="This is a bug in releasekit, not in your project.",
                fix="Set RELEASEKIT_DEBUG=1 to see the traceback, and report it.",
            )
        )
        raise nox.command.CommandFailed(f"internal error: {type(exc).__name__}") from None


def _build(session: nox.Session, overrides: Overrides) -> None:
    """Build the sdist and wheel into the dist dir; prints each file's size and sha256."""
    from releasekit._build import build
    from releasekit._lock import checkout_lock
    from releasekit._stamp import build_version, stamped

    parser = arguments(session, "Build the sdist and the wheel.")
    parser.add_argument("--version", help="stamp this version for this build only")
    parser.add_argument("--dev", action="store_true", help="stamp a unique dev release")
    args = parser.parse_args(session.posargs)

    def build_one(project: Project) -> None:
        with stamped(project, build_version(project, args.version, args.dev)) as stamp:
            build(stamp)

    stamping = args.version is not None or args.dev
    with checkout_lock(Path.cwd(), "build --version") if stamping else nullcontext():
        for_each(projects(args, overrides), build_one)  # loaded under the lock: not stamped


def _check_dist(session: nox.Session, overrides: Overrides) -> None:
    """Check the built files (metadata, README, names, versions, sizes); lists every problem."""
    from releasekit._check import check

    args = arguments(session, "Check the built files.").parse_args(session.posargs)
    for_each(projects(args, overrides), check)


def _verify(session: nox.Session, overrides: Overrides, index: str | None) -> None:
    from releasekit._verify import verify

    parser = arguments(
        session,
        f"Wait until {index or 'the index'} lists every file of the dist dir with the same "
        "sha256, then install that version in a fresh isolated environment and run the smoke "
        "commands.",
    )
    if index is None:
        _index_argument(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds to wait for the files to appear on the index (default: 300)",
    )
    parser.add_argument("--dist-dir", type=Path, metavar="DIR", help="verify the files here")
    args = parser.parse_args(session.posargs)
    if args.timeout < 0:
        parser.error("--timeout must be 0 or more seconds")
    target = index or args.index
    siblings = load_projects(Path.cwd(), **overrides)
    for_each(
        projects(args, overrides),
        lambda p: verify(
            p, target, timeout=args.timeout, dist_dir=args.dist_dir, siblings=siblings
        ),
    )


def _index_argument(parser: SessionArguments) -> None:
    parser.add_argument(
        "--index",
        required=True,
        metavar="NAME",
        help="an index of [tool.releasekit.indexes], or pypi or testpypi",
    )


def _verify_testpypi(session: nox.Session, overrides: Overrides) -> None:
    """Wait for the release on TestPyPI, install it in a fresh environment and smoke-test it."""
    _verify(session, overrides, "testpypi")


def _verify_pypi(session: nox.Session, overrides: Overrides) -> None:
    """Wait for the release on PyPI, install it in a fresh environment and smoke-test it."""
    _verify(session, overrides, "pypi")


def _init_ci(session: nox.Session, overrides: Overrides) -> None:
    """Write the CI file that publishes with these sessions: GitHub Actions or GitLab CI."""
    from releasekit.ci.workflow import write_workflow

    parser = arguments(
        session,
        "Write .github/workflows/publish.yml (GitHub Actions) or .gitlab-ci.yml (GitLab CI).",
    )
    parser.add_argument(
        "--repository",
        required=True,
        metavar="OWNER/NAME",
        help="the GitHub repository or GitLab project path allowed to publish",
    )
    parser.add_argument("--ci", choices=("github", "gitlab"), default="github", help="the CI")
    parser.add_argument("--output", type=Path, help="file to write (one package only)")
    parser.add_argument("--force", action="store_true", help="overwrite a different file")
    args = parser.parse_args(session.posargs)
    chosen = projects(args, overrides)
    monorepo = len(load_projects(Path.cwd(), **overrides)) > 1
    if args.output and len(chosen) > 1:
        raise UsageError(
            "--output names one file, and this monorepo has several packages.",
            fix="Add --package NAME, or leave out --output.",
        )
    written = []
    for project in chosen:
        name = project.normalized_name
        if args.ci == "gitlab":
            from releasekit.ci.gitlab import pipeline_text

            default = Path(".gitlab", f"publish-{name}.yml") if monorepo else Path(".gitlab-ci.yml")
            path = args.output or default
            text = pipeline_text(project, args.repository, Path.cwd(), monorepo=monorepo)
        else:
            from releasekit.ci.github import workflow_text

            default = Path(f"publish-{name}.yml" if monorepo else "publish.yml")
            path = args.output or Path(".github", "workflows", default)
            text = workflow_text(
                project, args.repository, Path.cwd(), monorepo=monorepo, workflow_file=path.name
            )
        written.append(write_workflow(path, text, force=args.force))
        get_reporter().success(f"Wrote {written[-1]}.")
    if args.ci == "gitlab" and monorepo:
        listing = "".join(f"\n  - local: {path.as_posix()}" for path in written)
        get_reporter().info(f"Include them from .gitlab-ci.yml:\ninclude:{listing}")


def _upload(session: nox.Session, overrides: Overrides, index: str | None) -> None:
    from releasekit._upload import upload

    parser = arguments(session, f"Upload the dist dir to {index or 'an index'}.")
    if index is None:
        _index_argument(parser)
    parser.add_argument("--dist-dir", type=Path, metavar="DIR", help="upload from here instead")
    args = parser.parse_args(session.posargs)
    target = index or args.index
    for_each_in_order(
        projects(args, overrides), lambda p: upload(p, target, dist_dir=args.dist_dir)
    )


def _upload_testpypi(session: nox.Session, overrides: Overrides) -> None:
    """Upload the dist dir to TestPyPI; files already there with the same sha256 are skipped."""
    _upload(session, overrides, "testpypi")


def _upload_pypi(session: nox.Session, overrides: Overrides) -> None:
    """Upload the dist dir to PyPI; files already there with the same sha256 are skipped."""
    _upload(session, overrides, "pypi")


def _upload_any(session: nox.Session, overrides: Overrides) -> None:
    """Upload the dist dir to any index named in [tool.releasekit.indexes]: --index NAME."""
    _upload(session, overrides, None)


def _verify_any(session: nox.Session, overrides: Overrides) -> None:
    """Wait for the release on the index --index NAME, install it and smoke-test it."""
    _verify(session, overrides, None)


def _doctor(session: nox.Session, overrides: Overrides) -> None:
    """Offline preflight: configuration, version files, credentials (never shown) per index."""
    from releasekit._doctor import doctor

    args = arguments(session, "Check configuration and credentials offline.").parse_args(
        session.posargs
    )
    for project in projects(args, overrides):
        doctor(project)


def _rehearse(session: nox.Session, overrides: Overrides) -> None:
    """Rehearse the whole release against two throwaway local indexes; no tokens needed."""
    from releasekit._rehearse import rehearse

    parser = arguments(session, "Build, check, upload and verify against local stand-ins.")
    parser.add_argument(
        "--keep", action="store_true", help="keep the local indexes running until Ctrl-C"
    )
    args = parser.parse_args(session.posargs)
    rehearse(projects(args, overrides), keep=args.keep)


def _release(session: nox.Session, overrides: Overrides) -> None:
    """Release VERSION (or `auto`): guards, version set everywhere, changelog, commit and tag."""
    from releasekit._lock import checkout_lock
    from releasekit._release import next_version, release, show_auto_version
    from releasekit.ci.github import step_output

    parser = arguments(
        session, "Release a version: guards, version files, changelog, one commit, one tag."
    )
    parser.add_argument(
        "version",
        metavar="VERSION|auto",
        help="the new version, canonical PEP 440; `auto`: the next one from conventional commits",
    )
    parser.add_argument(
        "--prerelease",
        choices=("rc", "beta", "alpha"),
        help="with auto: release the next version as this kind of pre-release",
    )
    parser.add_argument("--push", action="store_true", help="push the commit and the tag")
    parser.add_argument("--dry-run", action="store_true", help="show every change, make none")
    parser.add_argument(
        "--no-index-check", action="store_true", help="skip the check against PyPI (offline)"
    )
    args = parser.parse_args(session.posargs)
    auto = args.version == "auto"
    if args.prerelease and not auto:
        parser.error(
            f"--prerelease chooses the version with auto; {args.version} is already a version"
        )
    with checkout_lock(Path.cwd(), f"release {args.version}"):
        chosen = projects(args, overrides)
        if len(chosen) > 1:
            raise UsageError(
                "release acts on one package; this monorepo has "
                + ", ".join(p.name for p in chosen)
                + ".",
                fix="Name it: `nox -s release -- VERSION --package NAME`.",
            )
        version = args.version
        if auto:
            decided = next_version(chosen[0], args.prerelease)
            show_auto_version(chosen[0], decided)
            if decided.version is None:
                return
            version = decided.version
        plan = release(
            chosen[0],
            version,
            push=args.push,
            dry_run=args.dry_run,
            index_check=not args.no_index_check,
        )
        if not args.dry_run:
            step_output("tag", plan.tag)


def _yank(session: nox.Session, overrides: Overrides) -> None:
    """Yank a release (--undo: restore it); shows where and what when a person must act."""
    from releasekit._yank import DEFAULT_TIMEOUT, WaitPolicy, YankRequest, yank

    parser = arguments(session, "Yank a release, or undo a yank, and wait for the index.")
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument("--reason", help="why (the index shows it to users); required to yank")
    parser.add_argument("--index", default="pypi", help="pypi (default) or testpypi")
    parser.add_argument("--undo", action="store_true", help="restore a yanked release")
    parser.add_argument("--force", action="store_true", help="even if none stays installable")
    parser.add_argument("--no-wait", action="store_true", help="print the steps, do not wait")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for the index"
    )
    args = parser.parse_args(session.posargs)
    chosen = projects(args, overrides)
    if len(chosen) > 1:
        raise UsageError(
            f"yank acts on one package; this monorepo has {len(chosen)}.",
            fix="Name the package with --package NAME.",
        )
    request = YankRequest(args.version, args.reason, args.index, args.undo, args.force)
    yank(chosen[0], request, WaitPolicy(wait=not args.no_wait, timeout=args.timeout))


def _status(session: nox.Session, overrides: Overrides) -> None:
    """Show each index's releases: upload times, yanks, provenance, downloads (--json too)."""
    from releasekit._status import status

    parser = arguments(session, "Show what the indexes hold of the project, for monitoring.")
    parser.add_argument("--index", help="one index (default: pypi and testpypi)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(session.posargs)
    indexes = (args.index,) if args.index else ("pypi", "testpypi")
    for_each(projects(args, overrides), lambda p: status(p, indexes, as_json=args.json))


def _audit(session: nox.Session, overrides: Overrides) -> None:
    """Match every version on the index with a git tag; untagged ones may be unauthorised."""
    from releasekit._audit import audit
    from releasekit.errors import UnexplainedReleases

    parser = arguments(session, "Match every version on the index with a git tag.")
    parser.add_argument("--index", default="pypi", help="index to audit (default: pypi)")
    args = parser.parse_args(session.posargs)
    failures: list[UnexplainedReleases] = []
    for project in projects(args, overrides):
        try:
            audit(project, args.index)
        except UnexplainedReleases as exc:
            failures.append(exc)
    for failure in failures[:-1]:
        get_reporter().error(failure)
    if failures:
        raise failures[-1]


def _scan_secrets(session: nox.Session, _overrides: Overrides) -> None:
    """Find PyPI tokens in files (and in git history with --history); prints where, never them."""
    from releasekit._scan import check_no_secrets

    parser = arguments(session, "Find PyPI API tokens in files and history.", package=False)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument("--history", action="store_true", help="also scan every git commit")
    args = parser.parse_args(session.posargs)
    check_no_secrets(args.paths, history=args.history)


def _publish_release(session: nox.Session, overrides: Overrides) -> None:
    """Create or update the GitHub/GitLab release of this CI job's tag, with notes and files."""
    from releasekit._publish_release import publish_release

    args = arguments(
        session,
        "Publish the forge release of the current tag: the changelog section as notes, the "
        "dist files and their attestations attached. Safe to repeat.",
    ).parse_args(session.posargs)
    for_each(projects(args, overrides), publish_release)


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
