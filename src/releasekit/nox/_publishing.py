"""The publishing sessions: build, check, upload, verify, rehearse, forge releases, CI."""

from __future__ import annotations

import argparse
import os
from contextlib import nullcontext, suppress
from pathlib import Path

import nox
import nox.command

from releasekit._project import Project, load_projects
from releasekit._report import get_reporter
from releasekit._workspace import for_each, for_each_in_order
from releasekit.ci.workflow import MATRIX_FROM
from releasekit.errors import UsageError
from releasekit.nox._arguments import (
    Overrides,
    _index_argument,
    arguments,
    projects,
)


def _build(session: nox.Session, overrides: Overrides) -> None:
    """Build the sdist and wheel into the dist dir; prints each file's size and sha256.

    In GitHub Actions, the step output ``sdist`` names the sdist (one project built)."""
    from releasekit._build import build
    from releasekit._buildservers import reused_build_processes
    from releasekit._lock import checkout_lock
    from releasekit._stamp import build_version, stamped

    parser = arguments(session, "Build the sdist and the wheel.")
    parser.add_argument("--version", help="stamp this version for this build only")
    parser.add_argument("--dev", action="store_true", help="stamp a unique dev release")
    parser.add_argument(
        "--sdist", action="store_true", help="build the sdist only (cibuildwheel builds wheels)"
    )
    args = parser.parse_args(session.posargs)

    sdists: list[Path] = []

    def build_one(project: Project) -> None:
        with stamped(project, build_version(project, args.version, args.dev)) as stamp:
            built = build(stamp, sdist_only=args.sdist)
            sdists.extend(d.path for d in built if d.kind == "sdist")

    stamping = args.version is not None or args.dev
    with (
        checkout_lock(Path.cwd(), "build --version") if stamping else nullcontext(),
        reused_build_processes(),  # one backend process for many packages
    ):
        for_each(projects(args, overrides), build_one)  # loaded under the lock: not stamped
    if len(sdists) == 1 and os.environ.get("GITHUB_OUTPUT"):
        from releasekit.ci.github import step_output

        # The wheel jobs init_ci writes for a compiled project build from this sdist.
        sdist = sdists[0].resolve()
        with suppress(ValueError):  # elsewhere than under the working directory
            sdist = sdist.relative_to(Path.cwd().resolve())
        step_output("sdist", sdist.as_posix())


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
    parser.add_argument(
        "--matrix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="monorepo: one workflow fanning out over the packages (default from "
        f"{MATRIX_FROM} packages on), or one per package (--no-matrix)",
    )
    args = parser.parse_args(session.posargs)
    every = load_projects(Path.cwd(), **overrides)
    monorepo = len(every) > 1
    matrix = monorepo and (args.matrix if args.matrix is not None else len(every) >= MATRIX_FROM)
    if matrix:
        if args.package:
            raise UsageError(
                "--package: the matrix workflow covers every package of the monorepo.",
                fix="Leave out --package, or pass --no-matrix for one workflow per package.",
            )
        _write_matrix_workflow(args.ci, args.repository, every, args.output, args.force)
        return
    chosen = projects(args, overrides)
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


def _write_matrix_workflow(
    ci: str, repository: str, every: list[Project], output: Path | None, force: bool
) -> None:
    """The one workflow (GitHub) or pipeline (GitLab) whose jobs fan out over every package."""
    from releasekit.ci.workflow import write_workflow

    if ci == "gitlab":
        from releasekit.ci.gitlab import matrix_pipeline_text

        path = output or Path(".gitlab-ci.yml")
        text = matrix_pipeline_text(every, repository, Path.cwd())
    else:
        from releasekit.ci.github import matrix_workflow_text

        path = output or Path(".github", "workflows", "publish.yml")
        text = matrix_workflow_text(every, repository, Path.cwd(), workflow_file=path.name)
    write_workflow(path, text, force=force)
    get_reporter().success(
        f"Wrote {path}: one file for the {len(every)} packages, its jobs fanning out over "
        "the packages to publish."
    )


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


def _rehearse(session: nox.Session, overrides: Overrides) -> None:
    """Rehearse the whole release against two throwaway local indexes; no tokens needed."""
    from releasekit._rehearse import rehearse

    parser = arguments(session, "Build, check, upload and verify against local stand-ins.")
    parser.add_argument(
        "--keep", action="store_true", help="keep the local indexes running until Ctrl-C"
    )
    args = parser.parse_args(session.posargs)
    rehearse(projects(args, overrides), keep=args.keep)


def _publish_release(session: nox.Session, overrides: Overrides) -> None:
    """Create or update the GitHub/GitLab release of this CI job's tag, with notes and files."""
    from releasekit._publish_release import publish_release

    args = arguments(
        session,
        "Publish the forge release of the current tag: the changelog section as notes, the "
        "dist files and their attestations attached. Safe to repeat.",
    ).parse_args(session.posargs)
    for_each(projects(args, overrides), publish_release)
