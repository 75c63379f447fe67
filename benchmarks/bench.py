"""releasekit against bare uv and the hand-run publishing process, side by side (``nox -s bench``).

In one run, against one throwaway local index standing in for TestPyPI, each pipeline in a
fresh process (its peak memory measured alone), several rounds each (every round a fresh
version, so every upload is real):

* releasekit: ``nox -s build check_dist upload_testpypi verify_testpypi``, one invocation;
  and the same four steps timed in-process through the library API (the per-phase figures);
* bare uv: ``uv build``, ``uv publish`` (the token in ``UV_PUBLISH_TOKEN``), ``uv venv`` +
  ``uv pip install --no-config`` from the index, the installed CLI's ``--version``; it
  checks nothing and never polls;
* hand-run: the publishing guide's ``python -m build``, ``twine check --strict``,
  ``twine upload``, ``python -m venv`` + ``pip install`` from the index (ambient pip
  configuration ignored), and the CLI's ``--version``.

For a small package (~20 modules) and a large one (~2,000), then monorepos of 1, 5, 20 and
50 small packages (releasekit and bare uv; the hand-run only up to ``--hand-max``), then
where releasekit's single-package time goes (start-up and imports, build isolation,
metadata reading, check, upload, poll, install), and how soon verify notices an upload.
Medians and ratios go to ``.bench/bench.json`` and ``.bench/bench.md``, and a plot of time
against package count to ``.bench/bench.svg`` (when matplotlib is installed, as in the
bench session). ``--quick`` is a fast check of the bench itself (one round, small only,
monorepos of 1 and 5). Run ``python benchmarks/bench.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_plan import PLAN_TARGET_SECONDS, bench_plan, plan_lines
from bench_report import markdown, plot
from rich.console import Console

from releasekit._build import build
from releasekit._build import build_command as releasekit_build_command
from releasekit._check import check
from releasekit._distributions import find_distributions
from releasekit._installers import installer_environ
from releasekit._process import find_uv
from releasekit._project import Project
from releasekit._report import Reporter, set_reporter
from releasekit._upload import upload
from releasekit._verify import verify
from releasekit.credentials import mint_token, token_credentials
from releasekit.indexes.local import LocalIndex

SIZES = {"small": 20, "large": 2000}
MONOREPO_SIZES = (1, 5, 20, 50)
TOOLS = ("releasekit", "uv", "hand")
OURS = ("build", "check", "upload", "verify")
NOXFILE = "import releasekit.nox\n\nreleasekit.nox.register_sessions()\n"
TOKEN_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD")
STEPS = Path(__file__).with_name("steps.py")


# --- sample projects ------------------------------------------------------------------------


def write_sample(root: Path, name: str, version: str, modules: int) -> Path:
    """A src-layout hatchling project with ``modules`` modules and a console script."""
    module = name.replace("-", "_")
    package = root / "src" / module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            f'''\
            """{name}: a sample package."""

            import sys

            __version__ = "{version}"


            def main() -> None:
                """Print the version for --version."""
                if "--version" in sys.argv[1:]:
                    print(__version__)
            '''
        )
    )
    per_dir = 100
    for number in range(modules - 1):
        sub = package / f"part{number // per_dir:02d}"
        if not sub.is_dir():
            sub.mkdir()
            (sub / "__init__.py").write_text('"""A part of the sample."""\n')
        (sub / f"mod{number:04d}.py").write_text(
            f'"""Module {number}."""\n\n\ndef value() -> int:\n    return {number}\n'
        )
    (root / "README.md").write_text(f"# {name}\n\nA sample package for the benchmark.\n")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "{name}"
            version = "{version}"
            description = "A sample package for the benchmark."
            readme = "README.md"
            requires-python = ">=3.10"

            [project.scripts]
            {name} = "{module}:main"

            [tool.hatch.build.targets.wheel]
            packages = ["src/{module}"]

            [tool.releasekit]
            version-files = ["src/{module}/__init__.py:__version__"]
            """
        )
    )
    (root / "noxfile.py").write_text(NOXFILE)
    return root


