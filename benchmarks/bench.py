"""releasekit against the hand-run publishing process, side by side (``nox -s bench``).

In one run, against one throwaway local index standing in for TestPyPI, for a small sample
package (~20 modules) and a large one (~2,000 modules), several rounds each (every round a
fresh version, so every upload is real):

* ours: ``nox -s build check_dist upload_testpypi verify_testpypi`` as ONE nox invocation
  (its total), and the same four steps timed in-process through the library API (the
  per-phase figures);
* hand-run: the publishing guide's ``python -m build``, ``twine check --strict``,
  ``twine upload``, ``python -m venv`` + ``pip install`` from the index (ambient pip
  configuration ignored), and the installed CLI's ``--version``.

Then: how soon verify notices a file after the upload completes, and a monorepo of 1, 5 and
20 small packages through the same four sessions. Medians are printed with the ratio
ours/hand-run, and written to ``.bench/bench.json`` and ``.bench/bench.md``.

Run ``python benchmarks/bench.py --help`` for the options (``--profile`` writes cProfile
statistics of the in-process steps and ``-X importtime`` of a nox invocation).
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
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from releasekit._build import build
from releasekit._check import check
from releasekit._project import Project
from releasekit._report import Reporter, set_reporter
from releasekit._upload import upload
from releasekit._venv import installer_environ
from releasekit._verify import verify
from releasekit.credentials import mint_token, token_credentials
from releasekit.indexes.local import LocalIndex

SIZES = {"small": 20, "large": 2000}
MONOREPO_SIZES = (1, 5, 20)
OURS = ("build", "check", "upload", "verify")
HAND = ("build", "check", "upload", "install", "cli")
NOXFILE = "import releasekit.nox\n\nreleasekit.nox.register_sessions()\n"
TOKEN_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD")


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


def write_monorepo(root: Path, count: int, version: str) -> Path:
    """A monorepo of ``count`` small packages listed in ``[tool.releasekit] packages``."""
    dirs = [f"packages/mono{count}-p{number:02d}" for number in range(count)]
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


def run(command: Sequence[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``command``; stop the benchmark with its output if it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:4])} ... failed:\n{result.stdout}")
    return result.stdout


PIPELINE = ("build", "check_dist", "upload_testpypi", "verify_testpypi")


def base_environ() -> dict[str, str]:
    """This environment without any token, in CI mode, with no keyring."""
    env = {key: value for key, value in os.environ.items() if key not in TOKEN_VARS}
    env.update(
        CI="true", NOX_SCRIPT_MODE="none", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
    )
    return env


def pipeline_nox(root: Path, index: LocalIndex, token: str, rounds: Rounds, label: str) -> str:
    """releasekit's four sessions (on every package of a monorepo) as one nox invocation."""
    env = {**base_environ(), **index.environ(), "TEST_PYPI_API_TOKEN": token}
    command = [sys.executable, "-m", "nox", "-s", *PIPELINE]
    with timed(rounds, label):
        return run(command, root, env)


def ours_in_process(root: Path, index: LocalIndex, token: str, rounds: Rounds) -> None:
    """The same four steps through the library API, each timed."""
    project = Project.load(root)
    credentials = token_credentials(token, index.index, "the bench token", project.name)
    with timed(rounds, "build"):
        build(project)
    with timed(rounds, "check"):
        check(project)
    with timed(rounds, "upload"):
        upload(project, index.index, credentials)
    with timed(rounds, "verify"):
        verify(project, index.index, timeout=60)


def hand_run(
    root: Path, name: str, version: str, index: LocalIndex, token: str, rounds: Rounds
) -> None:
    """The publishing guide's sequence, as a person runs it (without its fixed sleep)."""
    env = {key: value for key, value in os.environ.items() if key not in TOKEN_VARS}
    dist = root / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    with timed(rounds, "build"):
        run([sys.executable, "-m", "build", "--outdir", str(dist), "."], root, env)
    files = sorted(str(path) for path in dist.iterdir())
    with timed(rounds, "check"):
        run([sys.executable, "-m", "twine", "check", "--strict", *files], root, env)
    upload_env = {**env, "TWINE_USERNAME": "__token__", "TWINE_PASSWORD": token}
    with timed(rounds, "upload"):
        run(
            [
                sys.executable,
                "-m",
                "twine",
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                index.upload_url,
                *files,
            ],
            root,
            upload_env,
        )
    with tempfile.TemporaryDirectory(prefix="bench-hand-venv-") as tmp:
        venv = Path(tmp) / "venv"
        with timed(rounds, "install"):
            run([sys.executable, "-m", "venv", str(venv)], root, env)
            run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--isolated",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--index-url",
                    index.simple_url,
                    f"{name}=={version}",
                ],
                Path(tmp),
                installer_environ(),
            )
        with timed(rounds, "cli"):
            out = run([str(venv / "bin" / name), "--version"], Path(tmp), env)
    if out.strip() != version:
        raise SystemExit(f"bench: the installed {name} says {out.strip()!r}, not {version}")


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


