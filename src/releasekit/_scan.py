"""Find PyPI API tokens in files and in git history, naming where, never the token.

A candidate is ``pypi-`` followed by base64url characters. It counts as a token only when it
decodes as a PyPI macaroon (:func:`releasekit.credentials.tokens.token_at`, the one token
reader); then the instance it was made for is named. Only a string that decodes can
authenticate (the index deserialises the macaroon and checks its signature), so one that
merely begins like a macaroon (a fragment, a test fixture without a signature) is shown as a
warning and does not fail the scan, and anything else starting with ``pypi-`` (project
names, ``pypi-XXXX`` placeholders) is ignored: a pre-commit hook that cries wolf gets
switched off.

Tokens are also found in the forms they take in real files: split into string literals
(``"pypi-AgEI" "cHl..."``, ``+``, implicit concatenation over lines) or by shell line
continuations; written with escapes (``pypi\\u002dAgEI``, ``\\x2d``, ``%2D``); base64-encoded
(a ``Basic`` header's ``__token__:<token>``, a Kubernetes Secret's data, nested); in UTF-16
text (with or without a byte-order mark); in gzip data (a ``.gz`` file, or a member inside
another file). Work is bounded: decompressed and decoded bytes and candidate counts are
capped per file, and a scan that reaches a cap says so.

Usable without nox: ``releasekit-scan-secrets [PATH ...] [--history]`` (also a pre-commit hook).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from releasekit._git import Repository
from releasekit._process import stop_group
from releasekit._report import get_reporter
from releasekit.credentials.search import Finding, Hit, find_tokens
from releasekit.errors import ConfigError, ReleasekitError, SecretsFound

_GIT_ENV = {"GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git_root(path: Path) -> Path | None:
    """The top of the git work tree holding ``path``, or None outside git."""
    repository = Repository.find(path, environment=_GIT_ENV)
    return None if repository is None else repository.root


def _files_under(directory: Path) -> Iterator[Path]:
    """Files git tracks plus untracked ones it does not ignore; a plain walk outside git."""
    repository = Repository.find(directory, environment=_GIT_ENV)
    if repository is not None:
        listed = repository.run(
            *("-C", str(directory.resolve()), "ls-files", "-z"),
            *("--cached", "--others", "--exclude-standard"),
            errors="surrogateescape",
        )
        for name in sorted(set(listed.split("\0"))):
            if name:
                yield directory / name
        return
    for top, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            yield Path(top, name)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def scan_paths(paths: Sequence[Path]) -> list[Finding]:
    """Tokens in the files at ``paths`` (files, or directories walked as git sees them)."""
    findings: list[Finding] = []
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise ConfigError(f"{root} does not exist.", fix="Give files or directories to scan.")
        for path in [root] if root.is_file() else _files_under(root):
            resolved = path.resolve()
            if resolved in seen or path.is_symlink() or not path.is_file():
                continue
            seen.add(resolved)
            try:
                data = path.read_bytes()
            except OSError as exc:
                get_reporter().warn(f"cannot read {_display(path)}: {exc.strerror}")
                continue
            hits, capped = find_tokens(data)
            _warn_capped(_display(path), capped)
            findings.extend(hit.finding(_display(path)) for hit in hits)
    return findings


def _warn_capped(where: str, capped: set[str]) -> None:
    if capped:
        get_reporter().warn(
            f"{where}: stopped at {' and '.join(sorted(capped))}; the rest was not scanned."
        )


def _blobs(repository: Repository) -> dict[str, str]:
    """Every blob reachable from any ref (branches, tags, stash), with a path it had."""
    objects = repository.run("rev-list", "--all", "--objects", errors="surrogateescape")
    checked = repository.run(
        "cat-file",
        "--batch-check=%(objecttype) %(objectname) %(rest)",
        input=objects,
        errors="surrogateescape",
    )
    blobs: dict[str, str] = {}
    for line in checked.split("\n"):
        kind, _, rest = line.partition(" ")
        if kind == "blob":
            sha, _, path = rest.partition(" ")
            blobs[sha] = path
    return blobs


def _blob_hits(repository: Repository, blobs: Mapping[str, str]) -> dict[str, list[Hit]]:
    """Tokens in each blob, read in one ``git cat-file --batch`` stream (each blob once)."""
    process = repository.stream("cat-file", "--batch")
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:  # pragma: no cover - both are pipes
        raise RuntimeError("git cat-file has no pipes")
    request = "".join(f"{sha}\n" for sha in blobs).encode()

    def feed() -> None:
        stdin.write(request)
        stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    found: dict[str, list[Hit]] = {}
    try:
        while header := stdout.readline():
            sha, _kind, size = header.split()
            data = stdout.read(int(size) + 1)[:-1]
            hits, capped = find_tokens(data)
            _warn_capped(f"{blobs[sha.decode()]} (blob {sha.decode()[:12]})", capped)
            if hits:
                found[sha.decode()] = hits
    except BaseException:
        stop_group(process)
        raise
    writer.join()
    process.wait()
    return found


def _introductions(repository: Repository, wanted: set[str]) -> Iterator[tuple[str, str, str]]:
    """``(commit, path, blob)`` each time a wanted blob appears at a path, oldest first."""
    log = repository.run(
        "log",
        "--all",
        "--reverse",
        "--raw",
        "--no-renames",
        "--no-abbrev",
        "--diff-merges=first-parent",
        "--format=commit %H",
        errors="surrogateescape",
    )
    commit = ""
    for line in log.split("\n"):
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line.startswith(":"):
            meta, _, path = line.partition("\t")
            blob = meta.split()[3]
            if blob in wanted:
                yield commit, path, blob


def scan_history(repo: Path) -> list[Finding]:
    """Tokens in every blob reachable from any ref of ``repo``, each at its first commit."""
    repository = Repository(repo, environment=_GIT_ENV)
    blobs = _blobs(repository)
    hits = _blob_hits(repository, blobs)
    if not hits:
        return []
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    placed: set[str] = set()
    for commit, path, blob in _introductions(repository, set(hits)):
        placed.add(blob)
        for hit in hits[blob]:
            if (path, hit.fingerprint) not in seen:
                seen.add((path, hit.fingerprint))
                findings.append(hit.finding(path, commit))
    for blob in sorted(set(hits) - placed):  # reachable only through a tag of a tree or blob
        findings.extend(hit.finding(blobs[blob], blob) for hit in hits[blob])
    return findings


def scan_secrets(paths: Sequence[str | Path] = (), *, history: bool = False) -> list[Finding]:
    """Tokens in ``paths`` (default: the current directory) and, with ``history``, in every
    commit of the git repositories holding them."""
    roots = [Path(p) for p in paths] or [Path.cwd()]
    findings = scan_paths(roots)
    if history:
        repos = {repo for root in roots if (repo := git_root(root.resolve())) is not None}
        if not repos:
            raise ConfigError(
                "--history needs a git repository, and none holds the paths given.",
                fix="Run it inside a git work tree, or leave out --history.",
            )
        for repo in sorted(repos):
            with get_reporter().status(f"Scanning every commit of {repo}"):
                findings.extend(scan_history(repo))
    return findings


def check_no_secrets(paths: Sequence[str | Path] = (), *, history: bool = False) -> None:
    """:func:`scan_secrets`, raising :class:`SecretsFound` (every place listed) on a find.

    Fragments that do not decode are shown as warnings and do not fail.
    """
    reporter = get_reporter()
    findings = scan_secrets(paths, history=history)
    for finding in findings:
        if finding.kind == "fragment":
            reporter.warn(f"{finding.describe()} (a fragment or a test fixture; not counted)")
    tokens = [finding.describe() for finding in findings if finding.kind != "fragment"]
    if tokens:
        raise SecretsFound(tokens)
    scope = "files and git history" if history else "files"
    reporter.success(f"No PyPI tokens found in the {scope} scanned.")


def main(argv: Sequence[str] | None = None) -> int:
    """``releasekit-scan-secrets``: the command-line and pre-commit front end."""
    parser = argparse.ArgumentParser(
        prog="releasekit-scan-secrets",
        description="Find PyPI API tokens in files (and in git history); prints where, "
        "never the token. Exits 1 on a find.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument("--history", action="store_true", help="also scan every git commit")
    args = parser.parse_args(argv)
    try:
        check_no_secrets(args.paths, history=args.history)
    except ReleasekitError as exc:
        get_reporter().error(exc)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
