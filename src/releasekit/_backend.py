"""The build backend's word on a project whose name or version is not static in ``[project]``.

The name and version come from the PEP 517 ``prepare_metadata_for_build_wheel`` hook, run in
an isolated build environment by pypa/build (a wheel is built when the backend lacks the
hook), and are cached on disk under the git directory, keyed by everything that can change
them. Where the version comes from is read from the configuration, without a subprocess,
and says how a build sets another version: the backend's own override variables for
versions from git, the file that holds it otherwise.
"""

from __future__ import annotations

import configparser
import contextlib
import email.parser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from releasekit._git import Repository
from releasekit._process import find_uv, run
from releasekit._project import Project, VersionFile, VersionSource, parse_version
from releasekit._report import get_reporter
from releasekit._settings import Settings
from releasekit.errors import BuildError, ConfigError, GitError

#: The backend of a project without ``[build-system]`` (PEP 517's fallback).
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
#: Environment variables that can change what a backend reports (part of the cache key).
_ENV_PREFIXES = ("RELEASEKIT_", "SETUPTOOLS_SCM_", "PDM_BUILD_SCM_", "VERSIONINGIT", "HATCH_")
_CACHE_SCHEMA = 1
_CONFIG_FILES = ("pyproject.toml", "setup.cfg", "setup.py")


def backend_identity(
    root: Path, data: Mapping[str, Any], settings: Settings
) -> tuple[str, str, VersionSource]:
    """The project's name and version as its build backend reports them, and their source."""
    name, version = read_metadata(root, data, settings)
    parse_version(version, f"version {version!r} that the build backend reports")
    return name, version, version_source(root, data, version, name)


def build_backend(data: Mapping[str, Any]) -> str:
    """The ``build-backend`` of ``[build-system]``, or PEP 517's setuptools fallback."""
    system = data.get("build-system", {})
    backend = system.get("build-backend") if isinstance(system, dict) else None
    return backend if isinstance(backend, str) else DEFAULT_BACKEND