def ratio(ours: float, hand: float) -> float:
    return round(ours / hand, 3) if hand else float("nan")


def bench_size(size: str, tmp: Path, index: LocalIndex, token: str, rounds: int) -> dict[str, Any]:
    """Ours (one nox invocation, and in-process phases) and hand-run, ``rounds`` times."""
    modules = SIZES[size]
    ours_root = write_sample(tmp / f"{size}-ours", f"bench-{size}-ours", "1.0.0", modules)
    hand_name = f"bench-{size}-hand"
    hand_root = write_sample(tmp / f"{size}-hand", hand_name, "2.0.0", modules)
    nox_rounds, phases, hand = Rounds(), Rounds(), Rounds()
    set_reporter(Reporter(Console(file=io.StringIO()), plain=True))
    for number in range(rounds):
        progress(f"{size}: round {number + 1} of {rounds}")
        set_version(ours_root, f"1.0.{number}")
        pipeline_nox(ours_root, index, token, nox_rounds, "total")
        set_version(ours_root, f"1.1.{number}")
        ours_in_process(ours_root, index, token, phases)
        set_version(hand_root, f"2.0.{number}")
        hand_run(hand_root, hand_name, f"2.0.{number}", index, token, hand)
    set_reporter(None)
    ours_total = nox_rounds.median("total")
    hand_phases = hand.medians()
    hand_total = statistics.median(
        sum(hand.phases[phase][n] for phase in HAND) for n in range(rounds)
    )
    ours_phases = phases.medians()
    pairs = {
        "build": ("build", ("build",)),
        "check": ("check", ("check",)),
        "upload": ("upload", ("upload",)),
        "verify / install + cli": ("verify", ("install", "cli")),
    }
    per_phase = {
        label: {
            "ours": round(ours_phases[mine], 3),
            "hand": round(sum(hand_phases[h] for h in theirs), 3),
            "ratio": ratio(ours_phases[mine], sum(hand_phases[h] for h in theirs)),
        }
        for label, (mine, theirs) in pairs.items()
    }
    return {
        "modules": modules,
        "rounds": rounds,
        "ours_nox_total": round(ours_total, 3),
        "ours_nox_rounds": [round(x, 3) for x in nox_rounds.phases["total"]],
        "ours_in_process_total": round(sum(ours_phases.values()), 3),
        "hand_total": round(hand_total, 3),
        "hand_phases": {k: round(v, 3) for k, v in hand_phases.items()},
        "total_ratio": ratio(ours_total, hand_total),
        "phases": per_phase,
    }


def bench_monorepo(tmp: Path, index: LocalIndex, token: str, rounds: int) -> dict[str, Any]:
    """The four sessions over monorepos of 1, 5 and 20 small packages."""
    timings = Rounds()
    for count in MONOREPO_SIZES:
        root = write_monorepo(tmp / f"mono{count}", count, "1.0.0")
        for number in range(rounds):
            progress(f"monorepo of {count}: round {number + 1} of {rounds}")
            for package in (root / "packages").iterdir():
                set_version(package, f"1.0.{number}")
            pipeline_nox(root, index, token, timings, f"{count} packages")
    medians = timings.medians()
    one = medians["1 packages"]
    return {
        "rounds": rounds,
        "seconds": {str(count): round(medians[f"{count} packages"], 3) for count in MONOREPO_SIZES},
        "times_one": {
            str(count): ratio(medians[f"{count} packages"], one) for count in MONOREPO_SIZES
        },
    }


