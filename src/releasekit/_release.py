"""Release a version: guards, version set everywhere, changelog, one commit, one annotated tag.

Every guard is checked before anything changes. The changes then happen as one
transaction: if any step fails (or the process is interrupted) the repository is put back
exactly as it was: same HEAD, same tags, every edited file restored byte for byte.
"""

from __future__ import annotations

import difflib

from releasekit._git import Repository
from releasekit._project import Project
from releasekit._releaseplan import ReleasePlan, plan_release
from releasekit._report import get_reporter
from releasekit._stamp import (
    restore,
    signals_deferred,
    sigterm_raises,
    write_bytes,
)
from releasekit.errors import (
    GitError,
    ReleaseError,
    ReleasekitError,
)


def describe(plan: ReleasePlan, repository: Repository) -> None:
    """Print every change ``plan`` makes: file diffs, the commit, the tag, the push."""
    reporter = get_reporter()
    for edit in plan.edits:
        name = repository.relative(edit.path)
        diff = difflib.unified_diff(
            (edit.before or b"").decode("utf-8").splitlines(keepends=True),
            edit.after.decode("utf-8").splitlines(keepends=True),
            fromfile=f"a/{name}" if edit.before is not None else "/dev/null",
            tofile=f"b/{name}",
        )
        reporter.output(f"{name}:", "".join(diff))
    since = f"since {plan.previous_tag}" if plan.previous_tag else "since the first commit"
    reporter.info(f"Changelog: conventional commits {since}.")
    reporter.info(f"Commit on {plan.branch}: {plan.commit_message}")
    reporter.info(f"Annotated tag: {plan.tag} ({plan.tag_message})")
    if plan.remote:
        reporter.info(f"Push (atomic) to {plan.remote}: {plan.branch} and {plan.tag}")


def _rollback(plan: ReleasePlan, repository: Repository, head: str) -> list[str]:
    """Put HEAD, the tags and the edited files back; return what could not be restored."""
    with signals_deferred():
        problems = []
        try:
            if repository.tag_exists(plan.tag):
                repository.run("tag", "--delete", plan.tag)
            repository.run("reset", "--quiet", "--mixed", head)
        except GitError as exc:
            problems.append(exc.what)
        restore(plan.edits)
        try:
            left = repository.status().splitlines()
        except GitError as exc:
            left = [exc.what]
        if left:
            problems.append("still differing from before: " + ", ".join(left))
        return problems


def apply(plan: ReleasePlan, repository: Repository) -> str:
    """Make the changes of ``plan``: files, one commit, one annotated tag, the push.

    Any failure, KeyboardInterrupt or SIGTERM before the push is done restores the
    repository as it was and re-raises (failures as :class:`ReleaseError`). Signals are
    held while a local step runs, so git is never killed half way through writing. The push
    can be interrupted (git and its hooks are stopped); then, or when it fails, the remote
    is asked whether it has the tag: if it has (or cannot say), the commit and tag are kept
    and the message says so. Returns the release commit.
    """
    head = repository.head()
    step = "write the files"
    pushed = False
    try:
        with sigterm_raises():
            with signals_deferred():
                for edit in plan.edits:
                    write_bytes(edit.path, edit.after)
            step = "commit"
            paths = [repository.relative(edit.path) for edit in plan.edits]
            with signals_deferred():
                repository.run("add", "--", *paths)
                repository.run("commit", "--quiet", "--message", plan.commit_message, "--", *paths)
            step = "tag"
            with signals_deferred():
                repository.run("tag", "--annotate", plan.tag, "--message", plan.tag_message)
            if plan.remote:
                step = "push"
                branch = f"refs/heads/{plan.branch}"
                repository.run(
                    "push",
                    "--atomic",
                    "--quiet",
                    plan.remote,
                    f"{branch}:{branch}",
                    f"refs/tags/{plan.tag}:refs/tags/{plan.tag}",
                    remote=True,
                )
                pushed = True
            return repository.head()
    except BaseException as exc:
        if pushed:
            raise
        remote_state = ""
        if step == "push" and plan.remote:
            kept = _push_outcome(plan, plan.remote, repository, exc)
            if kept is exc:
                raise
            if kept is not None:
                raise kept from exc
            remote_state = f"the remote {plan.remote!r} does not have the tag {plan.tag}; "
        problems = _rollback(plan, repository, head)
        if not isinstance(exc, Exception):
            get_reporter().warn(
                f"Release of {plan.project.name} {plan.version} interrupted at step {step!r}; "
                + remote_state
                + ("the repository was restored." if not problems else "; ".join(problems))
            )
            raise
        detail = exc.what if isinstance(exc, ReleasekitError) else f"{type(exc).__name__}: {exc}"
        restored = (
            f"The repository was restored: HEAD {head[:12]}, no tag {plan.tag}, files as before."
            if not problems
            else "The repository could not be fully restored: " + "; ".join(problems)
        )
        raise ReleaseError(
            f"Releasing {plan.project.name} {plan.version} failed at step {step!r}: {detail}\n"
            + restored,
            why="The step failed for the reason given (a git hook, permissions, the remote).",
            fix="Correct the cause, then run the same release again.",
        ) from exc


