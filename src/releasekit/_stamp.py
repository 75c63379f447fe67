"""Set a project's version in every file that carries it, for good (release) or for one build.

:func:`version_edits` computes the new content of each file; :func:`stamped` writes it for
the duration of a ``with`` block and restores every file byte for byte afterwards, also when
the block fails or the process is interrupted (KeyboardInterrupt, SIGTERM).
"""

from __future__ import annotations

import dataclasses
import re
import signal
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from packaging.version import Version

from releasekit._backend import require_settable
from releasekit._distributions import Distribution
from releasekit._git import Repository
from releasekit._lock import checkout_lock
from releasekit._project import Project, decoded, parse_version, read_bytes
from releasekit.ci import detect as detect_ci
from releasekit.errors import ConfigError, VersionError


@dataclass(frozen=True)
class FileEdit:
    """A file's content before (None: it does not exist yet) and after a change."""

    path: Path
    before: bytes | None
    after: bytes


def canonical_version(text: str, what: str = "version", *, full: bool = False) -> Version:
    """``text`` as a :class:`Version`, refused unless it is valid, canonical PEP 440.

    Canonical means written exactly as PEP 440 normalises it (``str(Version(v)) == v``) and
    without a local part (indexes refuse those); ``full`` also demands major.minor.patch.
    """
    version = parse_version(text, what)
    if version.local:
        raise VersionError(
            f"The {what} {text!r} has a local part (+{version.local}).",
            why="Package indexes refuse local versions.",
            fix=f"Use {version.public}.",
        )
    if str(version) != text:
        raise VersionError(
            f"The {what} {text!r} is not in canonical PEP 440 form.",
            why="Indexes, tags and files must all spell a version the same way.",
            fix=f"Write it as {version}.",
        )
    if full and len(version.release) < 3:
        epoch = f"{version.epoch}!" if version.epoch else ""
        release = ".".join(str(n) for n in (*version.release, 0, 0)[:3])
        suffix = text[len(version.base_version) :]
        raise VersionError(
            f"The {what} {text!r} does not have major.minor.patch.",
            why="Releases are numbered with three parts, so tags and versions sort alike.",
            fix=f"Write it as {epoch}{release}{suffix}.",
        )
    return version


def _set_toml_string(table: Any, key: str, version: str) -> None:
    import tomlkit
    from tomlkit.items import String

    old = table[key]
    # From its text, not String.type: older tomlkit releases lack it, and `python -m nox` run
    # in a checkout of tomlkit itself imports that checkout's tomlkit.
    literal = isinstance(old, String) and old.as_string().startswith("'")
    table[key] = tomlkit.string(version, literal=literal)


def _pyproject_text(project: Project, text: str, version: str) -> str:
    import tomlkit  # imported only to write pyproject.toml: a plain build never loads it

    document = tomlkit.parse(text)
    if not project.dynamic_version:
        _set_toml_string(document["project"], "version", version)
    if project.version_source.kind == "poetry":
        _set_toml_string(document["tool"]["poetry"], "version", version)
    commitizen = document.get("tool", {}).get("commitizen", {})
    if "version" in commitizen:
        _set_toml_string(commitizen, "version", version)
    return tomlkit.dumps(document)


