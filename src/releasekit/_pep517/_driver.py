"""Build an sdist from a source tree, or a wheel from an sdist, by calling the backend's
PEP 517 hooks in this interpreter (a shared build environment's python). Standard library
only: it runs in an environment that holds nothing but the build requirements.

One build: ``python _driver.py KINDS SOURCE OUTDIR BACKEND BACKEND_PATHS_JSON check|trust``;
KINDS is ``sdist`` (SOURCE is the tree), ``wheel`` (SOURCE is an sdist, unpacked first into
a temporary directory, removed after) or ``sdist+wheel`` (both in this one process, the
wheel from the sdist). Before each build it asks the backend for its dynamic requirements
(``get_requires_for_build_*``); with ``check``, when they are not all installed here (or
cannot be checked), it stops and exits 3. Its last line starting with ``MARK`` is JSON:
``requires`` (the last asked for), and the file name built of each kind.

Many builds: ``python _driver.py serve BACKEND`` imports the backend once (at the first
build) and reads one JSON request a line on stdin: ``kinds``, ``source``, ``outdir``,
``check`` (a bool), ``env`` (the whole environment of that build) and ``output`` (a file
the build's output is appended to). For each it sets ``os.environ`` to ``env``, points
file descriptors 1 and 2 at ``output`` (so that nothing the backend or its child processes
write reaches the channel; descriptor 0 reads nothing), builds as one build would, puts
``sys.path`` back and unloads the modules imported from outside the environment (a build
hook's own), then answers one JSON line ``{"returncode": ..., "report": ...}`` on the
channel (the original stdout). End of stdin ends it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import traceback
from typing import Any

MARK = "@releasekit-hooks-result:"
NOT_INSTALLED = 3
#: Where a build server waits between builds: never a folder that is to be removed.
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


def build(
    kinds: str,
    source: str,
    outdir: str,
    check: bool,
    backend: str,
    paths: list[str],
    loaded: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Build ``kinds`` from ``source`` into ``outdir``; the exit status and the report
    (``requires``, the file name built of each kind). The backend is imported into
    ``loaded`` unless it is there already."""
    outdir = os.path.abspath(outdir)
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
            if backend not in loaded:
                try:
                    loaded[backend] = _hooks(backend, root, paths)
                except (ImportError, AttributeError) as exc:
                    print(f"The build backend {backend!r} cannot be loaded: {exc}", flush=True)
                    return 1, report
            hooks = loaded[backend]
            get_requires = getattr(hooks, f"get_requires_for_build_{kind}", None)
            requires = [str(line) for line in get_requires({})] if get_requires else []
            report["requires"] = requires
            if check and not _satisfied(requires):
                return NOT_INSTALLED, report
            report[kind] = getattr(hooks, f"build_{kind}")(outdir, {})
        return 0, report
    finally:
        if unpacked:
            os.chdir(HOME)  # a folder in use cannot be removed on Windows
            shutil.rmtree(unpacked, ignore_errors=True)


def main(argv: list[str]) -> int:
    """One build (the arguments of the usage above); prints its report."""
    kinds, source, outdir, backend, paths, check = argv
    code, report = build(kinds, source, outdir, check == "check", backend, json.loads(paths), {})
    print(MARK + json.dumps(report), flush=True)
    return code


def _serve_one(
    request: dict[str, Any], backend: str, loaded: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """One request of :func:`serve`, with descriptors 1 and 2 already on its output file."""
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # found again from this build's TMPDIR
    path, modules = list(sys.path), set(sys.modules)
    try:
        return build(
            request["kinds"],
            request["source"],
            request["outdir"],
            request["check"],
            backend,
            [],
            loaded,
        )
    except SystemExit as exc:  # what a one-shot build would say and exit with
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0, {}
        print(exc.code, file=sys.stderr)
        return 1, {}
    except Exception:  # as a one-shot build would show it
        traceback.print_exc()
        return 1, {}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(HOME)
        sys.path[:] = path
        _forget(set(sys.modules) - modules)


def _forget(names: set[str]) -> None:
    """Unload the modules of ``names`` that are not this environment's (the project's own:
    a build hook's helpers), so that the next project imports its own."""
    installed = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix})
    for name in names:
        where = getattr(sys.modules[name], "__file__", None)
        if where and not os.path.realpath(where).startswith(installed):
            del sys.modules[name]


def serve(backend: str) -> int:
    """Build every request read from stdin, answering each on stdout (see above)."""
    # The protocol keeps descriptors of its own, which the backend's child processes do not
    # inherit; outside a build, descriptors 0, 1 and 2 read nothing and write nowhere.
    requests = os.fdopen(os.dup(0), "rb")
    channel = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    os.chdir(HOME)
    loaded: dict[str, Any] = {}
    for line in requests:
        request = json.loads(line)
        output = os.open(request["output"], os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        try:
            code, report = _serve_one(request, backend, loaded)
        finally:
            os.dup2(null, 1)
            os.dup2(null, 2)
        channel.write(json.dumps({"returncode": code, "report": report}).encode() + b"\n")
        channel.flush()
    return 0


if __name__ == "__main__":
    del sys.path[0]  # this script's directory: the backend sees only the environment
    if sys.argv[1:2] == ["serve"]:
        sys.exit(serve(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
