"""releasekit on real published projects, as they are (``nox -s realworld``).

For each project below (pinned versions, chosen to cover the shapes of issue 11: build
backends, version sources, tag styles), the harness:

1. fetches its sdist by package name with pip (``pip download --no-deps --no-binary :all:``,
   ambient pip configuration ignored), cached in ``.realworld-cache/``;
2. unpacks it into a fresh git repository in a temporary directory, without the files the
   sdist adds and a repository does not have (``PKG-INFO``, ``*.egg-info``), commits it and
   tags the commit as the project's authors tag releases (``v1.2.3`` or ``1.2.3``), with the
   README's noxfile added (``import releasekit.nox; releasekit.nox.register_sessions()``);
   a project whose sdist has no ``.gitignore`` gets a usual one standing in for its
   repository's; ignored files are then removed, so the tree is what a clone would give;
3. runs, each as a real ``nox -s STEP`` in the project's directory with a per-step timeout:
   ``doctor``, ``build``, ``check_dist``, ``upload_testpypi``, ``verify_testpypi`` and
   ``release -- NEXT --no-index-check`` (NEXT: the next patch version). A step of the chain
   build → check_dist → upload → verify is skipped when the one before it did not pass.

Two throwaway local indexes (pypiserver on 127.0.0.1) stand in for TestPyPI (upload and
verify, through ``RELEASEKIT_TESTPYPI_*``) and for PyPI (the version check of ``release``,
through ``RELEASEKIT_PYPI_*``, given to that step only: verify installs dependencies from
the real index, read-only). Tokens are synthetic (``releasekit.credentials.mint_token``).

It prints a table (project, backend, version source, tag, each step, total time) and writes
``.realworld/realworld.md``, ``.realworld/realworld.json`` and each step's output under
``.realworld/logs/``. It exits 0 even when projects fail (it is a report) unless
``--strict`` is given. ``python benchmarks/realworld.py --help`` shows the options;
``nox -s realworld -- NAME ...`` runs only the named projects.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from releasekit.credentials import mint_token
from releasekit.indexes.local import LocalIndex

NOXFILE = "import releasekit.nox\n\nreleasekit.nox.register_sessions()\n"
# What a repository of a Python project usually ignores; used only when the sdist has none.
GITIGNORE = "/build/\n/dist/\n*.egg-info/\n__pycache__/\n*.py[cod]\n*.so\n"
TOKEN_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Realworld",
    "GIT_AUTHOR_EMAIL": "realworld@example.invalid",
    "GIT_COMMITTER_NAME": "Realworld",
    "GIT_COMMITTER_EMAIL": "realworld@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
CHAIN = ("build", "check_dist", "upload_testpypi", "verify_testpypi")
STEPS = ("doctor", *CHAIN, "release")
SHORT = {"upload_testpypi": "upload", "verify_testpypi": "verify"}


# --- the projects ---------------------------------------------------------------------------


def pdm_scm_version(root: Path) -> str:
    """Undo what pdm-backend does to an sdist: it writes the version from git as a static
    ``version`` and empties ``dynamic``; the repository has ``dynamic = ["version"]``."""
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^dynamic = \[\]$", 'dynamic = ["version"]', text, count=1)
    text = re.sub(r'(?m)^version = "[^"]*"\n', "", text, count=1)
    path.write_text(text, encoding="utf-8")
    return 'pyproject.toml as in the repository: `dynamic = ["version"]`, no static version'


@dataclass(frozen=True)
class RealProject:
    """A published project, its pinned version, and how its authors tag releases."""

    name: str
    version: str
    backend: str
    version_source: str
    tag_format: str  # "v{version}" or "{version}", the project's own style
    why: str
    fixup: Callable[[Path], str] | None = None  # makes the tree the repository's; a note

    @property
    def tag(self) -> str:
        return self.tag_format.format(version=self.version)

    @property
    def next_version(self) -> str:
        release = (*Version(self.version).release, 0, 0)[:3]
        return f"{release[0]}.{release[1]}.{release[2] + 1}"


PROJECTS = (
    RealProject(
        "iniconfig",
        "2.0.0",
        "hatchling",
        "hatch-vcs (git tag)",
        "v{version}",
        "hatchling with the version from git through hatch-vcs; src layout",
    ),
    RealProject(
        "pluggy",
        "1.0.0",
        "setuptools",
        "setuptools-scm (git tag)",
        "{version}",
        "metadata in setup.cfg (no [project]), version from git by setuptools-scm in setup.py",
    ),
    RealProject(
        "six",
        "1.16.0",
        "setuptools (setup.py)",
        "setup.py reads six.__version__",
        "{version}",
        "setup.py only: no pyproject.toml at all",
    ),
    RealProject(
        "cachetools",
        "5.3.3",
        "setuptools",
        "setup.cfg attr:",
        "v{version}",
        "setup.cfg metadata with `version = attr: cachetools.__version__`",
    ),
    RealProject(
        "tomlkit",
        "0.12.5",
        "poetry-core",
        "[tool.poetry] version",
        "{version}",
        "Poetry 1.x style: metadata in [tool.poetry], no [project]",
    ),
    RealProject(
        "findpython",
        "0.6.2",
        "pdm-backend",
        "pdm scm (git tag)",
        "{version}",
        "pdm-backend with [tool.pdm.version] source = scm (sdist's static version undone)",
        fixup=pdm_scm_version,
    ),
    RealProject(
        "packaging",
        "24.1",
        "flit-core",
        "flit: module __version__",
        "{version}",
        "flit-core with the version read from packaging/__init__.py",
    ),
    RealProject(
        "tomli",
        "2.0.1",
        "flit-core",
        "static [project]",
        "{version}",
        "flit-core with a static version",
    ),
    RealProject(
        "markupsafe",
        "3.0.2",
        "setuptools + C extension",
        "static [project]",
        "{version}",
        "a C extension (markupsafe._speedups): the wheel is linux_x86_64",
    ),
    RealProject(
        "typing-inspection",
        "0.4.0",
        "hatchling",
        "static [project]",
        "v{version}",
        "plain hatchling with a static version; one dependency (typing-extensions)",
    ),
    RealProject(
        "colorama",
        "0.4.6",
        "hatchling",
        "hatch: path colorama/__init__.py",
        "{version}",
        "hatchling reading the version from a module ([tool.hatch.version] path)",
    ),
)


# --- fetching and unpacking -----------------------------------------------------------------


def pip_command() -> list[str]:
    """pip of this interpreter, or pip through uv's tool runner when this one has none."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("realworld: needs pip or uv to fetch sdists (run `nox -s realworld`)")
    return [uv, "tool", "run", "--no-config", "pip"]