def version_edits(project: Project, version: str) -> list[FileEdit]:
    """Every file that must change for ``project`` to carry ``version``, and how.

    The places: ``[project] version`` (or ``[tool.poetry] version``) of pyproject.toml
    (formatting kept), each ``version-files`` entry of ``[tool.releasekit]`` and the file
    the backend reads the version from (a version from git has none: the tag is the
    version, and builds set it through the backend's override), and from ``[tool.commitizen]`` its
    ``version`` key and its ``version_files`` (commitizen's ``path[:regex]`` form: the old
    version is replaced on the lines the regex matches), relative to the package dir, and
    the project's own entry in a ``uv.lock`` beside it (:func:`uv_lock`).
    """
    texts: dict[Path, str] = {}
    originals: dict[Path, bytes] = {}

    def current(path: Path) -> str:
        if path not in texts:
            originals[path] = read_bytes(
                path,
                lambda reason: f"Cannot read {path} to set the version ({reason}).",
                "Correct the path in the configuration, or restore the file.",
            )
            texts[path] = decoded(originals[path], path, "set the version")
        return texts[path]

    require_settable(project, build=False)
    if project.pyproject.is_file():  # a setup.py-only project has none
        texts[project.pyproject] = _pyproject_text(project, current(project.pyproject), version)
    lock = uv_lock(project)
    if lock is not None:
        texts[lock] = _uv_lock_text(project, current(lock), version)
    for version_file in project.version_files:
        texts[version_file.path] = version_file.replace(current(version_file.path), version)
    from releasekit._changelog import commitizen_settings  # commitizen takes 0.5 s to import

    for spec in commitizen_settings(project).get("version_files", []):
        glob, _, regex = str(spec).partition(":")
        try:
            pattern = re.compile(regex or re.escape(project.version))
        except re.error as exc:
            raise ConfigError(
                f"[tool.commitizen] version_files {spec!r}: {regex!r} is not a valid regular "
                f"expression ({exc}).",
                why="The part after the colon selects the lines whose version is replaced.",
                fix="Correct the expression (a literal parenthesis or bracket is written with "
                "a backslash), or leave out the colon and the expression.",
            ) from None
        paths = sorted(project.root.glob(glob))
        for path in paths:
            lines = current(path).splitlines(keepends=True)
            replaced = [
                line.replace(project.version, version) if pattern.search(line) else line
                for line in lines
            ]
            if replaced == lines and project.version != version:
                raise ConfigError(
                    f"[tool.commitizen] version_files {spec!r}: {path.name} has no line with "
                    f"the current version {project.version} to replace.",
                    fix="Correct the entry, or write the current version into the file.",
                )
            texts[path] = "".join(replaced)
        if not paths:
            raise ConfigError(f"[tool.commitizen] version_files {spec!r} matches no file.")
    return [
        FileEdit(path, originals[path], text.encode("utf-8"))
        for path, text in texts.items()
        if text.encode("utf-8") != originals[path]
    ]


def uv_lock(project: Project) -> Path | None:
    """The ``uv.lock`` that pins this project, when git tracks one: in the project's directory
    or a parent (a uv workspace), up to the checkout's root. An untracked or ignored lock is
    left alone (a release commit could not include it). None when there is none."""
    repository = Repository.find(project.root)
    if repository is None:
        return None
    for directory in (project.root, *project.root.parents):
        lock = directory / "uv.lock"
        if lock.is_file():
            tracked = repository.run("ls-files", "--", repository.relative(lock)).strip()
            return lock if tracked else None
        if directory.resolve() == repository.root.resolve():
            return None
    return None


def _uv_lock_text(project: Project, text: str, version: str) -> str:
    """``uv.lock`` with the project's own entry (its editable or virtual source, the
    project itself) at ``version``; other packages of that name (from an index) untouched."""
    import tomlkit  # only when a release writes the lock

    document = tomlkit.parse(text)
    for package in document.get("package", []):
        source = package.get("source", {})
        own = "editable" in source or "virtual" in source
        if own and package.get("name") == project.normalized_name and "version" in package:
            _set_toml_string(package, "version", version)
    return tomlkit.dumps(document)


def dev_version(project: Project, repository: Repository | None = None) -> str:
    """A unique dev release above the last release: ``<next patch>.dev<N>``.

    The last release is the higher of the project version and its last tag; N is
    ``GITHUB_RUN_NUMBER`` when set, else the number of commits since that tag.
    """
    repository = repository or Repository(project.root)
    last_tag = repository.last_tag(project)
    last = Version(project.version)
    if last_tag and project.version_source.kind == "git":
        last = repository.project_tags(project)[last_tag]  # git's own version is past it
    elif last_tag:
        last = max(last, repository.project_tags(project)[last_tag])
    major, minor, patch = (*last.release, 0, 0)[:3]
    number = detect_ci().run_number()
    if number is None:
        number = repository.count_commits(last_tag)
    return f"{major}.{minor}.{patch + 1}.dev{number}"


