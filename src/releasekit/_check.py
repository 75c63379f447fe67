"""Check built files before anything is uploaded; every problem is listed, not just the first."""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.metadata import ExceptionGroup, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from releasekit import _archives
from releasekit._distributions import Distribution, find_distributions, parse_filename
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._stamp import stamp_of
from releasekit.errors import CheckFailed, ConfigError

#: Description content types twine's check does not render (nothing to import for them).
_NOT_RENDERED = ("text/markdown", "text/plain")


def _strict_check(path: Path, metadata: Mapping[str, Any]) -> tuple[list[str], bool, str]:
    """twine's strict check of one file: (warnings, whether the README renders, messages).

    For Markdown and plain text, twine renders nothing and only warns about a missing
    description; only reStructuredText (or no content type) needs twine's check, whose
    import loads docutils (0.3 s).
    """
    description = metadata.get("description")
    content_type = str(metadata.get("description_content_type") or "").split(";")[0]
    if content_type.strip().lower() in _NOT_RENDERED:
        missing = not description or description.rstrip() == "UNKNOWN"
        return (["`long_description` missing."] if missing else []), True, ""
    from twine.commands.check import _check_file, _WarningStream

    stream = _WarningStream()
    warnings, rendered = _check_file(str(path), stream)
    return warnings, rendered, str(stream)


def _twine_problems(dist: Distribution) -> list[str]:
    """twine's strict check of one file (metadata, README rendering)."""
    from twine.exceptions import TwineException
    from twine.package import PackageFile

    try:
        package = PackageFile.from_filename(str(dist.path), comment=None)
        metadata = package.metadata_dictionary()
        warnings, rendered, messages = _strict_check(dist.path, metadata)
    except (
        TwineException,
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        tarfile.TarError,
    ) as exc:
        reason = str(exc).strip() or type(exc).__name__
        return [f"{dist.filename}: unreadable ({reason}); rebuild it."]
    problems = [f"{dist.filename}: {warning}" for warning in warnings]
    if not rendered:
        problems.append(
            f"{dist.filename}: the long description (README) would not render on the index:"
            f" {messages or 'markup errors'}"
        )
    return problems


# --- what PyPI refuses at upload (warehouse's forklift), per file -------------------------

#: The Metadata-Version values PyPI accepts.
METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5")

_PLATFORMS = {
    "any", "win32", "win_arm64", "win_amd64", "win_ia64", "linux_armv6l", "linux_armv7l",
    *(f"manylinux1_{arch}" for arch in ("x86_64", "i686")),
    *(f"manylinux2010_{arch}" for arch in ("x86_64", "i686")),
    *(
        f"manylinux2014_{arch}"
        for arch in ("x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x")
    ),
}  # fmt: skip
_LINUX_ARCHES = "x86_64|i686|aarch64|armv7l|ppc64le|s390x|riscv64"
_MAC_ARCHES = "ppc|ppc64|i386|x86_64|arm64|intel|fat|fat3|fat64|universal|universal2"
_PLATFORM_PATTERNS = re.compile(
    rf"manylinux_\d+_\d+_(?:{_LINUX_ARCHES}|ppc64)|musllinux_\d+_\d+_(?:{_LINUX_ARCHES})"
    rf"|macosx_10_\d+_(?:{_MAC_ARCHES})|macosx_(?:11|12|13|14|15|26)_0_(?:{_MAC_ARCHES})"
    r"|ios_\d+_\d+_(?:arm64|x86_64)_(?:iphoneos|iphonesimulator)"
    r"|android_\d+_(?:armeabi_v7a|arm64_v8a|x86|x86_64)|pyemscripten_\d+_\d+_wasm32"
)