def _table(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = data.get(key) if isinstance(data, Mapping) else None
        data = value if isinstance(value, dict) else {}
    return dict(data)


def _setup_cfg(root: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(configparser.Error, UnicodeDecodeError):
        parser.read(root / "setup.cfg", encoding="utf-8")  # else the backend says what is wrong
    return parser


def _module_file(root: Path, module: str, bases: Sequence[str]) -> Path | None:
    """The file of ``module`` (dotted) under the project's package directories."""
    parts = module.split(".")
    for base in (*bases, "", "src"):
        folder = root.joinpath(base, *parts)
        for path in (folder / "__init__.py", folder.with_suffix(".py")):
            if path.is_file():
                return path
    return None


def _file_source(
    root: Path, backend: str, detail: str, path: Path | None, version: str, variables: Sequence[str]
) -> VersionSource:
    """A ``file`` source when ``path`` assigns ``version`` to one of ``variables``."""
    if path is not None:
        relative = path.relative_to(root).as_posix()
        for variable in variables:
            candidate = VersionFile.parse(f"{relative}:{variable}", root)
            try:
                found = candidate.read()
            except ConfigError:
                continue
            if found == version:
                return VersionSource("file", backend, detail, file=candidate.spec)
    return VersionSource("backend", backend, f"{detail} (not found: computed by the backend)")


def version_source(
    root: Path, data: Mapping[str, Any], version: str, name: str = ""
) -> VersionSource:
    """Where the backend takes the version from, read from the configuration alone."""
    backend = build_backend(data)
    tool = _table(data, "tool")
    requires = " ".join(str(r) for r in _table(data, "build-system").get("requires", []))
    requires = requires.lower().replace("_", "-")
    setup_py = root / "setup.py"
    setup_py_text = (
        setup_py.read_text(encoding="utf-8", errors="replace") if setup_py.is_file() else ""
    )
    if isinstance(_table(tool, "poetry").get("version"), str) and "poetry" in backend:
        return VersionSource("poetry", backend, "[tool.poetry] version in pyproject.toml")
    hatch = _table(tool, "hatch", "version")
    if hatch.get("source") == "vcs":
        return VersionSource("git", backend, "git tags, via hatch-vcs", override="setuptools-scm")
    if backend.startswith("pdm.backend"):
        pdm = _table(tool, "pdm", "version")
        if pdm.get("source") == "scm":
            return VersionSource(
                "git", backend, "git tags, via pdm-backend", override="pdm-backend"
            )
        if pdm.get("source") == "file" and isinstance(pdm.get("path"), str):
            path = root / pdm["path"]
            return _file_source(root, backend, f"{pdm['path']}", path, version, ["__version__"])
    if "versioningit" in tool or "versioningit" in requires:
        return VersionSource("git", backend, "git tags, via versioningit")
    if (
        "setuptools_scm" in tool
        or "setuptools-scm" in requires
        or "use_scm_version" in setup_py_text
    ):
        return VersionSource(
            "git", backend, "git tags, via setuptools-scm", override="setuptools-scm"
        )
    if isinstance(hatch.get("path"), str):
        path = root / hatch["path"]
        return _file_source(root, backend, hatch["path"], path, version, ["__version__", "VERSION"])
    attr = _table(tool, "setuptools", "dynamic", "version").get("attr")
    package_dirs = [str(d) for d in [_table(tool, "setuptools", "package-dir").get("")] if d]
    setup_cfg = _setup_cfg(root)
    cfg_version = setup_cfg.get("metadata", "version", fallback="").strip()
    if not isinstance(attr, str) and cfg_version.startswith("attr:"):
        attr = cfg_version.removeprefix("attr:").strip()
        mapping = setup_cfg.get("options", "package_dir", fallback="")
        package_dirs += [
            d.split("=", 1)[1].strip() for d in mapping.split("\n") if d.strip().startswith("=")
        ]
    if isinstance(attr, str) and "." in attr:
        module, _, variable = attr.rpartition(".")
        path = _module_file(root, module, package_dirs)
        return _file_source(root, backend, f"attr: {attr}", path, version, [variable])
    if backend.startswith("flit_core"):
        module = _table(tool, "flit", "module").get("name") or re.sub(r"[-.]+", "_", name)
        path = _module_file(root, str(module), [])
        return _file_source(root, backend, f"{module}.__version__", path, version, ["__version__"])
    if setup_py_text:
        imported = re.search(r"\bversion\s*=\s*([A-Za-z_][\w.]*)\.__version__\b", setup_py_text)
        if imported:  # version=six.__version__, after `import six`
            module = imported.group(1)
            path = _module_file(root, module, [])
            source = _file_source(
                root, backend, f"setup.py version={module}.__version__", path, version,
                ["__version__"],
            )  # fmt: skip
            if source.kind == "file":
                return source
        return _file_source(root, backend, "setup.py version=", setup_py, version, ["version"])
    return VersionSource("backend", backend, f"computed by the build backend {backend}")


def version_override_env(project: Project) -> dict[str, str]:
    """Variables that make the build backend produce ``project.version`` (versions from git).

    setuptools-scm (and hatch-vcs, which uses it) reads ``SETUPTOOLS_SCM_PRETEND_VERSION``
    and ``..._FOR_<NAME>``; pdm-backend reads ``PDM_BUILD_SCM_VERSION``. Only the build's
    own process gets them.
    """
    override = project.version_source.override
    if override == "setuptools-scm":
        suffix = re.sub(r"[-_.]+", "_", project.name).upper()
        return {
            "SETUPTOOLS_SCM_PRETEND_VERSION": project.version,
            f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{suffix}": project.version,
        }
    if override == "pdm-backend":
        return {"PDM_BUILD_SCM_VERSION": project.version}
    return {}


def require_settable(project: Project, *, build: bool) -> None:
    """Refuse when releasekit cannot give ``project`` another version (``build``: for one
    build, through files or the backend's override; else for a release, where a version
    from git needs no change: the tag is the version)."""
    source = project.version_source
    if source.kind == "backend" or (build and source.kind == "git" and source.override is None):
        raise ConfigError(
            f"releasekit cannot set the version of {project.name}: it comes from {source.detail}"
            f" ({source.backend or 'build backend'}).",
            why="It sets a version only in files it can find (or, for a version from git, "
            "through setuptools-scm's or pdm-backend's override variables).",
            fix="Name the file that holds the version in [tool.releasekit] version-files "
            '("path:VARIABLE")' + (", or build at a release tag." if build else "."),
        )


# --- the metadata, through the backend, cached ----------------------------------------------


def read_metadata(root: Path, data: Mapping[str, Any], settings: Settings) -> tuple[str, str]:
    """``(name, version)`` from the backend's metadata; from the cache when nothing changed.

    ``data`` is the project's pyproject.toml (empty without one).
    """
    cache = _cache_file(root)
    if cache is not None:
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            return str(cached["name"]), str(cached["version"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    name, version = backend_metadata(root, data, settings)
    if cache is not None:
        _store(cache, {"name": name, "version": version})
    return name, version


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_file(root: Path) -> Path | None:
    """The cache entry for ``root`` in its current state, or None outside a git repository.

    The key: HEAD, the tags, ``git status`` and the content of every file it lists, the
    content of pyproject.toml, setup.cfg and setup.py, the environment variables that
    backends read, and the Python version. The entry lives in the git directory, which
    no commit can include.
    """
    try:
        repository = Repository(root)
        folder = Path(repository.run("rev-parse", "--git-path", "releasekit").strip())
        status = repository.status()
        tags = repository.run("for-each-ref", "--format=%(objectname) %(refname)", "refs/tags")
        try:
            head = repository.head()
        except GitError:
            head = "no commit yet"
    except GitError:
        return None
    changed = {}
    for line in status.splitlines():
        path = repository.root / line[3:].split(" -> ")[-1].strip('"')
        changed[line] = _digest(path.read_bytes()) if path.is_file() else ""
    key = {
        "schema": _CACHE_SCHEMA,
        "root": str(root),
        "head": head,
        "tags": _digest(tags.encode()),
        "status": changed,
        "config": {
            name: _digest((root / name).read_bytes()) if (root / name).is_file() else None
            for name in _CONFIG_FILES
        },
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)},
        "python": sys.version,
    }
    digest = _digest(json.dumps(key, sort_keys=True).encode())
    folder = folder if folder.is_absolute() else repository.root / folder
    return folder / f"metadata-{_digest(str(root).encode())[:16]}-{digest[:32]}.json"


def _store(cache: Path, entry: dict[str, str]) -> None:
    """Write ``cache``, replacing this project's older entries (a failure only costs time)."""
    prefix = cache.name.rsplit("-", 1)[0]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        for old in cache.parent.glob(f"{prefix}-*.json"):
            old.unlink(missing_ok=True)
        partial = cache.with_suffix(".tmp")
        partial.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(partial, cache)
    except OSError:
        pass


def build_leftovers(root: Path) -> set[Path]:
    """What backends write into the source tree while building (setuptools' ``*.egg-info``,
    pdm-backend's ``.pdm-build``): new ones are removed afterwards, so the tree is unchanged."""
    return {*root.glob("*.egg-info"), *root.glob("src/*.egg-info"), *root.glob(".pdm-build")}


def backend_metadata(root: Path, data: Mapping[str, Any], settings: Settings) -> tuple[str, str]:
    """Run the backend's metadata hook in an isolated environment; ``(Name, Version)``.

    The environment is made with uv when available, else pip. Backend output is captured
    and shown only on failure; the source tree is left as it was (no new ``*.egg-info``).
    """
    from build import BuildBackendException, BuildException, ProjectBuilder
    from build.env import DefaultIsolatedEnv

    from releasekit.credentials import scrubbed_environ  # imports httpx: not for a cached read

    reporter = get_reporter()
    probe = Project(root=root, name="", version="0", settings=settings)
    environ = scrubbed_environ(probe)
    output: list[str] = []

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        result = run(
            list(cmd),
            cwd=Path(cwd or root),
            env={**environ, **(extra_environ or {})},
            merge_output=True,
        )
        output.append(result.stdout)
        if result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, cmd, result.stdout)

    def install(env: DefaultIsolatedEnv, requirements: Collection[str]) -> None:
        """Install build requirements into ``env`` through releasekit's own runner, so the
        installer, like every child, gets no credential (pypa/build's would pass them on)."""
        if not requirements:
            return
        uv = find_uv()
        command = (
            [uv, "pip", "install", "--python", env.python_executable, *sorted(requirements)]
            if uv
            else [
                sys.executable, "-m", "pip", "--python", env.python_executable,
                "install", *sorted(requirements),
            ]
        )  # fmt: skip
        runner(command)

    before = build_leftovers(root)
    backend = build_backend(data)
    source = version_source(root, data, "")
    try:
        with (
            reporter.status(f"Reading the metadata of {root.name} from {backend}"),
            tempfile.TemporaryDirectory(prefix="releasekit-metadata-") as outdir,
            DefaultIsolatedEnv(installer="uv" if find_uv() else "pip") as env,
        ):
            builder = ProjectBuilder.from_isolated_env(env, root, runner=runner)
            install(env, builder.build_system_requires)
            install(env, builder.get_requires_for_build("wheel"))
            metadata = Path(builder.metadata_path(outdir)) / "METADATA"
            fields = email.parser.BytesParser().parsebytes(metadata.read_bytes(), headersonly=True)
    except subprocess.CalledProcessError as exc:  # installing the build requirements
        reporter.output("installer output:", str(exc.output or ""))
        raise BuildError(
            f"Could not install the build requirements of {root.name} ({backend}).",
            why="The installer reported the error shown above (a requirement that does not "
            "exist, or no access to the package index).",
            fix="Correct [build-system] requires, or check the connection to the index.",
        ) from None
    except (BuildBackendException, BuildException, OSError) as exc:
        if output:
            reporter.output(f"{backend} output:", output[-1])
        raise BuildError(
            f"The build backend {backend} could not report the name and version of the "
            f"project at {root}: {exc}.",
            why="releasekit asks the backend, as a build does, when they are not static in "
            "[project]; the backend failed for the reason shown above."
            + (
                f" Its version comes from {source.detail}: that needs a git repository, with "
                "tags that tool can read."
                if source.kind == "git"
                else ""
            ),
            fix="Fix the error the backend names (`python -m build --wheel` reproduces it), "
            "or give a static name and version under [project].",
        ) from None
    finally:
        for leftover in build_leftovers(root) - before:
            shutil.rmtree(leftover, ignore_errors=True)
    name, version = fields.get("Name"), fields.get("Version")
    if not name or not version:
        raise BuildError(
            f"The metadata {backend} reports for {root} has no Name or Version.",
            fix="Give the project a name and a version in its configuration.",
        )
    return str(name), str(version)
