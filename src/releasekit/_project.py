"""The project being released: ``[project]`` and ``[tool.releasekit]`` of its pyproject.toml."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from releasekit._settings import Settings, toml_keys
from releasekit.errors import ConfigError, VersionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from releasekit._tags import TagStyle
    from releasekit.indexes.endpoints import Index


def read_pyproject(path: Path) -> dict[str, Any]:
    """Parse a pyproject.toml, turning every failure into a :class:`ConfigError`.

    A project without one but with a setup.py or setup.cfg reads as an empty table.
    """
    if not path.is_file():
        if any((path.parent / name).is_file() for name in ("setup.py", "setup.cfg")):
            return {}
        raise ConfigError(
            f"No pyproject.toml (nor setup.py or setup.cfg) at {path.parent}.",
            why="releasekit reads the project's name, version and settings from it.",
            fix="Run from the project's root, or set `package-dir` to where it lives.",
        )
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return data
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}.", fix="Correct the syntax at that position."
        ) from exc


def read_bytes(path: Path, what: Callable[[str], str], fix: str) -> bytes:
    """The content of ``path``; :class:`ConfigError` with ``what(reason)`` when it cannot be
    read (missing, a directory, a NUL in the path)."""
    try:
        return path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(what(str(reason)), fix=fix) from exc


def decoded(data: bytes, path: Path, purpose: str) -> str:
    """``data`` (the content of ``path``) as UTF-8 text; :class:`ConfigError` when it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"Cannot {purpose}: {path} is not UTF-8 text (byte {data[exc.start]:#04x} on "
            f"line {line}).",
            why="releasekit reads and writes the files that carry the version and the "
            "changelog as UTF-8, as Python and TOML do.",
            fix="Save the file as UTF-8 (convert it, e.g. with `iconv -t UTF-8`), then retry.",
        ) from None


_ASSIGNMENT = r"^[ \t]*{var}[ \t]*(?::[^=\n]*)?=[ \t]*(['\"])(?P<version>[^'\"\n]*)\1"
_JSON_MEMBER = r"\"{var}\"[ \t]*:[ \t]*\"(?P<version>[^\"\n]*)\""


@dataclass(frozen=True)
class VersionFile:
    """A place that carries the version: ``path:VARIABLE`` (``VARIABLE = "1.0"`` or JSON)."""

    spec: str
    path: Path
    variable: str

    @classmethod
    def parse(cls, spec: str, root: Path) -> VersionFile:
        """Parse a ``version-files`` entry relative to the package directory."""
        path, sep, variable = spec.rpartition(":")
        if not sep or not path or not re.fullmatch(r"[A-Za-z_][\w.\-]*", variable):
            raise ConfigError(
                f"version-files entry {spec!r} is not `path:VARIABLE`.",
                fix='Write entries such as "src/pkg/__init__.py:__version__".',
            )
        return cls(spec=spec, path=root / path, variable=variable)

    def _match(self, text: str) -> re.Match[str] | None:
        var = re.escape(self.variable)
        for pattern in (_ASSIGNMENT, _JSON_MEMBER):
            found = re.search(pattern.format(var=var), text, re.MULTILINE)
            if found:
                return found
        return None

    def read(self) -> str:
        """The version written in this file."""
        data = read_bytes(
            self.path,
            lambda reason: f"Version file {self.spec}: cannot read {self.path} ({reason}).",
            "Correct the path in `version-files` (relative to the package directory).",
        )
        text = decoded(data, self.path, f"read the version from {self.spec}")
        found = self._match(text)
        if found is None:
            raise ConfigError(
                f'Version file {self.spec}: no `{self.variable} = "..."` in {self.path}.',
                fix="Add the assignment, or correct the variable name after the colon.",
            )
        return found.group("version")

    def replace(self, text: str, version: str) -> str:
        """``text`` (this file's content) with the version set to ``version``."""
        found = self._match(text)
        if found is None:
            raise ConfigError(f"Version file {self.spec}: no `{self.variable}` to set.")
        start, end = found.span("version")
        return text[:start] + version + text[end:]


def parse_version(text: str, what: str = "version") -> Version:
    """Parse a PEP 440 version, raising :class:`VersionError` that names the value."""
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise VersionError(
            f"The {what} {text!r} is not a valid PEP 440 version.",
            fix="Use a version such as 1.2.0, 1.2.0rc1 or 1.2.0.dev3.",
        ) from exc