def platform_tag_problem(filename: str) -> str | None:
    """Why PyPI refuses a wheel's platform tags (plain ``linux_*`` ones above all), or None."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    refused = sorted(
        {t.platform for t in tags if t.platform not in _PLATFORMS}
        - {t.platform for t in tags if _PLATFORM_PATTERNS.fullmatch(t.platform)}
    )
    if not refused:
        return None
    problem = f"PyPI refuses the platform tag {', '.join(refused)}"
    if any(tag.startswith("linux_") for tag in refused):
        return problem + (
            ": a wheel built on one Linux may not run on another; build manylinux or "
            "musllinux wheels instead (cibuildwheel builds them, auditwheel repairs a "
            "linux_* wheel into one), or upload the sdist only"
        )
    return problem + ": it accepts only the tags of platforms it knows"


def _metadata_problems(data: bytes) -> tuple[list[str], RawMetadata, bool]:
    """PyPI's metadata rules (packaging's validation and warehouse's own) on METADATA or
    PKG-INFO: every problem, the raw fields, and whether packaging's validation passed."""
    raw, unparsed = parse_email(data)
    declared = str(raw.get("metadata_version", ""))
    if declared not in METADATA_VERSIONS:
        return (
            [
                f"Metadata-Version {declared or '(missing)'} is refused: PyPI accepts 1.0 to 1.2 "
                "and 2.1 to 2.5; rebuild with a current build backend"
            ],
            raw,
            False,
        )
    if Version(declared) < Version("2.4"):  # License-File before 2.4 is not sent (twine)
        raw.pop("license_files", None)
        unparsed.pop("license-file", None)
    problems = [f"metadata field {key!r} is unrecognised or malformed" for key in unparsed]
    try:
        Metadata.from_raw(raw)
    except ExceptionGroup as group:
        problems += [f"metadata: {error}" for error in group.exceptions]
    valid = not problems
    version = str(raw.get("version", ""))
    if "+" in version:
        problems.append(
            f"version {version} is a local version (the part after '+'); PyPI refuses local "
            "versions: release from a tag, or build with `--version V` or `--dev`"
        )
    problems += _classifier_problems(raw.get("classifiers") or [])
    if raw.get("license") and raw.get("license_expression"):
        problems.append(
            "metadata has both License and License-Expression; PyPI refuses that: keep only "
            'the license expression (`license = "MIT"` in [project])'
        )
    if len(raw.get("summary") or "") > 512:
        problems.append("the summary (description in [project]) is over 512 characters")
    for requirement in raw.get("requires_dist") or []:
        try:
            direct = Requirement(requirement).url
        except InvalidRequirement:
            continue  # packaging's validation lists it
        if direct:
            problems.append(
                f"dependency {requirement!r} is a direct URL reference; PyPI refuses them"
            )
    return problems, raw, valid


def _classifier_problems(classifiers: list[str]) -> list[str]:
    from trove_classifiers import all_classifiers, deprecated_classifiers

    problems = []
    for classifier in sorted(set(classifiers)):
        if classifier in deprecated_classifiers:
            instead = deprecated_classifiers[classifier]
            use = f"; use {' or '.join(map(repr, instead))}" if instead else ""
            problems.append(f"classifier {classifier!r} is deprecated{use}")
        elif classifier not in all_classifiers:
            problems.append(f"classifier {classifier!r} is not a known trove classifier")
    return problems


def _filename_problems(path: Path, raw: RawMetadata) -> list[str]:
    """The filename against the metadata: name and version, and the normalized form."""
    parsed = parse_filename(path.name)
    name, version = str(raw.get("name", "")), str(raw.get("version", ""))
    if parsed is None or not name or not version:
        return []
    filename_name, filename_version, kind = parsed
    problems = []
    if canonicalize_name(name) != filename_name:
        problems.append(f"the filename says {filename_name} but its metadata says {name}.")
    try:
        inner: Version | None = Version(version)
    except InvalidVersion:
        inner = None
    if inner != filename_version:
        problems.append(
            f"the filename says version {filename_version} but its metadata says {version}."
        )
    if problems or inner is None:
        return problems
    normal = canonicalize_name(name).replace("-", "_")
    if kind == "sdist" and path.name != (expected := f"{normal}-{inner}.tar.gz"):
        problems.append(
            f"PyPI refuses this sdist name; it must be {expected} (PEP 625): rebuild it with "
            "a current build backend"
        )
    if kind == "wheel" and path.name.split("-", 1)[0] != normal:
        problems.append(
            f"the name part of a wheel's filename must be {normal!r} (normalized, PEP 427): "
            "rebuild it with a current build backend"
        )
    return problems


def _license_file_problems(archive: _archives.Archive, raw: RawMetadata) -> list[str]:
    where = f"{archive.dist_info}/licenses/" if archive.dist_info else ""
    return [
        f"License-File {name} is not in the archive (at {where or 'the top directory/'}{name}); "
        "PyPI refuses that: check the `license-files` globs"
        for name in raw.get("license_files") or []
        if f"{where}{name}" not in archive.names
    ]