def set_version(root: Path, version: str) -> None:
    """Give the sample at ``root`` a new version (pyproject.toml and its version file)."""
    for path in (root / "pyproject.toml", *root.glob("src/*/__init__.py")):
        text = path.read_text()
        start = text.index('version = "') if path.name == "pyproject.toml" else None
        if start is None:
            start = text.index('__version__ = "')
        start = text.index('"', start) + 1
        end = text.index('"', start)
        path.write_text(text[:start] + version + text[end:])


def write_monorepo(root: Path, count: int, version: str, tool: str) -> Path:
    """A monorepo of ``count`` small packages listed in ``[tool.releasekit] packages``
    (named after ``tool``, so that each tool uploads its own)."""
    dirs = [f"packages/mono{count}-{tool}-p{number:02d}" for number in range(count)]
    for rel in dirs:
        write_sample(root / rel, Path(rel).name, version, SIZES["small"])
    listing = ", ".join(f'"{rel}"' for rel in dirs)
    (root / "pyproject.toml").write_text(f"[tool.releasekit]\npackages = [{listing}]\n")
    (root / "noxfile.py").write_text(NOXFILE)
    return root


# --- timing ---------------------------------------------------------------------------------


@dataclass
class Rounds:
    """Seconds per phase, one list entry per round."""

    phases: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.phases.setdefault(phase, []).append(seconds)

    def median(self, phase: str) -> float:
        return statistics.median(self.phases[phase])

    def medians(self) -> dict[str, float]:
        return {phase: self.median(phase) for phase in self.phases}


