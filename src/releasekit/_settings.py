"""``[tool.releasekit]`` settings, validated and typed (Python names: ``_`` for ``-``)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args

from releasekit._redaction import register_secret_variable
from releasekit.errors import ConfigError

DEFAULT_MAX_FILE_SIZE_MB = 100
#: The tag format used while ``tag-format`` is not set.
DEFAULT_TAG_FORMAT = "{name}-v{version}"
Attestations = Literal["auto", "always", "never"]
ATTESTATIONS: tuple[Attestations, ...] = get_args(Attestations)
#: The platform families a compiled project's wheels are built for: the ``wheel-platforms``
#: setting names some of them, and ``init_ci`` writes a cibuildwheel job for each.
WheelPlatform = Literal["manylinux", "musllinux", "macos", "windows"]
WHEEL_PLATFORMS: tuple[WheelPlatform, ...] = get_args(WheelPlatform)
_PUBLISHER = re.compile(r"github:[\w.-]+/[\w.-]+|gitlab:[\w.-]+(?:/[\w.-]+)+")
_AUDIENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
_CHANGELOG_SUFFIXES = (".md", ".markdown", ".rst")
_T = TypeVar("_T")
_D = TypeVar("_D")


@dataclass(frozen=True)
class IndexSettings:
    """One ``[tool.releasekit.indexes.NAME]`` table; an unset key keeps the built-in value."""

    upload_url: str | None = None
    simple_url: str | None = None
    token_env: str | None = None
    username: str | None = None
    allow_insecure_http: bool = False
    trusted_publishing_audience: str | None = None


def _no_indexes() -> Mapping[str, IndexSettings]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Settings:
    """``[tool.releasekit]``, validated: each field is a key, with ``_`` for ``-``."""

    package_dir: str = "."
    packages: tuple[str, ...] | None = None
    dist_dir: str = "dist"
    tag_format: str | None = None
    version_files: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    indexes: Mapping[str, IndexSettings] = field(default_factory=_no_indexes, hash=False)
    max_file_size_mb: int = DEFAULT_MAX_FILE_SIZE_MB
    release_branch: str = "main"
    changelog_file: str | None = None
    attestations: Attestations = "auto"
    expect_publisher: str | None = None
    wheel_platforms: tuple[WheelPlatform, ...] | None = None

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str) -> Settings:
        """Check a ``[tool.releasekit]`` table (``source`` names it) and fill in defaults."""
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise ConfigError(
                f"Unknown key{'s' if len(unknown) > 1 else ''} in {source}: {', '.join(unknown)}.",
                why="releasekit only reads the keys it documents; "
                "a typo would be silently ignored.",
                fix=f"Use one of: {', '.join(KEYS)}.",
            )
        defaults = cls()
        settings = cls(
            package_dir=_typed(table, "package-dir", str, defaults.package_dir),
            packages=_strings(table, "packages"),
            dist_dir=_typed(table, "dist-dir", str, defaults.dist_dir),
            tag_format=_typed(table, "tag-format", str, None),
            version_files=_strings(table, "version-files") or (),
            smoke=_strings(table, "smoke") or (),
            indexes=_indexes(_typed(table, "indexes", dict, {})),
            max_file_size_mb=_typed(table, "max-file-size-mb", int, defaults.max_file_size_mb),
            release_branch=_typed(table, "release-branch", str, defaults.release_branch),
            changelog_file=_typed(table, "changelog-file", str, None),
            attestations=_attestations(_typed(table, "attestations", str, defaults.attestations)),
            expect_publisher=_typed(table, "expect-publisher", str, None),
            wheel_platforms=_wheel_platforms(_strings(table, "wheel-platforms")),
        )
        if settings.tag_format is not None:
            _check_tag_format(settings.tag_format)
        if settings.max_file_size_mb <= 0:
            raise ConfigError(
                "[tool.releasekit] max-file-size-mb must be a positive integer.",
                fix="Give the index's upload limit in megabytes (PyPI's default is 100).",
            )
        if settings.changelog_file is not None:
            _check_changelog_file(settings.changelog_file)
        if settings.expect_publisher is not None:
            _check_publisher(settings.expect_publisher)
        return settings


#: Every ``[tool.releasekit]`` key, and every key of an ``indexes`` table.
KEYS = tuple(f.name.replace("_", "-") for f in fields(Settings))
INDEX_KEYS = tuple(f.name.replace("_", "-") for f in fields(IndexSettings))
_WANTED = {str: "a string", list: "a list of strings", dict: "a table", int: "an integer"}


def _typed(table: Mapping[str, Any], key: str, kind: type[_T], default: _D) -> _T | _D:
    """``table[key]`` when it is a ``kind`` (bool is not an integer), ``default`` when unset."""
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    wanted = _WANTED[kind]
    raise ConfigError(
        f"[tool.releasekit] {key} must be {wanted}, not {value!r}.",
        fix=f"Give `{key}` {wanted} in pyproject.toml.",
    )


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    items = _typed(table, key, list, None)
    if items is None:
        return None
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(
            f"[tool.releasekit] {key} must be a list of strings, not {items!r}.",
            fix=f"Give `{key}` a list of strings in pyproject.toml.",
        )
    return tuple(items)


def _indexes(tables: dict[Any, Any]) -> Mapping[str, IndexSettings]:
    indexes = {}
    for name, index in tables.items():
        if not isinstance(index, dict):
            raise ConfigError(
                f"[tool.releasekit.indexes.{name}] must be a table, not {index!r}.",
                fix=f"Write it as a table: [tool.releasekit.indexes.{name}] with upload-url, "
                "simple-url, token-env and username keys.",
            )
        bad = sorted(set(index) - set(INDEX_KEYS))
        if bad:
            raise ConfigError(
                f"Unknown key in [tool.releasekit.indexes.{name}]: {', '.join(bad)}.",
                fix=f"Use one of: {', '.join(INDEX_KEYS)}.",
            )
        for key, value in index.items():
            if key == "allow-insecure-http" and not isinstance(value, bool):
                raise ConfigError(
                    f"[tool.releasekit.indexes.{name}] {key} must be true or false, not {value!r}.",
                    fix=f"Write {key} = true or {key} = false.",
                )
            if key != "allow-insecure-http" and not isinstance(value, str):
                raise ConfigError(
                    f"[tool.releasekit.indexes.{name}] {key} must be a string, not {value!r}.",
                    fix=f'Quote the value: {key} = "...".',
                )
        if isinstance(index.get("token-env"), str):
            register_secret_variable(index["token-env"])
        indexes[str(name)] = IndexSettings(
            upload_url=index.get("upload-url"),
            simple_url=index.get("simple-url"),
            token_env=index.get("token-env"),
            username=index.get("username"),
            allow_insecure_http=index.get("allow-insecure-http", False),
            trusted_publishing_audience=_audience(name, index.get("trusted-publishing-audience")),
        )
    return MappingProxyType(indexes)


def _audience(name: object, value: str | None) -> str | None:
    if value is None or _AUDIENCE.fullmatch(value):
        return value
    raise ConfigError(
        f"[tool.releasekit.indexes.{name}] trusted-publishing-audience {value!r} is not an "
        "OIDC audience.",
        why="It must be the exact audience the index's /_/oidc/audience endpoint answers.",
        fix="Give one word, such as the index's host name, without spaces or quotes.",
    )


def _attestations(value: str) -> Attestations:
    for accepted in ATTESTATIONS:
        if value == accepted:
            return accepted
    raise ConfigError(
        f'[tool.releasekit] attestations must be "auto", "always" or "never", not {value!r}.',
        why="It says when releasekit signs and uploads PEP 740 attestations.",
        fix='Use "auto" (when a trusted-publishing identity exists), "always" or "never".',
    )


def _wheel_platforms(values: tuple[str, ...] | None) -> tuple[WheelPlatform, ...] | None:
    if values is None:
        return None
    known = {platform: platform for platform in WHEEL_PLATFORMS}
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ConfigError(
            f"[tool.releasekit] wheel-platforms names {', '.join(map(repr, unknown))}, not a "
            "platform family releasekit knows.",
            why="check_dist wants a wheel of each family named; init_ci builds them.",
            fix=f"Name some of: {', '.join(WHEEL_PLATFORMS)} (or [] for no platform wheels).",
        )
    return tuple(known[platform] for platform in WHEEL_PLATFORMS if platform in values)


def _check_tag_format(fmt: str) -> None:
    """Refuse a tag format that is not plain text with ``{name}`` and ``{version}`` fields."""
    usage = 'Use only {name} and {version}, and always {version}: "{name}-v{version}".'
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:  # an unmatched brace
        raise ConfigError(
            f"[tool.releasekit] tag-format {fmt!r} is not a valid format: {exc}.",
            why="Braces mark fields; a literal brace is written twice ({{ or }}).",
            fix=usage,
        ) from None
    fields = [(field, spec, conv) for _text, field, spec, conv in parsed if field is not None]
    names = {field for field, _spec, _conv in fields}
    unknown = sorted(names - {"name", "version"})
    dressed = [field for field, spec, conv in fields if spec or conv]
    if unknown or "version" not in names or dressed:
        if unknown:
            problem = f"uses {{{unknown[0]}}}" if unknown[0] else "has an empty field {}"
        elif dressed:
            problem = f"gives {{{dressed[0]}}} a conversion or format spec"
        else:
            problem = "has no {version}"
        raise ConfigError(f"[tool.releasekit] tag-format {fmt!r} {problem}.", fix=usage)


def _check_changelog_file(name: str) -> None:
    path = PurePath(name)
    if path.is_absolute() or ".." in path.parts or path.suffix.lower() not in _CHANGELOG_SUFFIXES:
        raise ConfigError(
            f"[tool.releasekit] changelog-file {name!r} is not a Markdown or reStructuredText "
            "file inside the package directory.",
            fix="Give a path relative to the package directory, ending in .md or .rst, "
            'such as "CHANGELOG.md".',
        )


def _check_publisher(value: str) -> None:
    if _PUBLISHER.fullmatch(value) is None:
        raise ConfigError(
            f"[tool.releasekit] expect-publisher {value!r} names no publisher.",
            why="verify and audit compare it with the publisher in each file's provenance.",
            fix='Write "github:OWNER/REPO" or "gitlab:GROUP/PROJECT".',
        )


def toml_keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``register_sessions(dist_dir=...)`` keyword names into configuration keys."""
    return {key.replace("_", "-"): value for key, value in overrides.items()}