@dataclass
class FileVerdict:
    """What PyPI would say of one file: ``problems`` (refusals, each starting with the
    filename) and ``warnings``; ``safe`` when the archive may be handed to other readers,
    ``valid`` when its metadata also parses (so twine's check has something to add)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    safe: bool = True
    valid: bool = True


def pypi_problems(path: Path, *, refuse_platform_tags: bool = True) -> FileVerdict:
    """Every reason PyPI would refuse the file at ``path``, found within hard bounds.

    ``refuse_platform_tags=False`` makes platform tags PyPI refuses (``linux_*``) a warning,
    for an index known to accept them.
    """
    archive = _archives.inspect(path)
    found = list(archive.problems)
    warnings: list[str] = []
    valid = False
    if archive.safe and archive.metadata is not None:
        metadata_problems, raw, valid = _metadata_problems(archive.metadata)
        found += metadata_problems + _filename_problems(path, raw)
        found += _license_file_problems(archive, raw)
    if tags := platform_tag_problem(path.name):
        (found if refuse_platform_tags else warnings).append(tags)
    prefix = f"{path.name}: "
    return FileVerdict(
        [prefix + p for p in found], [prefix + w for w in warnings], archive.safe, valid
    )


def _identity_problems(dist: Distribution, project: Project) -> list[str]:
    problems = []
    if dist.name != project.normalized_name:
        problems.append(f"{dist.filename}: not a file of this project ({project.name}).")
    if dist.version != Version(project.version):
        problems.append(
            f"{dist.filename}: version {dist.version} differs from the project's {project.version}."
        )
    if dist.size > project.max_file_size:
        problems.append(
            f"{dist.filename}: {dist.size / 1e6:.1f} MB is over the index limit of "
            f"{project.max_file_size // (1024 * 1024)} MB (max-file-size-mb); "
            "leave data files out of the package, or ask the index for a larger limit."
        )
    return problems


def version_file_problems(project: Project) -> list[str]:
    """Every version file that disagrees with the project version (or cannot be read)."""
    problems = []
    for version_file in project.version_files:
        try:
            found = version_file.read()
        except ConfigError as exc:
            problems.append(exc.what)
            continue
        if found != project.version:
            problems.append(
                f"{version_file.spec} says {found} but the project version is {project.version}."
            )
    return problems


def ci_tag() -> str | None:
    """The git tag a CI job was started for (GitHub Actions or GitLab CI), if any."""
    if os.environ.get("GITHUB_REF_TYPE") == "tag":
        return os.environ.get("GITHUB_REF_NAME") or None
    return os.environ.get("CI_COMMIT_TAG") or None


def tag_problems(project: Project, versions: list[Version]) -> list[str]:
    """In a CI job started by a release tag of this project, the files must be that version."""
    tag = ci_tag()
    tagged = project.version_of_tag(tag) if tag else None
    if tagged is None or versions == [tagged]:
        return []
    found = ", ".join(str(v) for v in versions)
    return [
        f"this job runs for the tag {tag} (version {tagged}) but the files are version {found}; "
        f"tag the commit whose version is {tagged} (`nox -s release -- {tagged}` does both)."
    ]


def check(
    project: Project, dist_dir: Path | None = None, *, refuse_platform_tags: bool = True
) -> list[Distribution]:
    """Check this project's files in the dist dir; return them, or raise :class:`CheckFailed`.

    Checked: every rule PyPI applies at upload (:func:`pypi_problems`: archive structure and
    bounds, metadata, filenames, platform tags, licence files, classifiers, entry points;
    ``refuse_platform_tags=False`` downgrades refused platform tags to a warning); one sdist
    per version; twine's strict metadata and README rendering check; filename against the
    project (name and version); one sdist and one wheel; one version only; version files
    agreeing with the project version; file sizes under the index limit; in a CI job
    started by a release tag of this project, the version the tag names. Files stamped by
    ``build --version``/``--dev`` are checked against their stamped version when they are a
    stamp of this tree (see :func:`releasekit._stamp.stamp_of`).
    """
    dists = find_distributions(dist_dir or project.dist_dir, project.name)
    verdicts = [pypi_problems(d.path, refuse_platform_tags=refuse_platform_tags) for d in dists]
    problems = version_file_problems(project)
    readable = all(verdict.safe for verdict in verdicts)
    stamp = stamp_of(project, dists) if readable else None  # stamp_of reads the sdist
    expected = dataclasses.replace(project, version=stamp) if stamp else project
    versions = sorted({d.version for d in dists})
    if len(versions) > 1:
        problems.append(
            f"the dist dir mixes versions {', '.join(map(str, versions))}; rebuild to clear it."
        )
    problems += tag_problems(project, versions)
    kinds = {d.kind for d in dists}
    for kind in ("sdist", "wheel"):
        if kind not in kinds:
            problems.append(f"no {kind} of {project.name} in {dists[0].path.parent}.")
    sdists = Counter(d.version for d in dists if d.kind == "sdist")
    problems += [
        f"{count} sdists of version {version}; PyPI takes only one sdist per release: "
        "remove all but one (rebuild with `nox -s build`)."
        for version, count in sdists.items()
        if count > 1
    ]
    for dist, verdict in zip(dists, verdicts, strict=True):
        problems += verdict.problems
        if verdict.valid:
            problems += _twine_problems(dist)
        problems += _identity_problems(dist, expected)
    if problems:
        raise CheckFailed(problems)
    for verdict in verdicts:
        for warning in verdict.warnings:
            get_reporter().warn(warning)
    names = ", ".join(d.filename for d in dists)
    get_reporter().success(
        f"check_dist: {len(dists)} files of {project.name} {versions[0]} pass ({names})."
    )
    return dists