def profile(tmp: Path, index: LocalIndex, token: str, out: Path) -> dict[str, str]:
    """cProfile of the in-process steps (one round per size) and -X importtime of nox."""
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
    root = tmp / "profile-small"
    set_version(root, "4.0.1")
    env = {**base_environ(), **index.environ(), "TEST_PYPI_API_TOKEN": token}
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "nox",
            "-s",
            "build",
            "check_dist",
            "upload_testpypi",
            "verify_testpypi",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            _, cumulative, name = (part.strip() for part in line[12:].split("|"))
            if not line.split("|")[2].startswith("  "):  # top-level imports only
                rows.append((int(cumulative), name))
    total = sum(c for c, _ in rows)
    lines = [f"{total / 1e6:.3f} s of imports in one nox invocation (top level):"]
    lines += [f"{c / 1e6:8.3f} s  {name}" for c, name in sorted(rows, reverse=True)[:25]]
    path = out / "importtime.txt"
    path.write_text("\n".join(lines) + "\n")
    written["importtime"] = str(path)
    return written


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        "# releasekit bench",
        "",
        f"{report['machine']}; medians of {report['rounds']} rounds; one local pypiserver.",
        "Ours (total) is one `nox -s build check_dist upload_testpypi verify_testpypi`;",
        "ours per phase is the same steps timed in-process through the library API.",
        "Hand-run: `python -m build`, `twine check --strict`, `twine upload`,",
        "`python -m venv` + `pip install` from the index, then the CLI's `--version`.",
        "",
    ]
    for size in SIZES:
        data = report["sizes"][size]
        lines += [
            f"## {size} package ({data['modules']} modules)",
            "",
            "| phase | ours (s) | hand-run (s) | ours / hand-run |",
            "|---|---|---|---|",
        ]
        for label, row in data["phases"].items():
            lines.append(
                f"| {label} | {row['ours']:.2f} | {row['hand']:.2f} | {row['ratio']:.2f} |"
            )
        lines += [
            f"| **total** (one nox invocation) | {data['ours_nox_total']:.2f} | "
            f"{data['hand_total']:.2f} | **{data['total_ratio']:.2f}** |",
            "",
        ]
    mono = report["monorepo"]
    lines += [
        "## monorepo (build, check, upload, verify of every package; one nox invocation)",
        "",
        "| packages | seconds | times one package |",
        "|---|---|---|",
    ]
    for count, seconds in mono["seconds"].items():
        lines.append(f"| {count} | {seconds:.2f} | {mono['times_one'][count]:.2f} |")
    notice = report["notice"]
    lines += [
        "",
        "## verify noticing an upload",
        "",
        f"Upload completed → verify noticed: median {notice['median']:.3f} s, "
        f"max {notice['max']:.3f} s over {len(notice['samples'])} uploads "
        f"(placed {', '.join(str(d) for d in notice['delays'])} s into the polling).",
        "",
        "## targets",
        "",
    ]
    lines += [f"- {name}: {'met' if met else 'MISSED'}" for name, met in report["targets"].items()]
    return "\n".join(lines) + "\n"


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("--monorepo-rounds", type=int, default=3, help="default 3")
    parser.add_argument("--out", type=Path, default=Path(".bench"), help="report directory")
    parser.add_argument("--profile", action="store_true", help="also write profiles")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    token = mint_token("testpypi")
    started = time.perf_counter()
    delays = (0.0, 0.15, 0.4, 0.9, 1.7, 3.3)
    with (
        LocalIndex("testpypi", token) as index,
        tempfile.TemporaryDirectory(prefix="releasekit-bench-") as tmp,
    ):
        work = Path(tmp)
        sizes = {size: bench_size(size, work, index, token, args.rounds) for size in SIZES}
        monorepo = bench_monorepo(work, index, token, args.monorepo_rounds)
        progress("verify noticing uploads")
        latency_root = write_sample(work / "notice", "bench-notice", "3.0.0", SIZES["small"])
        latencies = notice_latency(latency_root, index, token, delays)
        profiles = profile(work, index, token, args.out) if args.profile else {}
    report: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "rounds": args.rounds,
        "sizes": sizes,
        "monorepo": monorepo,
        "notice": {
            "samples": [round(x, 3) for x in latencies],
            "delays": list(delays),
            "median": round(statistics.median(latencies), 3),
            "max": round(max(latencies), 3),
        },
        "profiles": profiles,
    }
    report["targets"] = {
        "small total ratio <= 0.25": sizes["small"]["total_ratio"] <= 0.25,
        "small total ratio <= 0.5 (done-when)": sizes["small"]["total_ratio"] <= 0.5,
        "20 packages <= 6 x one": monorepo["times_one"]["20"] <= 6,
        "verify notices within 0.5 s": report["notice"]["max"] <= 0.5,
    }
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "bench.md").write_text(text)
    print(text)
    print(f"bench: {report['bench_seconds']} s; reports in {args.out}/bench.json and bench.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
