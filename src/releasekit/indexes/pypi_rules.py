"""What PyPI refuses at upload, checked offline within hard bounds (warehouse's forklift rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from packaging.metadata import ExceptionGroup, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from releasekit import _archives
from releasekit._distributions import Distribution, parse_filename
from releasekit.errors import UploadError
from releasekit.indexes.endpoints import PYPI, TESTPYPI, Index
from releasekit.indexes.simple import NO_UPLOADS, ProjectPage

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


#: PyPI and TestPyPI refuse new files for a release first uploaded longer ago than this.
NEW_FILES_WINDOW = timedelta(days=14)


def refuse_by_project_page(
    page: ProjectPage, name: str, dists: list[Distribution], index: Index
) -> None:
    """Refuse before sending what the index's project page says it would refuse: a project
    archived or quarantined (PEP 792), and on PyPI/TestPyPI new files for a release whose
    first file (PEP 700 upload time) is older than :data:`NEW_FILES_WINDOW`."""
    if page.status in NO_UPLOADS:
        reason = f" The index says: {page.status_reason}" if page.status_reason else ""
        raise UploadError(
            f"{name} is {page.status} on {index.display}: it takes no new files.{reason}",
            why="The project's owners (archived) or the index's administrators (quarantined) "
            "closed it to uploads (PEP 792 project status).",
            fix="An owner can unarchive it in the project's settings on the index; a "
            "quarantined project is released by the index's administrators (contact their "
            "support). Nothing was uploaded.",
        )
    if index.name not in (PYPI, TESTPYPI):
        return
    version = dists[0].version
    first = page.first_upload(version)
    listed = {item.filename for item in page.by_version.get(version, [])}
    new = [d.filename for d in dists if d.filename not in listed]
    if first is None or not new:
        return
    age = datetime.now(timezone.utc) - first
    if age > NEW_FILES_WINDOW:
        raise UploadError(
            f"{name} {version} was released on {index.display} {age.days} days ago "
            f"({first:%Y-%m-%d}); the index takes no new files for it: {', '.join(new)}.",
            why=f"PyPI refuses new files for a release older than {NEW_FILES_WINDOW.days} days.",
            fix="Release the new files under a new version (a post release such as "
            f"{version.base_version}.post1, or the next version). Nothing was uploaded.",
        )
