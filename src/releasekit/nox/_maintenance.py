"""The maintenance sessions: doctor, release, yank, status, audit, scan_secrets, changed."""

from __future__ import annotations

from pathlib import Path

import nox
import nox.command

from releasekit._report import get_reporter
from releasekit._workspace import for_each
from releasekit.errors import UsageError
from releasekit.nox._arguments import (
    Overrides,
    arguments,
    projects,
)


def _doctor(session: nox.Session, overrides: Overrides) -> None:
    """Offline preflight: configuration, version files, credentials (never shown) per index."""
    from releasekit._doctor import doctor

    args = arguments(session, "Check configuration and credentials offline.").parse_args(
        session.posargs
    )
    for project in projects(args, overrides):
        doctor(project)


def _release(session: nox.Session, overrides: Overrides) -> None:
    """Release VERSION (or `auto`): guards, version set everywhere, changelog, commit and tag."""
    from releasekit._autoversion import next_version, show_auto_version
    from releasekit._lock import checkout_lock
    from releasekit._release import release
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


def _changed(session: nox.Session, overrides: Overrides) -> None:
    """Print as JSON, for a CI matrix, the packages changed since REF, in dependency order."""
    from releasekit._changes import changed_packages, matrix_json, tagged_package
    from releasekit.ci.github import matrix_outputs, step_output

    parser = arguments(
        session,
        "Print the packages changed since a git ref (and those requiring them), in dependency "
        "order, as one line of JSON for a CI matrix; in GitHub Actions also the step outputs "
        "`packages`, `pure`, `compiled` and `wheels` (compiled package x runner).",
        package=False,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--since", metavar="REF", help="a branch, tag or commit to compare HEAD with"
    )
    which.add_argument("--tag", metavar="TAG", help="the package this release tag releases, if any")
    args = parser.parse_args(session.posargs)
    chosen = projects(args, overrides)
    plan = changed_packages(chosen, args.since) if args.since else tagged_package(chosen, args.tag)
    for name, value in matrix_outputs(plan).items():
        step_output(name, value)
    get_reporter().document(matrix_json(plan))
