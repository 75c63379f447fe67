"""The project being released: ``[project]`` and ``[tool.releasekit]`` of its pyproject.toml."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from releasekit._settings import DEFAULT_TAG_FORMAT, Settings, toml_keys
from releasekit.errors import ConfigError, VersionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from releasekit.indexes.endpoints import Index


def read_pyproject(path: Path) -> dict[str, Any]:
    """Parse a pyproject.toml, turning every failure into a :class:`ConfigError`."""
    if not path.is_file():
        raise ConfigError(
            f"No pyproject.toml at {path.parent}.",
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
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Version file {self.spec}: cannot read {self.path} ({exc.strerror}).",
                fix="Correct the path in `version-files` (relative to the package directory).",
            ) from exc
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


@dataclass(frozen=True)
class Project:
    """A Python project to release: its identity, its files and its releasekit settings."""

    root: Path
    name: str
    version: str
    settings: Settings = field(repr=False)
    dynamic_version: bool = False

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
        """Every extra place that carries the version."""
        return [VersionFile.parse(spec, self.root) for spec in self.settings.version_files]

    @property
    def smoke(self) -> list[str]:
        """Configured smoke commands for the verify environment."""
        return list(self.settings.smoke)

    @property
    def max_file_size(self) -> int:
        """Largest file an index accepts, in bytes."""
        return self.settings.max_file_size_mb * 1024 * 1024

    def tag(self, version: str) -> str:
        """The git tag of ``version`` of this project."""
        fmt = self.settings.tag_format or DEFAULT_TAG_FORMAT
        return fmt.format(name=self.normalized_name, version=version)

    def index(self, name: str) -> Index:
        """The index called ``name``: built in or configured here, with environment overrides."""
        from releasekit.indexes.endpoints import resolve_index  # imports httpx: only when used

        return resolve_index(name, self.settings.indexes)

    def version_of_tag(self, tag: str) -> Version | None:
        """The version ``tag`` releases, or None when it is not a release tag of this project."""
        marker = "\x00version\x00"
        pattern = re.escape(self.tag(marker)).replace(re.escape(marker), "(?P<version>.+)")
        found = re.fullmatch(pattern, tag)
        if found is None:
            return None
        try:
            return Version(found.group("version"))
        except InvalidVersion:
            return None

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
        meta = data.get("project")
        where = root / "pyproject.toml"
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise ConfigError(
                f"{where} has no [project] name.",
                why="releasekit needs the project's name to find its files on an index.",
                fix='Add `name = "..."` under [project] (PEP 621).',
            )
        name = meta["name"]
        dynamic = "version" in meta.get("dynamic", [])
        version = meta.get("version")
        probe = cls(root=root, name=name, version="0", settings=settings, dynamic_version=dynamic)
        if isinstance(version, str):
            parse_version(version, f"version in {where}")
        elif dynamic and probe.version_files:
            version = probe.version_files[0].read()
            parse_version(version, f"version in {probe.version_files[0].spec}")
        else:
            raise ConfigError(
                f"{where} has no static [project] version.",
                why="releasekit reads the version without building the project.",
                fix='Add `version = "..."` under [project], or keep the version dynamic and '
                'name its source in [tool.releasekit] version-files ("path:VARIABLE").',
            )
        return cls(
            root=root, name=name, version=version, settings=settings, dynamic_version=dynamic
        )


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