SourceKind = Literal["static", "version-file", "file", "poetry", "git", "backend"]


@dataclass(frozen=True)
class VersionSource:
    """Where a project's version comes from, and so how a build may set another one.

    ``kind``: ``static`` (``[project] version``), ``version-file`` (the first
    ``version-files`` entry), ``file`` (the backend reads ``file``, a ``path:VARIABLE``
    spec), ``poetry`` (``[tool.poetry] version``), ``git`` (the backend computes it from
    git tags; ``override`` names whose environment variables set it: ``setuptools-scm``
    or ``pdm-backend``), ``backend`` (computed some other way: reported, not settable).
    """

    kind: SourceKind
    backend: str
    detail: str
    file: str | None = None
    override: Literal["setuptools-scm", "pdm-backend"] | None = None


STATIC_SOURCE = VersionSource("static", "", "[project] version")


@dataclass(frozen=True)
class Project:
    """A Python project to release: its identity, its files and its releasekit settings."""

    root: Path
    name: str
    version: str
    settings: Settings = field(repr=False)
    dynamic_version: bool = False
    version_source: VersionSource = STATIC_SOURCE

    @property
    def normalized_name(self) -> str:
        """The PEP 503 normalised name, as indexes and tags use it."""
        return canonicalize_name(self.name)

    @property
    def pyproject(self) -> Path:
        """Path of the project's pyproject.toml."""
        return self.root / "pyproject.toml"

    @property
    def dist_dir(self) -> Path:
        """Where built files go."""
        return self.root / self.settings.dist_dir

    @property
    def version_files(self) -> list[VersionFile]:
        """Every extra place that carries the version (the backend's own source file too)."""
        files = [VersionFile.parse(spec, self.root) for spec in self.settings.version_files]
        own = self.version_source.file
        if own is not None and all(f.spec != own for f in files):
            files.append(VersionFile.parse(own, self.root))
        return files

    @property
    def smoke(self) -> list[str]:
        """Configured smoke commands for the verify environment."""
        return list(self.settings.smoke)

    @property
    def max_file_size(self) -> int:
        """Largest file an index accepts, in bytes."""
        return self.settings.max_file_size_mb * 1024 * 1024

    def tag_style(self) -> TagStyle:
        """How this project's release tags are spelt: ``tag-format``, else the style of the
        repository's existing tags (:mod:`releasekit._tags`; reads git when not set)."""
        from releasekit._tags import tag_style

        return tag_style(self)

    def tag(self, version: str) -> str:
        """The git tag of ``version`` of this project."""
        return self.tag_style().tag(self.normalized_name, version)

    def index(self, name: str) -> Index:
        """The index called ``name``: built in or configured here, with environment overrides."""
        from releasekit.indexes.endpoints import resolve_index  # imports httpx: only when used

        return resolve_index(name, self.settings.indexes)

    def version_of_tag(self, tag: str) -> Version | None:
        """The version ``tag`` releases, or None when it is not a release tag of this project."""
        return self.tag_style().version_of(self.normalized_name, tag)

    @classmethod
    def load(
        cls, path: str | Path = ".", *, inherited: Mapping[str, Any] | None = None, **overrides: Any
    ) -> Project:
        """Read the project at ``path`` (a directory).

        Settings come from, lowest first: ``inherited`` (the shared table of a monorepo's
        root), the project's own ``[tool.releasekit]``, and ``overrides`` (Python names, as
        ``register_sessions`` takes them). ``package-dir`` moves to the released package's
        directory, whose own table then wins over the one that named it.
        """
        base = Path(path).resolve()
        data = read_pyproject(base / "pyproject.toml")
        own = {**(inherited or {}), **_tool_table(data)}
        table = {**own, **toml_keys(overrides)}
        settings = Settings.from_table(table, f"{base / 'pyproject.toml'} [tool.releasekit]")
        root = (base / settings.package_dir).resolve()
        if root != base:
            shared = {k: v for k, v in own.items() if k != "package-dir"}
            rest = {k: v for k, v in overrides.items() if k != "package_dir"}
            return cls.load(root, inherited=shared, **rest)
        return cls._from_data(root, data, settings)

    @classmethod
    def _from_data(cls, root: Path, data: dict[str, Any], settings: Settings) -> Project:
        """Name and version from ``[project]`` when static (or from a version file), else
        from the build backend's metadata (see :mod:`releasekit._backend`)."""
        meta = data.get("project")
        where = root / "pyproject.toml"
        if meta is None:  # setup.py, setup.cfg, [tool.poetry]: only the backend knows
            return cls._from_backend(root, data, settings)
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise ConfigError(
                f"{where} has no [project] name.",
                why="releasekit needs the project's name to find its files on an index.",
                fix='Add `name = "..."` under [project] (PEP 621).',
            )
        name = meta["name"]
        dynamic = "version" in meta.get("dynamic", [])
        version = meta.get("version")
        if not isinstance(version, str) and not dynamic:
            raise ConfigError(
                f"{where} has no static [project] version, and `version` is not in [project] "
                "dynamic.",
                why="PEP 621 wants the version there, or named as computed by the build backend.",
                fix='Add `version = "..."` under [project], or `dynamic = ["version"]` if your '
                "build backend computes it (from git, or from a file).",
            )
        if isinstance(version, str):
            parse_version(version, f"version in {where}")
            return cls(root=root, name=name, version=version, settings=settings)
        if dynamic and settings.version_files:
            first = VersionFile.parse(settings.version_files[0], root)
            version = first.read()
            parse_version(version, f"version in {first.spec}")
            source = VersionSource("version-file", "", first.spec)
            return cls(root, name, version, settings, dynamic_version=True, version_source=source)
        return cls._from_backend(root, data, settings)

    @classmethod
    def _from_backend(cls, root: Path, data: dict[str, Any], settings: Settings) -> Project:
        from releasekit._backend import backend_identity  # pypa/build: only when needed

        name, version, source = backend_identity(root, data, settings)
        return cls(root, name, version, settings, dynamic_version=True, version_source=source)


