"""Build an sdist from a source tree, or a wheel from an sdist, by calling the backend's
PEP 517 hooks in this interpreter (a shared build environment's python). Standard library
only: it runs in an environment that holds nothing but the build requirements.

Usage: ``python _driver.py KINDS SOURCE OUTDIR BACKEND BACKEND_PATHS_JSON check|trust``;
KINDS is ``sdist`` (SOURCE is the tree), ``wheel`` (SOURCE is an sdist, unpacked first into
a temporary directory, removed after) or ``sdist+wheel`` (both in this one process, the
wheel from the sdist). Before each build it asks the backend for its dynamic requirements
(``get_requires_for_build_*``); with ``check``, when they are not all installed here (or
cannot be checked), it stops and exits 3. Its last line starting with ``MARK`` is JSON:
``requires`` (the last asked for), and the file name built of each kind.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from typing import Any

MARK = "@releasekit-hooks-result:"
NOT_INSTALLED = 3
#: Where the driver goes before removing the sdist it unpacked: never a folder to remove.
HOME = os.path.dirname(os.path.abspath(__file__))


def _satisfied(requires: list[str]) -> bool:
    """Whether every requirement is installed here; False when it cannot be told."""
    if not requires:
        return True
    try:
        from importlib import metadata

        from packaging.requirements import Requirement
    except ImportError:
        return False
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement.extras or requirement.url:
            return False
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(version, prereleases=True):
            return False
    return True


def _unpack(sdist: str, target: str) -> str:
    """Unpack ``sdist`` into the folder ``target``; its top-level folder."""
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target, filter="data")
        else:  # Python without extraction filters: the sdist was built a moment ago
            archive.extractall(target)  # noqa: S202
    (top,) = os.listdir(target)
    return os.path.join(target, top)


def _hooks(backend: str, root: str, paths: list[str]) -> Any:
    """The backend object, imported with its ``backend-path`` (relative to ``root``) first."""
    for path in reversed(paths):
        sys.path.insert(0, os.path.join(root, path))
    module, _, attribute = backend.partition(":")
    hooks: Any = importlib.import_module(module)
    for name in filter(None, attribute.split(".")):
        hooks = getattr(hooks, name)
    return hooks


def main(argv: list[str]) -> int:
    kinds, source, outdir, backend, paths, check = argv
    outdir = os.path.abspath(outdir)
    hooks = None
    report: dict[str, Any] = {}
    unpacked = None
    try:
        for kind in kinds.split("+"):  # "sdist+wheel": the wheel from the sdist just built
            if kind == "wheel" and "sdist" in report:
                source = os.path.join(outdir, report["sdist"])
            if kind == "wheel":
                unpacked = tempfile.mkdtemp(prefix="releasekit-sdist-")
            root = _unpack(source, unpacked) if unpacked else source
            os.chdir(root)
            if hooks is None:
                try:
                    hooks = _hooks(backend, root, json.loads(paths))
                except (ImportError, AttributeError) as exc:
                    print(f"The build backend {backend!r} cannot be loaded: {exc}", flush=True)
                    return 1
            get_requires = getattr(hooks, f"get_requires_for_build_{kind}", None)
            requires = [str(line) for line in get_requires({})] if get_requires else []
            report["requires"] = requires
            if check == "check" and not _satisfied(requires):
                print(MARK + json.dumps(report), flush=True)
                return NOT_INSTALLED
            report[kind] = getattr(hooks, f"build_{kind}")(outdir, {})
    finally:
        if unpacked:
            os.chdir(HOME)  # a folder in use cannot be removed on Windows
            shutil.rmtree(unpacked, ignore_errors=True)
    print(MARK + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    del sys.path[0]  # this script's directory: the backend sees only the environment
    sys.exit(main(sys.argv[1:]))