def write_bytes(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` in place (the file keeps its mode and identity)."""
    with path.open("wb") as handle:
        handle.write(content)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while files are being restored, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in pending:
            signal.raise_signal(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit inside the block, so ``finally`` clauses run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def restore(edits: list[FileEdit]) -> None:
    """Put every edited file back as it was (byte for byte), removing files that were new."""
    with signals_deferred():
        for edit in edits:
            if edit.before is None:
                edit.path.unlink(missing_ok=True)
            else:
                write_bytes(edit.path, edit.before)


@contextmanager
def stamped(project: Project, version: str | None) -> Iterator[Project]:
    """``project`` carrying ``version`` in all its files for the block (None: unchanged).

    Yields the project with that version. On leaving the block in any way, including an
    exception, KeyboardInterrupt or SIGTERM, every stamped file is restored byte for byte.
    The checkout's stamping lock (:func:`releasekit._lock.checkout_lock`) is held throughout:
    another stamping run in the same checkout waits for this one.
    """
    if version is None or version == project.version:
        yield project
        return
    with checkout_lock(project.root, f"stamping {project.name} {version}"):
        edits = version_edits(project, version)
        with sigterm_raises():
            try:
                for edit in edits:
                    write_bytes(edit.path, edit.after)
                yield dataclasses.replace(project, version=version)
            finally:
                restore(edits)


def build_version(project: Project, version: str | None, dev: bool) -> str | None:
    """The version ``build --version V`` / ``--dev`` stamps (None: the project's own)."""
    if version is not None and dev:
        raise VersionError(
            "build: --version and --dev both given.", fix="Give one of them, not both."
        )
    if version is not None or dev:
        require_settable(project, build=True)
    if dev:
        return dev_version(project)
    if version is not None:
        return str(canonical_version(version, "build version"))
    return None


def _sdist_members(sdist: Path, names: list[str]) -> dict[str, bytes] | None:
    """The content of ``names`` (paths in the project) inside ``sdist``, or None if absent."""
    if not sdist.name.endswith(".tar.gz"):
        return None
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            members = archive.getnames()
            top = members[0].split("/", 1)[0] if members else ""
            found = {}
            for name in names:
                handle = archive.extractfile(f"{top}/{name}")
                if handle is None:
                    return None
                found[name] = handle.read()
            return found
    except (OSError, tarfile.TarError, KeyError):
        return None


def stamp_of(project: Project, dists: list[Distribution]) -> str | None:
    """The version ``dists`` were stamped with, when they are a stamp of this very tree.

    That is: every file has one version V above the project's, and the sdist's
    pyproject.toml and version files are byte for byte what stamping this tree with V
    writes. Stale files of an earlier version, or files built from another tree, are not.
    """
    versions = {dist.version for dist in dists}
    if len(versions) != 1:
        return None
    (version,) = versions
    if version <= Version(project.version):
        return None
    sdists = [dist for dist in dists if dist.kind == "sdist"]
    try:
        edits = {edit.path: edit.after for edit in version_edits(project, str(version))}
    except ConfigError:
        return None
    places = [project.pyproject, *(version_file.path for version_file in project.version_files)]
    # pdm-backend writes a dynamic version into its sdist's copy of pyproject.toml
    rewritten = project.dynamic_version and project.version_source.backend.startswith("pdm.")
    places = [p for p in places if p.is_file() and not (rewritten and p == project.pyproject)]
    names = [path.relative_to(project.root).as_posix() for path in places]
    for sdist in sdists:
        inside = _sdist_members(sdist.path, names)
        if inside is None:
            return None
        for path, name in zip(places, names, strict=True):
            if inside[name] != edits.get(path, path.read_bytes()):
                return None
    return str(version) if sdists else None