def _push_outcome(
    plan: ReleasePlan, remote: str, repository: Repository, exc: BaseException
) -> BaseException | None:
    """After a push that failed or was interrupted: None when ``remote`` lacks the tag (undo
    the release), else what to raise with the local commit and tag kept (already reported
    when ``exc`` is an interrupt, which is then raised as it is)."""
    try:
        landed: bool | None = repository.remote_has_tag(remote, plan.tag)
        reason = ""
    except GitError as error:
        landed, reason = None, error.what.splitlines()[-1]
    if landed is False:
        return None
    commit = repository.head()[:12]
    name = f"{plan.project.name} {plan.version}"
    if landed:
        state = (
            f"the push went through: {remote!r} has the tag {plan.tag} and commit {commit} "
            f"on {plan.branch}. The release stands; nothing was undone."
        )
        fix = "Nothing to redo: publish from the tag as usual."
    else:
        state = (
            f"whether {remote!r} has the tag {plan.tag} could not be checked ({reason}). "
            f"The commit {commit} and the tag were kept."
        )
        fix = (
            f"Check with `git ls-remote --tags {remote} {plan.tag}`: if the tag is there the "
            f"release stands; if not, push with `git push --atomic {remote} {plan.branch} "
            f"{plan.tag}`."
        )
    if not isinstance(exc, Exception):
        get_reporter().warn(f"Release of {name} interrupted during the push; {state} {fix}")
        return exc
    detail = exc.what if isinstance(exc, ReleasekitError) else f"{type(exc).__name__}: {exc}"
    return ReleaseError(
        f"The push of {name} reported a failure: {detail}\nYet {state}",
        why="The remote took the push, but its answer did not reach releasekit intact."
        if landed
        else "git reported a failure, and the remote could not be asked whether the push arrived.",
        fix=fix,
    )


def release(
    project: Project,
    version: str,
    *,
    push: bool = False,
    dry_run: bool = False,
    index_check: bool = True,
) -> ReleasePlan:
    """Release ``version`` of ``project`` (see the module docstring); returns the plan.

    ``dry_run`` checks the guards and prints every change without making any.
    """
    reporter = get_reporter()
    repository = Repository(project.root)
    plan = plan_release(project, version, push=push, index_check=index_check, repository=repository)
    if dry_run:
        describe(plan, repository)
        reporter.success(
            f"Dry run: {project.name} {plan.version} would be released; nothing changed."
        )
        return plan
    commit = apply(plan, repository)
    reporter.success(
        f"Released {project.name} {plan.version}: commit {commit[:12]}, tag {plan.tag}"
        + (f", pushed to {plan.remote}." if plan.remote else ".")
    )
    if not plan.remote:
        reporter.info(
            f"Push to publish: git push --atomic {repository.remote()} {plan.branch} {plan.tag}"
        )
    return plan