def _tool_table(data: Mapping[str, Any]) -> dict[str, Any]:
    tool = data.get("tool", {})
    table = tool.get("releasekit", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(
            "[tool.releasekit] must be a table.",
            fix="Write the settings under a [tool.releasekit] header in pyproject.toml.",
        )
    return dict(table)


def load_projects(
    path: str | Path = ".", package: str | None = None, **overrides: Any
) -> list[Project]:
    """Every project to act on: the one project, or each of ``packages`` in a monorepo.

    ``package`` selects one of a monorepo's packages by name (or directory).
    """
    base = Path(path).resolve()
    data = read_pyproject(base / "pyproject.toml")
    table = {**_tool_table(data), **toml_keys(overrides)}
    settings = Settings.from_table(table, f"{base / 'pyproject.toml'} [tool.releasekit]")
    dirs = settings.packages
    if dirs is None and settings.package_dir == ".":
        dirs = uv_workspace_members(base, data)
    if not dirs:
        project = Project.load(base, **overrides)
        if package is not None and canonicalize_name(package) != project.normalized_name:
            raise ConfigError(
                f"--package {package}: this project is {project.name}.",
                fix="Leave out --package, or list monorepo packages in [tool.releasekit] packages.",
            )
        return [project]
    shared = {k: v for k, v in _tool_table(data).items() if k != "packages"}
    rest = {k: v for k, v in overrides.items() if k != "packages"}
    projects = [Project.load(base / d, inherited=shared, **rest) for d in dirs]
    if package is None:
        return projects
    wanted = canonicalize_name(package)
    chosen = [p for p in projects if p.normalized_name == wanted or p.root.name == package]
    if not chosen:
        names = ", ".join(p.name for p in projects)
        raise ConfigError(
            f"--package {package} is not one of this monorepo's packages: {names}.",
            fix="Name one of them (its project name or its directory).",
        )
    return chosen


def uv_workspace_members(base: Path, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The package dirs of a uv workspace (``[tool.uv.workspace] members`` globs, less
    ``exclude``, each with a pyproject.toml; the root too when it has a ``[project]``)."""
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    workspace = uv.get("workspace") if isinstance(uv, dict) else None
    if not isinstance(workspace, dict):
        return ()

    def matches(key: str) -> set[str]:
        globs = workspace.get(key, [])
        return {
            path.relative_to(base).as_posix()
            for pattern in (globs if isinstance(globs, list) else [])
            for path in base.glob(str(pattern))
            if (path / "pyproject.toml").is_file()
        }

    members = sorted(matches("members") - matches("exclude") - {"."})
    return (".", *members) if members and isinstance(data.get("project"), dict) else tuple(members)
