"""Compiled projects: the platform families of their wheels, and whether a gathered set of
files holds a wheel for every family the release workflow builds.

A project "has extension modules" when its configuration says so (``wheel-platforms`` set,
a ``[tool.cibuildwheel]`` table, a build backend that only builds compiled code, setuptools
``ext_modules``) or when one of its built wheels is not pure (a platform tag other than
``any``). Its expected families are ``wheel-platforms``, else every family of
:data:`~releasekit._settings.WHEEL_PLATFORMS` (the jobs ``init_ci`` writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from releasekit._distributions import Distribution
from releasekit._project import Project, read_pyproject
from releasekit._settings import WHEEL_PLATFORMS, WheelPlatform

#: The platform tag prefixes of each family (PEP 600, PEP 656, macOS, Windows).
_TAG_PREFIXES: Mapping[WheelPlatform, tuple[str, ...]] = {
    "manylinux": ("manylinux",),
    "musllinux": ("musllinux",),
    "macos": ("macosx_",),
    "windows": ("win32", "win_"),
}
#: Build backends that only build compiled code (CMake, Meson, Rust).
_COMPILED_BACKENDS = ("scikit_build_core", "mesonpy", "maturin")


def wheel_families(filename: str) -> frozenset[WheelPlatform]:
    """The platform families a wheel's filename tags name (none for a pure wheel)."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()
    return frozenset(
        family
        for family, prefixes in _TAG_PREFIXES.items()
        if any(tag.platform.startswith(prefixes) for tag in tags)
    )


def is_pure(filename: str) -> bool:
    """True for a wheel whose every tag is for any platform (``py3-none-any``)."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return True
    return all(tag.platform == "any" for tag in tags)


def compiled_by_configuration(project: Project) -> str | None:
    """Why ``project``'s configuration says it builds platform wheels, or None.

    Read from the files only (cheap): ``[tool.cibuildwheel]``, a compiled-only build
    backend, ``[tool.setuptools] ext-modules``, or ``ext_modules`` in setup.py.
    """
    data: Mapping[str, Any] = read_pyproject(project.pyproject)
    tool = data.get("tool")
    tool = tool if isinstance(tool, dict) else {}
    if "cibuildwheel" in tool:
        return "pyproject.toml has a [tool.cibuildwheel] table"
    system = data.get("build-system")
    backend = str(system.get("build-backend", "")) if isinstance(system, dict) else ""
    if backend.split(".")[0] in _COMPILED_BACKENDS:
        return f"its build backend {backend} builds compiled code"
    setuptools = tool.get("setuptools")
    if isinstance(setuptools, dict) and setuptools.get("ext-modules"):
        return "[tool.setuptools] lists ext-modules"
    setup = project.root / "setup.py"
    try:
        if setup.is_file() and "ext_modules" in setup.read_text(encoding="utf-8"):
            return "setup.py passes ext_modules"
    except (OSError, UnicodeDecodeError):
        return None
    return None


@dataclass(frozen=True)
class ExpectedPlatforms:
    """The families a gathered set must hold a wheel of, and where that expectation comes
    from (in words); no families for a pure project."""

    families: tuple[WheelPlatform, ...]
    reason: str


def expected_platforms(
    project: Project, wheels: Iterable[str], *, refuse_platform_tags: bool = True
) -> ExpectedPlatforms:
    """The platform families ``project``'s release must hold a wheel of.

    ``wheel-platforms`` wins; otherwise a compiled project (its configuration, or a wheel
    among ``wheels`` that is not pure) expects every family, unless platform tags are not
    refused (an index that takes local ``linux_*`` builds); a pure project expects none.
    """
    setting = project.settings.wheel_platforms
    if setting is not None:
        return ExpectedPlatforms(setting, "[tool.releasekit] wheel-platforms")
    impure = sorted(name for name in wheels if not is_pure(name))
    reason = compiled_by_configuration(project) or (
        f"{impure[0]} is a platform wheel" if impure else None
    )
    if reason is None or not refuse_platform_tags:
        return ExpectedPlatforms((), "a pure project")
    return ExpectedPlatforms(WHEEL_PLATFORMS, f"the default for a compiled project ({reason})")


def wheel_platforms(project: Project) -> ExpectedPlatforms:
    """The platform families a CI file builds ``project``'s wheels for: none for a pure
    project; else ``wheel-platforms``, or every family (what check_dist expects of the
    gathered files). Read from its configuration and the wheels in its dist dir."""
    built = project.dist_dir.glob("*.whl") if project.dist_dir.is_dir() else ()
    return expected_platforms(project, [path.name for path in built])


def missing_platform_problem(
    project: Project, dists: list[Distribution], *, refuse_platform_tags: bool = True
) -> str | None:
    """One explained problem naming every expected family without a wheel among ``dists``,
    or None when none is missing."""
    wheels = [d.filename for d in dists if d.kind == "wheel"]
    expected = expected_platforms(project, wheels, refuse_platform_tags=refuse_platform_tags)
    found = {family for name in wheels for family in wheel_families(name)}
    missing = [family for family in expected.families if family not in found]
    if not missing:
        return None
    return (
        f"no wheel for {', '.join(missing)} among the files of {project.name} (expected: "
        f"{', '.join(expected.families)}, from {expected.reason}); uploading now would publish "
        "a release whose users on those platforms build from source. A wheel job of the "
        "release workflow failed or did not run: re-run it (GitHub: Re-run failed jobs; "
        "GitLab: retry the job) so that the publishing job gathers every wheel, or build "
        "them with cibuildwheel into the dist dir; if the project does not ship wheels for "
        "those platforms, list the ones it does in [tool.releasekit] wheel-platforms."
    )