def fetch_sdist(project: RealProject, cache: Path) -> Path:
    """The project's sdist, from the cache or fetched by name with pip (config ignored)."""
    folder = cache / f"{canonicalize_name(project.name)}-{project.version}"
    found = sorted(p for p in folder.glob("*") if p.name.endswith((".tar.gz", ".zip")))
    if found:
        return found[0]
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    command = [
        *pip_command(),
        "download",
        "--isolated",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{project.name}=={project.version}",
        "--dest",
        str(partial),
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    files = [p for p in partial.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    if result.returncode != 0 or len(files) != 1:
        shutil.rmtree(partial, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no sdist"]
        raise RuntimeError(f"pip download {project.name}=={project.version}: {tail[0]}")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder / files[0].name


def unpack(sdist: Path, into: Path) -> Path:
    """Unpack ``sdist`` into ``into``; returns its single top-level directory."""
    into.mkdir(parents=True)
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            archive.extractall(into)  # noqa: S202 - zipfile drops unsafe path parts
    else:
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(into, filter="data")
            else:  # Python < 3.11.4
                archive.extractall(into)  # noqa: S202 - a pinned sdist from the index
    (top,) = list(into.iterdir())
    return top


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def make_repository(project: RealProject, sdist: Path, work: Path) -> tuple[Path, list[str]]:
    """The sdist as a committed, tagged git repository with releasekit's noxfile; returns
    its root and notes on what was changed from the sdist."""
    root = unpack(sdist, work / canonicalize_name(project.name))
    notes = []
    for generated in (root / "PKG-INFO", *root.glob("*.egg-info"), *root.glob("src/*.egg-info")):
        if generated.is_dir():
            shutil.rmtree(generated)
        elif generated.exists():
            generated.unlink()
    if project.fixup is not None:
        notes.append(project.fixup(root))
    if not (root / ".gitignore").exists():
        (root / ".gitignore").write_text(GITIGNORE)
        notes.append("usual .gitignore added (the sdist has none)")
    if (root / "noxfile.py").exists():
        notes.append("its own noxfile.py replaced by the README's")
    (root / "noxfile.py").write_text(NOXFILE)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"Release {project.version}")
    git(root, "tag", "-a", project.tag, "-m", f"{project.name} {project.version}")
    git(root, "clean", "-fdXq")  # the tree a clone gives: no ignored files
    return root, notes


# --- running the steps ----------------------------------------------------------------------


@dataclass
class StepResult:
    status: str  # pass, fail, timeout, skip; wrong: exit 0 but not the project's way
    seconds: float = 0.0
    reason: str = ""


@dataclass
class ProjectResult:
    name: str
    version: str
    backend: str
    version_source: str
    tag: str
    next_version: str
    shape: str
    notes: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    steps: dict[str, StepResult] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and all(s.status == "pass" for s in self.steps.values())


CHANGELOG_NAME = re.compile(r"(?i)^(changelog|changes|history|news)(\.\w+)?$")


def release_problems(project: RealProject, root: Path, tags_before: set[str]) -> list[str]:
    """What a release that exited 0 did differently from the project's own way: a tag in
    another style, a second changelog beside the project's own."""
    problems = []
    expected = project.tag_format.format(version=project.next_version)
    made = sorted(set(git(root, "tag").split()) - tags_before)
    if made != [expected]:
        problems.append(f"tagged {', '.join(made) or 'nothing'}; the project tags {expected}")
    changed = git(root, "show", "--name-status", "--format=", "HEAD").splitlines()
    added = {line.split("\t")[-1] for line in changed if line.startswith("A")}
    own = {
        path
        for path in git(root, "ls-tree", "--name-only", "HEAD~1").split()
        if CHANGELOG_NAME.match(path)
    }
    for path in sorted(added):
        if CHANGELOG_NAME.match(path) and own:
            problems.append(f"wrote {path} beside the project's {', '.join(sorted(own))}")
    return problems


def failure_reason(output: str) -> str:
    """Why a session failed: releasekit's ``error:`` line (with the list it introduces, when
    it ends with a colon), else nox's."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for at, line in enumerate(lines):
        if line.startswith("error:"):
            reason = line[len("error:") :].strip()
            if reason.endswith(":"):
                listed = [item for item in lines[at + 1 : at + 4] if not item.startswith("nox >")]
                reason = " ".join([reason, *listed])
            return reason
    for line in reversed(lines):
        if line.startswith("nox > ") and "failed" in line.lower():
            return line[len("nox > ") :]
    return lines[-1] if lines else "no output"


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<token>")
    return text


class Runner:
    """Runs the steps of every project against the two local indexes."""

    def __init__(
        self,
        testpypi: LocalIndex,
        pypi: LocalIndex,
        timeout: float,
        logs: Path,
        work: Path,
        cache: Path,
    ) -> None:
        self.testpypi = testpypi
        self.pypi = pypi
        self.timeout = timeout
        self.logs = logs
        self.work = work
        self.cache = cache
        env = {key: value for key, value in os.environ.items() if key not in TOKEN_VARS}
        env.update(GIT_IDENTITY)
        env.update(
            CI="true",
            NOX_SCRIPT_MODE="none",
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            TEST_PYPI_API_TOKEN=testpypi.token,
            PYPI_API_TOKEN=pypi.token,
        )
        env.update(testpypi.environ())
        self.environ = env

    def step(self, root: Path, name: str, step: str, args: Sequence[str]) -> StepResult:
        env = dict(self.environ)
        if step == "release":  # its version check asks the PyPI stand-in, not the real index
            env.update(self.pypi.environ())
        command = [sys.executable, "-m", "nox", "-s", step, *(["--", *args] if args else [])]
        started = time.perf_counter()
        try:
            result = subprocess.run(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.timeout,
                check=False,
            )
            output, code = result.stdout, result.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.output
            output = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
            code = None
        seconds = round(time.perf_counter() - started, 2)
        log = self.logs / name / f"{step}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        secrets = (self.testpypi.token, self.pypi.token)
        shown = " ".join(["nox", "-s", step, *(["--", *args] if args else [])])
        log.write_text(f"$ {shown}\n{scrub(output, secrets)}")
        if code is None:
            return StepResult("timeout", seconds, f"no result after {self.timeout:g} s")
        if code == 0:
            return StepResult("pass", seconds)
        reason = failure_reason(output).replace(f"{root}{os.sep}", "")
        reason = reason.replace(str(root), root.name)  # paths relative to the project
        return StepResult("fail", seconds, scrub(reason, secrets)[:300])

    def project(self, project: RealProject) -> ProjectResult:
        result = ProjectResult(
            project.name,
            project.version,
            project.backend,
            project.version_source,
            project.tag,
            project.next_version,
            project.why,
        )
        started = time.perf_counter()
        try:
            sdist = fetch_sdist(project, self.cache)
            root, result.notes = make_repository(project, sdist, self.work)
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
            result.error = f"could not prepare the project: {exc}"
            progress(f"{project.name}: {result.error}")
            return result
        chain_broken = False
        for step in STEPS:
            if step in CHAIN[1:] and chain_broken:
                result.steps[step] = StepResult("skip", reason="an earlier step did not pass")
                continue
            args = [project.next_version, "--no-index-check"] if step == "release" else []
            before = set(git(root, "tag").split()) if step == "release" else set()
            outcome = self.step(root, canonicalize_name(project.name), step, args)
            if step == "build" and outcome.status == "pass":
                result.built = sorted(p.name for p in (root / "dist").glob("*") if p.is_file())
            if step == "release" and outcome.status == "pass":
                problems = release_problems(project, root, before)
                if problems:
                    outcome = StepResult("wrong", outcome.seconds, "; ".join(problems))
            result.steps[step] = outcome
            if step in CHAIN and outcome.status != "pass":
                chain_broken = True
            progress(
                f"{project.name} {project.version}: {step} {outcome.status} ({outcome.seconds} s)"
            )
        result.seconds = round(time.perf_counter() - started, 1)
        return result


# --- the report -----------------------------------------------------------------------------


def cell(step: StepResult | None) -> str:
    if step is None:
        return "-"
    if step.status == "skip":
        return "skip"
    return f"{step.status} {step.seconds:.1f}s"


def rows(results: Sequence[ProjectResult]) -> list[list[str]]:
    out = []
    for r in results:
        cells = [cell(r.steps.get(step)) for step in STEPS]
        if r.error:
            cells = ["not run"] * len(STEPS)
        out.append(
            [
                f"{r.name} {r.version}",
                r.backend,
                r.version_source,
                r.tag,
                *cells,
                f"{r.seconds:.1f}",
            ]
        )
    return out


HEADERS = [
    "project",
    "backend",
    "version source",
    "tag",
    *[SHORT.get(s, s) for s in STEPS],
    "total s",
]


def failures(results: Sequence[ProjectResult]) -> list[str]:
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.name}: {r.error}")
        for step, outcome in r.steps.items():
            if outcome.status in ("fail", "timeout", "wrong"):
                lines.append(f"{r.name} {SHORT.get(step, step)}: {outcome.reason}")
    return lines


def markdown(report: dict[str, Any], results: Sequence[ProjectResult]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# releasekit on real projects",
        "",
        f"{report['machine']}; releasekit {report['releasekit']}; {report['jobs']} at a time; "
        f"{report['passed']} of {len(results)} projects passed every step; "
        f"{report['seconds']} s in all.",
        "",
        "Each project is its published sdist in a fresh git repository, tagged in its own "
        "style, with the README's noxfile. Steps: `nox -s doctor`, `build`, `check_dist`, "
        "`upload_testpypi`, `verify_testpypi` (against a local stand-in), then "
        "`release -- NEXT --no-index-check`. A cell is the result and the seconds: "
        "`skip` when an earlier step of build, check_dist, upload, verify did not pass; "
        "`wrong` when the session exited 0 but did not do it the project's way (a tag in "
        "another style, a second changelog).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows(results)]
    reasons = failures(results)
    if reasons:
        lines += ["", "## Why steps failed (first line)", ""]
        lines += [f"- {esc(line)}" for line in reasons]
    lines += ["", "## The projects", ""]
    for r in results:
        built = f" Built: {', '.join(r.built)}." if r.built else ""
        lines.append(f"- {r.name} {r.version} (tag `{r.tag}`): {esc(r.shape)}.{built}")
    notes = [f"- {r.name}: {'; '.join(r.notes)}" for r in results if r.notes]
    if notes:
        lines += ["", "## Changes from the sdist", "", *notes]
    return "\n".join(lines) + "\n"


def print_table(results: Sequence[ProjectResult]) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(title="releasekit on real projects")
    for header in HEADERS:
        table.add_column(header, no_wrap=True)
    styles = {"pass": "green", "fail": "red", "timeout": "red", "wrong": "yellow", "skip": "dim"}
    for row in rows(results):
        table.add_row(
            *[
                f"[{styles[c.split()[0]]}]{c}[/]" if c.split()[0] in styles else escape(c)
                for c in row
            ]
        )
    console.print(table)
    for line in failures(results):
        console.print(f"- {line}", markup=False, highlight=False)


def progress(message: str) -> None:
    print(f"realworld: {message}", file=sys.stderr, flush=True)


def releasekit_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        return git(here, "rev-parse", "--short", "HEAD").strip()
    except (subprocess.CalledProcessError, OSError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    names = [p.name for p in PROJECTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", metavar="NAME", help=f"of: {', '.join(names)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any step fails")
    parser.add_argument("--jobs", type=int, default=2, help="projects at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per step (300)")
    parser.add_argument("--out", type=Path, default=Path(".realworld"), help="report directory")
    parser.add_argument("--cache", type=Path, default=Path(".realworld-cache"), help="sdists")
    parser.add_argument("--keep", action="store_true", help="keep the project repositories")
    args = parser.parse_args(argv)
    wanted = {canonicalize_name(n) for n in args.projects}
    unknown = wanted - {canonicalize_name(n) for n in names}
    if unknown:
        parser.error(f"unknown project(s) {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    chosen = [p for p in PROJECTS if not wanted or canonicalize_name(p.name) in wanted]
    logs = args.out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="releasekit-realworld-"))
    started = time.perf_counter()
    try:
        with (
            LocalIndex("testpypi", mint_token("testpypi")) as testpypi,
            LocalIndex("pypi", mint_token("pypi")) as pypi,
        ):
            runner = Runner(
                testpypi, pypi, args.timeout, logs.resolve(), work, args.cache.resolve()
            )
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                results = list(pool.map(runner.project, chosen))
    finally:
        if args.keep:
            progress(f"the project repositories are kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()}",
        "releasekit": releasekit_revision(),
        "jobs": args.jobs,
        "step_timeout": args.timeout,
        "seconds": round(time.perf_counter() - started, 1),
        "passed": sum(r.passed for r in results),
        "projects": [asdict(r) for r in results],
    }
    (args.out / "realworld.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "realworld.md").write_text(markdown(report, results))
    print_table(results)
    print(
        f"realworld: {report['passed']} of {len(results)} projects passed every step in "
        f"{report['seconds']} s; reports in {args.out}/realworld.md and realworld.json"
    )
    return 1 if args.strict and report["passed"] < len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
