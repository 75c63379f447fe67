"""The plan of a large monorepo (issue 14, goal 3): which of 200 packages changed since a ref,
with the packages requiring them, in dependency order, in under a second.

A generated repository of ``count`` packages (static ``pyproject.toml`` files, each requiring
two lower-numbered siblings and one outside package), committed and tagged ``base``; then one
commit changing files of three packages (and a root file, which changes none). Timed, median
of the rounds: the library call (:func:`releasekit._changes.changed_packages` on the loaded
projects, loading included) for that commit and for a branch's first push (every package),
and the ``changed -- --since base`` session end to end (a fresh ``nox`` process, start-up
included; with bytecode cached, as on any run after the first, and with none, as in a fresh CI
job), beside ``nox -l`` in the same repository (nox's own start-up and the noxfile's import,
the floor of any session). Nothing is built.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realworld import NOXFILE, git

from releasekit._changes import NO_COMMIT, changed_packages
from releasekit._project import load_projects

PLAN_PACKAGES = 200
PLAN_TARGET_SECONDS = 1.0
#: The packages whose files the measured commit changes.
CHANGED = (7, 150, 199)


def requires(number: int) -> list[int]:
    """The siblings package ``number`` requires: two lower-numbered ones (a graph ~8 deep)."""
    return sorted({(number - 1) // 2, number // 3} - {number}) if number else []


def write_plan_repo(root: Path, count: int = PLAN_PACKAGES) -> Path:
    """A git repository of ``count`` packages under packages/, tagged ``base``, then one
    commit changing three packages and the root README."""
    listing = ",\n".join(f'    "packages/p{n:03d}"' for n in range(count))
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.releasekit]\npackages = [\n{listing},\n]\n")
    (root / "noxfile.py").write_text(NOXFILE)
    (root / "README.md").write_text("# A large monorepo\n")
    for number in range(count):
        package = root / "packages" / f"p{number:03d}"
        module = package / "src" / f"bench_p{number:03d}"
        module.mkdir(parents=True)
        deps = [f'"bench-p{d:03d}>=1.0"' for d in requires(number)] + ['"packaging>=24"']
        (package / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["hatchling"]\n'
            'build-backend = "hatchling.build"\n\n'
            "[project]\n"
            f'name = "bench-p{number:03d}"\n'
            'version = "1.0.0"\n'
            f"dependencies = [{', '.join(deps)}]\n"
        )
        (module / "__init__.py").write_text(f'"""Package {number}."""\n\nVALUE = {number}\n')
        (package / "README.md").write_text(f"# bench-p{number:03d}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: every package")
    git(root, "tag", "base")
    for number in CHANGED:
        module = root / "packages" / f"p{number:03d}" / "src" / f"bench_p{number:03d}"
        (module / "__init__.py").write_text(f'"""Package {number}."""\n\nVALUE = -{number}\n')
    (root / "README.md").write_text("# A large monorepo, changed\n")
    git(root, "commit", "-q", "-am", "fix: three packages")
    return root


def _median(action: Callable[[], object], rounds: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def bench_plan(work: Path, rounds: int, count: int = PLAN_PACKAGES) -> dict[str, Any]:
    """Time the plan of a ``count``-package repository; medians of ``rounds``."""
    root = write_plan_repo(work / f"plan-{count}", count)
    library, plan = _median(lambda: changed_packages(load_projects(root), "base"), rounds)
    everything, full = _median(lambda: changed_packages(load_projects(root), NO_COMMIT), rounds)
    cold = {**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}
    cold.pop("GITHUB_OUTPUT", None)
    # Warm: bytecode cached (in a private prefix), as on any run after the first.
    warm = {**cold, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    del warm["PYTHONDONTWRITEBYTECODE"]
    command = [sys.executable, "-m", "nox", "-s", "changed", "--", "--since", "base"]
    listing = [sys.executable, "-m", "nox", "-l"]

    def run(args: list[str], env: dict[str, str]) -> str:
        result = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"{args} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    cold_session, _ = _median(lambda: run(command, cold), rounds)
    run(command, warm)
    warm_session, _ = _median(lambda: run(command, warm), rounds)
    warm_list, _ = _median(lambda: run(listing, warm), rounds)
    planned = plan if isinstance(plan, list) else []
    return {
        "packages": count,
        "rounds": rounds,
        "changed_files": len(CHANGED),
        "planned": len(planned),
        "layers": 1 + max((p.layer for p in planned), default=-1),
        "every_layers": 1 + max((p.layer for p in full), default=-1)
        if isinstance(full, list)
        else 0,
        "library_seconds": round(library, 4),
        "every_package_seconds": round(everything, 4),
        "session_cold_seconds": round(cold_session, 4),
        "session_seconds": round(warm_session, 4),
        "nox_list_seconds": round(warm_list, 4),
        "target_seconds": PLAN_TARGET_SECONDS,
    }


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan's section of bench.md."""
    return [
        "",
        f"## the plan of a {plan['packages']}-package monorepo"
        f" (medians of {plan['rounds']} rounds)",
        "",
        f"Which packages changed since a ref, with the packages requiring them, in dependency"
        f" order (`changed -- --since REF`): static pyproject.toml files, each package requiring"
        f" two siblings; one commit changing {plan['changed_files']} packages (planned:"
        f" {plan['planned']} packages in {plan['layers']} layers). Nothing is built.",
        "",
        "| plan | seconds | target |",
        "|---|---|---|",
        f"| library call (projects loaded, one `git diff`, order) | {plan['library_seconds']:.3f}"
        f" | < {plan['target_seconds']:.0f} s |",
        f"| every package (a branch's first push; {plan['every_layers']} layers)"
        f" | {plan['every_package_seconds']:.3f} | < {plan['target_seconds']:.0f} s |",
        f"| `nox -s changed -- --since base`, a fresh process end to end"
        f" | {plan['session_seconds']:.3f} | |",
        f"| the same with no bytecode cache (every module compiled, as in a fresh CI job)"
        f" | {plan['session_cold_seconds']:.3f} | |",
        f"| `nox -l` in that repository (start-up alone, the floor of any session)"
        f" | {plan['nox_list_seconds']:.3f} | |",
    ]
