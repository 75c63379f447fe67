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
import binascii
import bisect
import hashlib
import os
import re
import sys
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Literal

from releasekit._git import Repository
from releasekit._process import stop_group
from releasekit._report import get_reporter
from releasekit.credentials import instance_name
from releasekit.credentials.tokens import token_at, token_location
from releasekit.errors import ConfigError, ReleasekitError, SecretsFound

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_PREFIX = b"pypi-"
_MIN_CANDIDATE = 16  # base64url characters after the prefix (as the redaction pattern)
_B64URL_CHARS = re.compile(rb"[A-Za-z0-9_\-]*")
#: What joins pieces of one string: the end of a literal and the start of the next (over
#: spaces, newlines and a concatenation operator), a shell line continuation, an escape.
_JOINS = re.compile(
    rb"""(?=["'\\%])(?:(?P<literals>["'][ \t]*(?:\\?\r?\n[ \t]*)*(?:\+|\.\.?|&|\|\|)?"""
    rb"""[ \t]*(?:\\?\r?\n[ \t]*)*[rbuRBUfF]?["'])"""
    rb"""|(?P<continuation>\\\r?\n[ \t]*)"""
    rb"""|(?P<escape>\\u00(?P<u>[2-7][0-9a-fA-F])|\\x(?P<x>[2-7][0-9a-fA-F])"""
    rb"""|%(?P<p>2[bBdDfF]|3[dD])))"""
)
#: A base64 (or base64url) run, also wrapped over lines or with JSON's ``\/`` and ``\n``
#: escapes (taken out before decoding); ``=`` padding ends a piece.
_BASE64_RUN = re.compile(
    rb"[A-Za-z0-9+/_\-\\]{16,}(?:={0,2}[ \t]*\r?\n[ \t]*[A-Za-z0-9+/_\-\\]{4,})*={0,2}"
)
_BASE64_WRAP = re.compile(rb"[ \t]*(?:\r?\n|(?:\\r)?\\n)[ \t]*|\\(?=/)")
_BASE64_PIECE = re.compile(rb"[A-Za-z0-9+/]+")
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_MIN_BASE64 = 64  # characters; the base64 of the shortest token is longer
_GZIP_MAGIC = b"\x1f\x8b\x08"
_UTF16 = (
    ("utf-16-le", "p\0y\0p\0i\0".encode("latin-1")),
    ("utf-16-be", "\0p\0y\0p\0i".encode("latin-1")),
)
_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Decoded bytes are searched when they are text or hold a mark of a form read here.
_MARKS = (b"pypi", _GZIP_MAGIC, *(pattern for _codec, pattern in _UTF16))
_TEXT = bytes(range(32, 127)) + b"\t\n\r"
#: Bounds on the work for one file (bombs and pathological inputs).
MAX_GZIP_MEMBER = 32 * 2**20
MAX_DECODED = 128 * 2**20
MAX_CANDIDATES = 10_000
MAX_GZIP_MEMBERS = 64
_MAX_DEPTH = 5
Kind = Literal["token", "fragment"]
_FORMS = {
    "literals": "split over several string literals",
    "continuation": "split by line continuations",
    "escape": "written with escapes",
    "base64": "base64-encoded",
    "utf-16": "in UTF-16 text",
    "gzip": "in gzip-compressed data",
}
_GIT_ENV = {"GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


@dataclass(frozen=True)
class Finding:
    """A token found in a file (``commit`` set when it was found in git history).

    ``kind``: a ``token``, or a ``fragment`` that begins like a token but does not decode (a
    warning, not a find). ``forms``: how it was written, outermost first (``base64``,
    ``gzip``, ``utf-16``, ``literals``, ``continuation``, ``escape``); empty when plain.
    """

    path: str
    line: int
    instance: str
    scope: str | None = None
    kind: Kind = "token"
    commit: str | None = None
    forms: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: where, in which commit, what kind of token, for which instance, and in
        which form (never the token, nor any encoding of it)."""
        where = f"{self.path}:{self.line}"
        if self.commit:
            where += f" (commit {self.commit[:12]})"
        token = f"PyPI API token for {self.instance}"
        if self.scope:
            token += f", scope {self.scope}"
        if self.kind == "fragment":
            token = f"looks like the start of a {token} but does not decode"
        if self.forms:
            token += "; " + ", ".join(_FORMS[form] for form in self.forms)
        return f"{where}: {token}"


@dataclass(frozen=True)
class _Hit:
    line: int
    instance: str
    scope: str | None
    kind: Kind
    forms: tuple[str, ...]
    fingerprint: str

    def finding(self, path: str, commit: str | None = None) -> Finding:
        return Finding(path, self.line, self.instance, self.scope, self.kind, commit, self.forms)


@dataclass
class _Budget:
    """What one file may still cost; ``capped`` says which bound was reached."""

    decoded: int = MAX_DECODED
    candidates: int = MAX_CANDIDATES
    capped: set[str] = field(default_factory=set)

    def spend(self, size: int) -> bool:
        if size > self.decoded:
            self.capped.add(f"more than {MAX_DECODED // 2**20} MiB of decoded data")
            return False
        self.decoded -= size
        return True


@dataclass(frozen=True)
class _Joined:
    """``data`` with the joins removed and escapes decoded, and the way back to offsets in
    the original: ``edits`` are (end in text, end in original, start in text, form)."""

    text: bytes
    edits: list[tuple[int, int, int, str]]
    ends: list[int]

    def original(self, at: int) -> int:
        index = bisect.bisect_right(self.ends, at) - 1
        if index < 0:
            return at
        end, original_end, _start, _form = self.edits[index]
        return original_end + at - end

    def forms(self, start: int, end: int) -> tuple[str, ...]:
        """The forms of the joins inside ``text[start:end]``."""
        inside = {
            form
            for edit_end, _orig, edit_start, form in self.edits
            if start < edit_start < end or (edit_start == start < edit_end)
        }
        return tuple(sorted(inside))


def _joined(data: bytes) -> _Joined:
    if b"pypi" not in data:  # joining costs; it is needed only where a token may be
        return _Joined(data, [], [])
    pieces: list[bytes] = []
    edits: list[tuple[int, int, int, str]] = []
    size = last = 0
    for match in _JOINS.finditer(data):
        pieces.append(data[last : match.start()])
        size += match.start() - last
        form = match.lastgroup or "escape"
        if form == "escape":
            code = match["u"] or match["x"] or match["p"]
            pieces.append(bytes([int(code, 16)]) if code else b"/")
            edits.append((size + 1, match.end(), size, form))
            size += 1
        else:
            edits.append((size, match.end(), size, form))
        last = match.end()
    pieces.append(data[last:])
    return _Joined(b"".join(pieces), edits, [edit[0] for edit in edits])


@dataclass(frozen=True)
class _View:
    """Bytes to search, and what they were decoded from: ``parent`` at offset ``at``, all of
    it when ``whole`` (a UTF-16 or gzip file: lines are counted in the decoded text, as the
    file's reader sees them); otherwise a finding is on the line where the encoding starts."""

    data: bytes
    forms: tuple[str, ...] = ()
    parent: _View | None = None
    at: int = 0
    whole: bool = True
    depth: int = 0

    def line_at(self, at: int) -> int:
        if self.parent is None or self.whole:
            return self.data.count(b"\n", 0, at) + 1
        return self.parent.line_at(self.at)

    def inner(self, data: bytes, form: str, at: int, *, whole: bool = False) -> _View:
        """A view of ``data``, decoded from this one at offset ``at``."""
        whole = whole and self.parent is None
        return _View(data, (*self.forms, form), self, at, whole, self.depth + 1)


def _hits(data: bytes) -> tuple[list[_Hit], set[str]]:
    """Every token and token-like fragment in ``data``, in any form this module reads, and
    the bounds that cut the search short."""
    budget = _Budget()
    found: dict[tuple[int, str], _Hit] = {}
    for hit in _search(_View(data), budget):
        found.setdefault((hit.line, hit.fingerprint), hit)
    return sorted(found.values(), key=lambda hit: hit.line), budget.capped


def _search(view: _View, budget: _Budget) -> Iterator[_Hit]:
    joined = _joined(view.data)
    yield from _candidates(view, joined, budget)
    if view.depth >= _MAX_DEPTH:
        return
    for inner in chain(
        _utf16(view, budget), _gzip_members(view, budget), _base64_runs(view, joined, budget)
    ):
        yield from _search(inner, budget)  # one decoded view in memory at a time per level


def _identify(candidate: str) -> tuple[Kind, str, str | None, int] | None:
    """(kind, instance, scope, length) of the token or fragment ``candidate`` begins with."""
    token = token_at(candidate)
    if token is not None:
        info, length = token
        return "token", info.instance, info.scope, length
    location = token_location(candidate)
    if location is not None and _HOST.fullmatch(location) and "." in location:
        return "fragment", instance_name(location), None, len(candidate)
    return None


def _candidates(view: _View, joined: _Joined, budget: _Budget) -> Iterator[_Hit]:
    """Tokens and fragments in the joined text of ``view``."""
    text = joined.text
    at = text.find(_PREFIX)
    while at >= 0:
        run = _B64URL_CHARS.match(text, at + len(_PREFIX))
        end = run.end() if run else at
        found = None
        if end - at - len(_PREFIX) >= _MIN_CANDIDATE:
            if budget.candidates <= 0:
                budget.capped.add(f"more than {MAX_CANDIDATES} candidates")
                return
            budget.candidates -= 1
            found = _identify(text[at:end].decode("ascii"))
        if found is None:
            at = text.find(_PREFIX, at + 1)
            continue
        kind, instance, scope, length = found
        yield _Hit(
            line=view.line_at(joined.original(at)),
            instance=instance,
            scope=scope,
            kind=kind,
            forms=(*view.forms, *joined.forms(at, at + length)),
            fingerprint=hashlib.sha256(text[at : at + length]).hexdigest(),
        )
        at = text.find(_PREFIX, at + length)


def _utf16(view: _View, budget: _Budget) -> Iterator[_View]:
    """``view`` read as UTF-16, when it has a byte-order mark or ``pypi`` in UTF-16."""
    data = view.data
    readings: set[tuple[str, int]] = set()
    if data[:2] in _BOMS:
        readings.add(("utf-16", 0))
    else:
        for codec, pattern in _UTF16:
            at = data.find(pattern)
            if at >= 0:
                readings.add((codec, at % 2))
    for codec, start in sorted(readings):
        size = len(data) - start
        if budget.spend(size):
            text = data[start : start + size - size % 2].decode(codec, errors="replace")
            yield view.inner(text.encode(), "utf-16", 0, whole=True)


def _gzip_members(view: _View, budget: _Budget) -> Iterator[_View]:
    """Each gzip member in ``view`` (the whole file, or data inside it), decompressed up to
    :data:`MAX_GZIP_MEMBER` bytes."""
    data = memoryview(view.data)
    at = view.data.find(_GZIP_MAGIC)
    members = 0
    while at >= 0:
        if members >= MAX_GZIP_MEMBERS:
            budget.capped.add(f"more than {MAX_GZIP_MEMBERS} gzip members")
            return
        members += 1
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(data[at:], MAX_GZIP_MEMBER)
        except zlib.error:
            inflated = b""
        if len(inflated) >= MAX_GZIP_MEMBER and not inflater.eof:
            budget.capped.add(f"gzip data that expands past {MAX_GZIP_MEMBER // 2**20} MiB")
        if inflated and budget.spend(len(inflated)):
            yield view.inner(inflated, "gzip", at, whole=at == 0)
        used = len(data) - at - len(inflater.unused_data) if inflater.eof else 1
        at = view.data.find(_GZIP_MAGIC, at + max(used, 1))


def _base64_runs(view: _View, joined: _Joined, budget: _Budget) -> Iterator[_View]:
    """The bytes each base64 run in ``view`` encodes, read from each of the four character
    offsets (a run need not start where its encoding does)."""
    for run in _BASE64_RUN.finditer(joined.text):
        if run.end() - run.start() < _MIN_BASE64:
            continue
        origin = joined.original(run.start())
        text = _BASE64_WRAP.sub(b"", run.group()).translate(_URLSAFE)
        for piece in _BASE64_PIECE.findall(text):
            for offset in range(4):
                usable = len(piece) - offset
                usable -= usable % 4 == 1  # a lone last character encodes no byte
                if usable < _MIN_BASE64 - 4:
                    continue
                chunk = piece[offset : offset + usable]
                decoded = binascii.a2b_base64(chunk + b"=" * (-usable % 4))
                if _may_hold_tokens(decoded) and budget.spend(len(decoded)):
                    yield view.inner(decoded, "base64", origin)


def _may_hold_tokens(data: bytes) -> bool:
    """Whether decoded bytes are worth a search: text, or a mark of a form read here (most
    of what a misaligned or binary base64 run decodes to is neither)."""
    head = data[:1024]
    if len(head.translate(None, _TEXT)) * 10 <= len(head):
        return True
    return data[:2] in _BOMS or any(mark in data for mark in _MARKS)


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
            hits, capped = _hits(data)
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


def _blob_hits(repository: Repository, blobs: Mapping[str, str]) -> dict[str, list[_Hit]]:
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
    found: dict[str, list[_Hit]] = {}
    try:
        while header := stdout.readline():
            sha, _kind, size = header.split()
            data = stdout.read(int(size) + 1)[:-1]
            hits, capped = _hits(data)
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