@contextmanager
def timed(rounds: Rounds, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    rounds.add(phase, time.perf_counter() - started)


PIPELINE = ("build", "check_dist", "upload_testpypi", "verify_testpypi")


@dataclass(frozen=True)
class Package:
    """One sample package of a pipeline run: its tree, name and the version of this round."""

    root: Path
    name: str
    version: str


def base_environ() -> dict[str, str]:
    """This environment without any token, in CI mode, with no keyring."""
    env = {key: value for key, value in os.environ.items() if key not in TOKEN_VARS}
    env.update(
        CI="true", NOX_SCRIPT_MODE="none", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
    )
    return env


def bare_environ() -> dict[str, str]:
    """This environment without any token, for the bare tools."""
    return {key: value for key, value in os.environ.items() if key not in TOKEN_VARS}


def step(phase: str, command: Sequence[str | Path], cwd: Path, env: dict[str, str]) -> Any:
    """One step of a pipeline for ``steps.py``; ``phase`` groups steps in the report."""
    return {"phase": phase, "command": [str(c) for c in command], "cwd": str(cwd), "env": env}


def run_pipeline(steps: list[Any], rounds: Rounds, label: str) -> list[str]:
    """Run ``steps`` in a fresh process; add the total, each phase and the peak memory (MiB,
    as ``<label> peak``) to ``rounds``; return the outputs of the steps."""
    result = subprocess.run(
        [sys.executable, str(STEPS)],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    data: dict[str, Any] = (
        json.loads(lines[-1]) if lines else {"failed": "steps.py", "output": result.stderr}
    )
    if result.returncode != 0 or "failed" in data:
        raise SystemExit(f"bench: {label}: {data['failed']} failed:\n{data['output']}")
    rounds.add(label, sum(data["seconds"]))
    phases: dict[str, float] = {}
    for item, seconds in zip(steps, data["seconds"], strict=True):
        phases[item["phase"]] = phases.get(item["phase"], 0.0) + seconds
    for phase, seconds in phases.items():
        rounds.add(f"{label}: {phase}", seconds)
    if data["peak_kib"] is not None:
        rounds.add(f"{label} peak", data["peak_kib"] / 1024)
    return list(data["outputs"])


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def releasekit_steps(root: Path, index: LocalIndex, token: str) -> list[Any]:
    """releasekit's four sessions (on every package of a monorepo) as one nox invocation."""
    env = {**base_environ(), **index.environ(), "TEST_PYPI_API_TOKEN": token}
    return [step("total", [sys.executable, "-m", "nox", "-s", *PIPELINE], root, env)]


def uv_steps(packages: Sequence[Package], index: LocalIndex, token: str, work: Path) -> list[Any]:
    """The bare uv sequence, package after package, each installed in its own fresh venv."""
    uv = find_uv() or "uv"
    env = bare_environ()
    publish_env = {**env, "UV_PUBLISH_TOKEN": token}
    steps = []
    for package in packages:
        dist = package.root / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        venv = work / f"uv-venv-{package.name}"
        python = bin_dir(venv) / "python"
        steps += [
            step(
                "build",
                [uv, "build", "--quiet", "--python", sys.executable, "--out-dir", dist, "."],
                package.root,
                env,
            ),
            step(
                "upload",
                [
                    uv,
                    "publish",
                    "--no-config",
                    "--quiet",
                    "--publish-url",
                    index.upload_url,
                    dist / "*",
                ],
                package.root,
                publish_env,
            ),
            step(
                "install",
                [uv, "venv", "--no-config", "--quiet", "--python", sys.executable, venv],
                work,
                installer_environ(),
            ),
            step(
                "install",
                [
                    uv,
                    "pip",
                    "install",
                    "--no-config",
                    "--quiet",
                    "--python",
                    python,
                    "--index-url",
                    index.simple_url,
                    f"{package.name}=={package.version}",
                ],
                work,
                installer_environ(),
            ),
            step("cli", [bin_dir(venv) / package.name, "--version"], work, env),
        ]
    return steps


def hand_steps(packages: Sequence[Package], index: LocalIndex, token: str, work: Path) -> list[Any]:
    """The publishing guide's sequence as a person runs it (without its fixed sleep)."""
    env = bare_environ()
    upload_env = {**env, "TWINE_USERNAME": "__token__", "TWINE_PASSWORD": token}
    steps = []
    for package in packages:
        dist = package.root / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        venv = work / f"hand-venv-{package.name}"
        twine = [sys.executable, "-m", "twine"]
        steps += [
            step(
                "build", [sys.executable, "-m", "build", "--outdir", dist, "."], package.root, env
            ),
            step("check", [*twine, "check", "--strict", dist / "*"], package.root, env),
            step(
                "upload",
                [
                    *twine,
                    "upload",
                    "--non-interactive",
                    "--disable-progress-bar",
                    "--repository-url",
                    index.upload_url,
                    dist / "*",
                ],
                package.root,
                upload_env,
            ),
            step("install", [sys.executable, "-m", "venv", venv], work, env),
            step(
                "install",
                [
                    bin_dir(venv) / "python",
                    "-m",
                    "pip",
                    "install",
                    "--isolated",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--index-url",
                    index.simple_url,
                    f"{package.name}=={package.version}",
                ],
                work,
                installer_environ(),
            ),
            step("cli", [bin_dir(venv) / package.name, "--version"], work, env),
        ]
    return steps


def run_tool(
    tool: str,
    root: Path,
    packages: Sequence[Package],
    index: LocalIndex,
    token: str,
    rounds: Rounds,
    label: str,
) -> None:
    """One round of ``tool``'s pipeline over ``packages`` (under ``root``), timed as ``label``;
    the installed CLIs must print their versions."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
        work = Path(tmp)
        if tool == "releasekit":
            run_pipeline(releasekit_steps(root, index, token), rounds, label)
            return
        make = uv_steps if tool == "uv" else hand_steps
        steps = make(packages, index, token, work)
        outputs = run_pipeline(steps, rounds, label)
    said = [out.strip() for item, out in zip(steps, outputs, strict=True) if item["phase"] == "cli"]
    wanted = [package.version for package in packages]
    if said != wanted:
        raise SystemExit(f"bench: {tool}: the installed CLIs say {said}, not {wanted}")


def ours_in_process(root: Path, index: LocalIndex, token: str, rounds: Rounds) -> None:
    """The four steps through the library API, each timed, verify split into its phases;
    and the reading of the built files' metadata (what check and upload each pay)."""
    from twine.package import PackageFile

    project = Project.load(root)
    credentials = token_credentials(token, index.index, "the bench token", project.name)
    with timed(rounds, "build"):
        build(project)
    with timed(rounds, "metadata reading"):
        for dist in find_distributions(project.dist_dir, project.name):
            PackageFile.from_filename(str(dist.path), comment=None).metadata_dictionary()
    with timed(rounds, "check"):
        check(project)
    with timed(rounds, "upload"):
        upload(project, index.index, credentials)
    with timed(rounds, "verify"):
        report = verify(project, index.index, timeout=60)
    rounds.add("verify: poll", report.visible_after)
    rounds.add("verify: install", report.install_seconds)
    rounds.add("verify: smoke", report.smoke_seconds)


# --- how soon verify notices an upload ------------------------------------------------------


class _Clock(Reporter):
    """A silent reporter that notes when verify starts waiting and when it sees the files."""

    def __init__(self) -> None:
        super().__init__(Console(file=io.StringIO()), plain=True)
        self.waiting = threading.Event()
        self.noticed: float | None = None

    def _line(self, text: str, style: str = "") -> None:
        if text.startswith("Waiting up to"):
            self.waiting.set()
        elif " listed on " in text and self.noticed is None:
            self.noticed = time.perf_counter()


def notice_latency(
    root: Path, index: LocalIndex, token: str, delays: Sequence[float]
) -> list[float]:
    """Seconds from upload completed to verify noticing, uploading ``delay`` s after verify
    first found the files missing (so the upload lands at varied points of its polling)."""
    latencies = []
    for number, delay in enumerate(delays):
        set_version(root, f"3.0.{number}")
        project = Project.load(root)
        credentials = token_credentials(token, index.index, "the bench token", project.name)
        clock = _Clock()
        set_reporter(clock)
        build(project)
        failure: list[BaseException] = []

        def verify_now(project: Project = project, failure: list[BaseException] = failure) -> None:
            try:
                verify(project, index.index, timeout=60)
            except BaseException as exc:  # shown after the thread ends
                failure.append(exc)

        thread = threading.Thread(target=verify_now)
        thread.start()
        if not clock.waiting.wait(timeout=60):
            raise SystemExit("bench: verify never started waiting")
        threading.Event().wait(delay)  # place the upload at a chosen point of the polling
        upload(project, index.index, credentials)
        uploaded = time.perf_counter()
        thread.join()
        set_reporter(None)
        if failure or clock.noticed is None:
            raise SystemExit(f"bench: verify failed: {failure}")
        latencies.append(clock.noticed - uploaded)
    return latencies


# --- the run --------------------------------------------------------------------------------


def ratio(ours: float, other: float) -> float:
    return round(ours / other, 3) if other else float("nan")


def peaks(rounds: Rounds, label: str) -> float | None:
    """The median peak memory (MiB) of ``label``'s rounds, or None where it is not measured."""
    key = f"{label} peak"
    return round(rounds.median(key), 1) if key in rounds.phases else None


def bench_size(size: str, tmp: Path, index: LocalIndex, token: str, rounds: int) -> dict[str, Any]:
    """The three pipelines and releasekit in-process on one package, ``rounds`` times."""
    modules = SIZES[size]
    roots = {
        tool: write_sample(tmp / f"{size}-{tool}", f"bench-{size}-{tool}", "1.0.0", modules)
        for tool in (*TOOLS, "in-process")
    }
    timings, phases = Rounds(), Rounds()
    set_reporter(Reporter(Console(file=io.StringIO()), plain=True))
    for number in range(rounds):
        progress(f"{size}: round {number + 1} of {rounds}")
        version = f"1.0.{number}"
        for tool in TOOLS:
            set_version(roots[tool], version)
            package = Package(roots[tool], f"bench-{size}-{tool}", version)
            run_tool(tool, roots[tool], [package], index, token, timings, tool)
        set_version(roots["in-process"], version)
        ours_in_process(roots["in-process"], index, token, phases)
    set_reporter(None)
    totals = {tool: round(timings.median(tool), 3) for tool in TOOLS}
    Names = str | tuple[str, ...] | None
    pairs: dict[str, tuple[str, Names, Names]] = {
        "build": ("build", "build", "build"),
        "check": ("check", None, "check"),
        "upload": ("upload", "upload", "upload"),
        "verify / install + cli": ("verify", ("install", "cli"), ("install", "cli")),
    }

    def phase_of(tool: str, names: str | tuple[str, ...] | None) -> float | None:
        if names is None:
            return None
        names = (names,) if isinstance(names, str) else names
        return round(sum(timings.median(f"{tool}: {name}") for name in names), 3)

    return {
        "modules": modules,
        "rounds": rounds,
        "seconds": totals,
        "rounds_seconds": {tool: [round(x, 3) for x in timings.phases[tool]] for tool in TOOLS},
        "ratio_to_uv": ratio(totals["releasekit"], totals["uv"]),
        "ratio_to_hand": ratio(totals["releasekit"], totals["hand"]),
        "peak_mib": {tool: peaks(timings, tool) for tool in TOOLS},
        "phases": {
            label: {
                "releasekit": round(phases.median(ours), 3),
                "uv": phase_of("uv", uv),
                "hand": phase_of("hand", hand),
            }
            for label, (ours, uv, hand) in pairs.items()
        },
        "in_process": {phase: round(value, 3) for phase, value in phases.medians().items()},
    }


def monorepo_rounds(
    tmp: Path, token: str, rounds: int, count: int, limits: dict[str, int], timings: Rounds
) -> None:
    """``rounds`` rounds of each pipeline over a monorepo of ``count`` small packages (a
    tool in ``limits`` only up to that many packages), each round against a fresh local
    index: pypiserver lists and stats every file it holds on every request, so an index
    filled by the earlier rounds (up to 500 files for 50 packages) would slow the later
    ones down, and most the pipeline that reads the index most (verify's reads)."""
    tools = [tool for tool in TOOLS if count <= limits.get(tool, count)]
    roots = {
        tool: write_monorepo(tmp / f"mono{count}-{tool}", count, "1.0.0", tool) for tool in tools
    }
    for number in range(rounds):
        progress(f"monorepo of {count}: round {number + 1} of {rounds}")
        version = f"1.0.{number}"
        with LocalIndex("testpypi", token) as index:
            for tool, root in roots.items():
                packages = [
                    Package(path, path.name, version)
                    for path in sorted((root / "packages").iterdir())
                ]
                for package in packages:
                    set_version(package.root, version)
                run_tool(tool, root, packages, index, token, timings, f"{tool} {count}")


def bench_monorepo(
    tmp: Path, token: str, rounds: int, counts: Sequence[int], limits: dict[str, int]
) -> dict[str, Any]:
    """The pipelines over monorepos of ``counts`` small packages (a tool in ``limits`` only up
    to that many packages), each round against a fresh local index."""
    timings = Rounds()
    for count in counts:
        monorepo_rounds(tmp, token, rounds, count, limits, timings)
    seconds: dict[str, dict[str, float]] = {tool: {} for tool in TOOLS}
    times_one: dict[str, dict[str, float]] = {tool: {} for tool in TOOLS}
    peak: dict[str, dict[str, float | None]] = {tool: {} for tool in TOOLS}
    for tool in TOOLS:
        for count in counts:
            if f"{tool} {count}" not in timings.phases:
                continue
            seconds[tool][str(count)] = round(timings.median(f"{tool} {count}"), 3)
            times_one[tool][str(count)] = ratio(
                timings.median(f"{tool} {count}"), timings.median(f"{tool} {counts[0]}")
            )
            peak[tool][str(count)] = peaks(timings, f"{tool} {count}")
    return {
        "rounds": rounds,
        "counts": list(counts),
        "seconds": seconds,
        "times_one": times_one,
        "ratio_to_uv": {
            str(c): ratio(seconds["releasekit"][str(c)], seconds["uv"][str(c)])
            if str(c) in seconds["uv"]
            else None
            for c in counts
        },
        "peak_mib": peak,
    }


def median_seconds(
    command: Sequence[str | Path], cwd: Path, env: dict[str, str], times: int
) -> float:
    """The median wall time of ``command`` over ``times`` runs (it must succeed)."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        result = subprocess.run(
            [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        samples.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"bench: {command[:4]} failed:\n{result.stdout}{result.stderr}")
    return round(statistics.median(samples), 3)


def import_times(root: Path, index: LocalIndex, token: str) -> dict[str, Any]:
    """``-X importtime`` of one pipeline invocation: the total and the costliest top-level
    imports (seconds)."""
    env = {**base_environ(), **index.environ(), "TEST_PYPI_API_TOKEN": token}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nox", "-s", *PIPELINE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: the importtime run failed:\n{result.stdout}{result.stderr}")
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            parts = line[12:].split("|")
            if len(parts) == 3 and not parts[2].startswith("  "):  # top level only
                rows.append((int(parts[1]) / 1e6, parts[2].strip()))
    top = sorted(rows, reverse=True)[:12]
    return {
        "total": round(sum(seconds for seconds, _ in rows), 3),
        "top": {name: round(seconds, 3) for seconds, name in top},
    }


def breakdown(tmp: Path, index: LocalIndex, token: str, times: int) -> dict[str, Any]:
    """Where the fixed costs of releasekit's single-package pipeline go, beside the phases
    timed in-process: interpreter and nox start-up, imports, build isolation."""
    root = write_sample(tmp / "breakdown", "bench-breakdown", "5.0.0", SIZES["small"])
    env = bare_environ()
    out = tmp / "breakdown-out"
    progress("breakdown: start-up, imports, build isolation")
    isolated = releasekit_build_command(root, out)  # what `build` runs without uv's venvs
    shared: list[str | Path] = [
        sys.executable, "-c",
        "import sys; from pathlib import Path; from releasekit._build import build; "
        "from releasekit._project import Project; build(Project.load(Path(sys.argv[1])))",
        root,
    ]  # fmt: skip
    figures = {
        "interpreter (python -c pass)": median_seconds(
            [sys.executable, "-I", "-c", "pass"], root, env, times
        ),
        "nox start-up (nox -l: nox, the noxfile, releasekit.nox)": median_seconds(
            [sys.executable, "-m", "nox", "-l"], root, {**env, "NOX_SCRIPT_MODE": "none"}, times
        ),
        "uv build (isolated: an environment made per build)": median_seconds(
            isolated, root, env, times
        ),
        "releasekit build (shared build environment; a python start-up included)": (
            median_seconds(shared, root, env, times)
        ),
    }
    figures["build isolation saved (the difference)"] = round(
        figures["uv build (isolated: an environment made per build)"]
        - figures["releasekit build (shared build environment; a python start-up included)"],
        3,
    )
    return {"fixed": figures, "imports": import_times(root, index, token)}


def profile(tmp: Path, index: LocalIndex, token: str, out: Path) -> dict[str, str]:
    """cProfile of the in-process steps, one round per size."""
    written = {}
    set_reporter(Reporter(Console(file=io.StringIO()), plain=True))
    for size, modules in SIZES.items():
        root = write_sample(tmp / f"profile-{size}", f"bench-profile-{size}", "4.0.0", modules)
        profiler = cProfile.Profile()
        profiler.runcall(ours_in_process, root, index, token, Rounds())
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        path = out / f"profile-{size}.txt"
        path.write_text(text.getvalue())
        written[f"cProfile {size}"] = str(path)
    set_reporter(None)
    return written


def targets(
    small: dict[str, Any],
    monorepo: dict[str, Any],
    notice: dict[str, Any],
    plan: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Each goal of issue 14 with its measured figure, the ratio, the limit and the verdict."""
    seconds = small["seconds"]
    rows = [
        {
            "goal": "single package <= 1.0 x bare uv",
            "figure": f"{seconds['releasekit']:.2f} s vs {seconds['uv']:.2f} s",
            "ratio": small["ratio_to_uv"],
            "limit": 1.0,
        }
    ]
    mono = monorepo["seconds"]["releasekit"]
    times_one = monorepo["times_one"]["releasekit"]
    for count, limit in (("20", 4.0), ("50", 9.0)):
        if count in times_one:
            rows.append(
                {
                    "goal": f"{count} packages <= {limit:g} x one",
                    "figure": f"{mono[count]:.2f} s vs {mono['1']:.2f} s"
                    if "1" in mono
                    else f"{mono[count]:.2f} s",
                    "ratio": times_one[count],
                    "limit": limit,
                }
            )
    rows.append(
        {
            "goal": "verify notices an upload within 0.5 s",
            "figure": f"max {notice['max']:.3f} s",
            "ratio": round(notice["max"] / 0.5, 3),
            "limit": 1.0,
        }
    )
    if plan is not None:
        rows.append(
            {
                "goal": f"plan of 200 packages < {PLAN_TARGET_SECONDS:g} s",
                "figure": f"{plan['library_seconds']:.2f} s",
                "ratio": round(plan["library_seconds"] / PLAN_TARGET_SECONDS, 3),
                "limit": 1.0,
            }
        )
    for row in rows:
        row["met"] = row["ratio"] <= row["limit"]
    return rows


def compile_bytecode() -> None:
    """Compile the bytecode of this environment and of releasekit's source once, as ``pip
    install`` does: with ``PYTHONDONTWRITEBYTECODE`` set (some CI images, this sandbox)
    every pipeline's Python process would otherwise compile its imports again each run."""
    import releasekit

    paths = {sysconfig.get_paths()["purelib"], str(Path(releasekit.__file__).parent)}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *sorted(paths)],
        capture_output=True,
        check=False,
    )


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def plan_only(out: Path, rounds: int) -> int:
    """Only the plan measurement (``--plan-only``): printed and written to ``out/plan.md``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="releasekit-bench-") as tmp:
        plan = bench_plan(Path(tmp), rounds)
    text = "\n".join(["# releasekit bench: the plan", *plan_lines(plan)]) + "\n"
    (out / "plan.md").write_text(text)
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("--monorepo-rounds", type=int, default=5, help="default 5")
    parser.add_argument(
        "--hand-max", type=int, default=5, help="largest monorepo run by hand (default 5)"
    )
    parser.add_argument(
        "--uv-max", type=int, default=50, help="largest monorepo run with bare uv (default 50)"
    )
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="single-package sizes (default small,large)"
    )
    parser.add_argument("--out", type=Path, default=Path(".bench"), help="report directory")
    parser.add_argument("--profile", action="store_true", help="also write cProfile statistics")
    parser.add_argument(
        "--quick", action="store_true", help="one round, small only, monorepos of 1 and 5"
    )
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="only the plan of a 200-package monorepo (changed), reported in plan.md",
    )
    args = parser.parse_args(argv)
    if args.plan_only:
        return plan_only(args.out, 1 if args.quick else args.rounds)
    sizes_run = ("small",) if args.quick else tuple(args.sizes.split(","))
    counts = (1, 5) if args.quick else MONOREPO_SIZES
    if args.quick:
        args.rounds = args.monorepo_rounds = 1
    args.out.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    token = mint_token("testpypi")
    started = time.perf_counter()
    delays = (0.0, 0.15, 0.4) if args.quick else (0.0, 0.15, 0.4, 0.9, 1.7, 3.3)
    with (
        LocalIndex("testpypi", token) as index,
        tempfile.TemporaryDirectory(prefix="releasekit-bench-") as tmp,
    ):
        work = Path(tmp)
        # releasekit's shared build environments: made in the first round, reused after
        os.environ["RELEASEKIT_BUILD_ENVS"] = str(work / "build-envs")
        sizes = {size: bench_size(size, work, index, token, args.rounds) for size in sizes_run}
        limits = {"hand": args.hand_max, "uv": args.uv_max}
        monorepo = bench_monorepo(work, token, args.monorepo_rounds, counts, limits)
        where = breakdown(work, index, token, max(3, min(args.rounds, 5)))
        progress("verify noticing uploads")
        latency_root = write_sample(work / "notice", "bench-notice", "3.0.0", SIZES["small"])
        latencies = notice_latency(latency_root, index, token, delays)
        profiles = profile(work, index, token, args.out) if args.profile else {}
        progress("the plan of a 200-package monorepo")
        plan = bench_plan(work, args.rounds)
    report: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "rounds": args.rounds,
        "quick": args.quick,
        "sizes": sizes,
        "monorepo": monorepo,
        "breakdown": where,
        "notice": {
            "samples": [round(x, 3) for x in latencies],
            "delays": list(delays),
            "median": round(statistics.median(latencies), 3),
            "max": round(max(latencies), 3),
        },
        "profiles": profiles,
        "plan": plan,
    }
    report["targets"] = targets(sizes["small"], monorepo, report["notice"], plan)
    report["plot"] = plot(report, args.out / "bench.svg")
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "bench.md").write_text(text)
    print(text)
    print(f"bench: {report['bench_seconds']} s; reports in {args.out}/ (bench.json, bench.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
