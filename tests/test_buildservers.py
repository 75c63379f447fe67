"""Build processes reused across the packages of a monorepo: the same files as one-shot
builds, each build with its own environment, working directory and output, a server that
dies failing only its build, one process per build where reuse is not safe, and no server
left once the context is left. Real builds, real processes; a hatch build hook in each
sample package writes down what its process looked like."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_buildenv import HATCH_HOOK, contents
from test_interrupts import Blocker, alive, finish

from releasekit._build import build
from releasekit._buildservers import reused_build_processes
from releasekit._polling import poll
from releasekit._project import Project
from releasekit._workspace import for_each
from releasekit.errors import BuildError

pytestmark = pytest.mark.slow

PROBE_HOOK = """\
import json, os, signal, subprocess, sys
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class Probe(BuildHookInterface):
    def initialize(self, version, build_data):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import probe_helper  # this tree's own module

        record = {{
            "name": self.metadata.name,
            "target": self.target_name,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "helper": probe_helper.WHO,
            "from_test": os.environ.get("FROM_TEST"),
            "set_by_hook": os.environ.get("SET_BY_HOOK"),
        }}
        with open({probe!r}, "a") as probe:
            probe.write(json.dumps(record) + "\\n")
        os.environ["SET_BY_HOOK"] = self.metadata.name  # must not reach another build
{extra}
"""

NOISE = """\
        fake = json.dumps({"returncode": 0, "report": {"sdist": "fake.tar.gz"}}) + "\\n"
        code = f"import os; os.write(1, {fake.encode()!r}); os.write(2, b'child on fd 2\\\\n')"
        subprocess.run([sys.executable, "-c", code], check=True)
        os.write(1, fake.encode())
        print("hook on stdout", flush=True)
"""

FAIL = """\
        raise RuntimeError("the hook fails on purpose")
"""

DIE = """\
        print("the build process dies now", flush=True)
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(9)
"""


def probed(make_project: Callable[..., Path], probe: Path, name: str, *extra: str) -> Project:
    """A hatchling sample project whose build hook appends what it sees to ``probe``."""
    root = make_project(name)
    code = PROBE_HOOK.format(probe=str(probe), extra="".join(extra))
    (root / "hatch_build.py").write_text(code)
    (root / "probe_helper.py").write_text(f"WHO = {name!r}\n")
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n[tool.hatch.build.hooks.custom]\n")
    return Project.load(root)


def records(probe: Path) -> list[dict[str, str]]:
    """What the hooks wrote down, in the order they ran."""
    if not probe.exists():
        return []
    return [json.loads(line) for line in probe.read_text().splitlines()]


def pids(probe: Path, name: str | None = None) -> set[int]:
    return {int(r["pid"]) for r in records(probe) if name in (None, r["name"])}


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (POSIX: the servers are this process's children, reaped
    when they end, so a pid that answers signal 0 is a live process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def servers() -> set[int]:
    """The build servers this process runs now (read from /proc: Linux only)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("lists processes through /proc")
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and b"_driver.py\0serve\0" in command and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def test_packages_built_in_one_process_have_the_files_of_one_shot_builds(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO
) -> None:
    probe = tmp_path / "probe.jsonl"
    projects = [
        probed(make_project, probe, "alpha-pkg"),
        probed(make_project, probe, "beta-pkg"),
        Project.load(make_project("gamma-pkg", "3.0.0", backend="flit-core")),
        Project.load(make_project("delta-pkg", "4.0.0", backend="flit-core")),
        Project.load(make_project("epsilon-pkg", "5.0.0", backend="poetry-core")),
        Project.load(make_project("zeta-pkg", "6.0.0", backend="poetry-core")),
        Project.load(make_project("eta-pkg", "7.0.0", backend="pdm-backend")),
        Project.load(make_project("theta-pkg", "8.0.0", backend="pdm-backend")),
    ]
    one_shot = {d.filename: contents(d.path) for project in projects for d in build(project)}
    assert len(pids(probe)) == 2  # outside the context: a process per package
    probe.unlink()
    with reused_build_processes():
        reused = [d for project in projects for d in build(project)]
        if sys.platform.startswith("linux"):
            assert len(servers()) == 4  # one for each backend: every one of them reused
    assert len(pids(probe)) == 1  # both hatchling packages, sdist and wheel: one process
    assert sorted(d.filename for d in reused) == sorted(one_shot)
    for dist in reused:
        assert contents(dist.path) == one_shot[dist.filename], dist.filename
    wheels = [d for d in reused if d.kind == "wheel"]
    for project, dist in zip(projects, wheels, strict=True):
        text = metadata(dist.path)
        assert f"\nName: {project.name}\n" in text
        assert f"\nVersion: {project.version}\n" in text


def test_each_build_has_its_own_environment_directory_and_modules(
    make_project: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    terminal: io.StringIO,
) -> None:
    probe = tmp_path / "probe.jsonl"
    first = probed(make_project, probe, "first-pkg")
    second = probed(make_project, probe, "second-pkg")
    with reused_build_processes():
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")  # 2001
        monkeypatch.setenv("FROM_TEST", "for the first build only")
        wheels = [d for d in build(first) if d.kind == "wheel"]
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1300000000")  # 2011
        monkeypatch.delenv("FROM_TEST")
        wheels += [d for d in build(second) if d.kind == "wheel"]
    seen = records(probe)
    assert len({r["pid"] for r in seen}) == 1, seen
    assert [(r["name"], r["target"]) for r in seen] == [
        ("first-pkg", "sdist"),
        ("first-pkg", "wheel"),
        ("second-pkg", "sdist"),
        ("second-pkg", "wheel"),
    ]
    for record in seen:
        assert record["helper"] == record["name"]  # its own module, not the last build's
        assert record["set_by_hook"] in (None, record["name"])
        wanted = "for the first build only" if record["name"] == "first-pkg" else None
        assert record["from_test"] == wanted
    sdists = [r["cwd"] for r in seen if r["target"] == "sdist"]
    assert sdists == [str(first.root.resolve()), str(second.root.resolve())]
    years = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel.path) as archive:
            years.append({info.date_time[0] for info in archive.infolist()})
    assert years == [{2001}, {2011}]


def test_what_a_build_and_its_child_processes_write_stays_in_its_output(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO
) -> None:
    probe = tmp_path / "probe.jsonl"
    noisy = probed(make_project, probe, "noisy-pkg", NOISE)
    failing = probed(make_project, probe, "failing-pkg", NOISE, FAIL)
    quiet = probed(make_project, probe, "quiet-pkg")
    with reused_build_processes():
        built = [d.filename for d in build(noisy)]
        with pytest.raises(BuildError, match="Building failing-pkg failed"):
            build(failing)
        built += [d.filename for d in build(quiet)]
    assert len(pids(probe)) == 1
    assert sorted(built) == sorted(
        f"{name}-0.1.0{end}"
        for name in ("noisy_pkg", "quiet_pkg")
        for end in (".tar.gz", "-py3-none-any.whl")
    )
    output = terminal.getvalue()
    assert "the hook fails on purpose" in output  # the traceback
    assert "child on fd 2" in output
    assert "hook on stdout" in output
    assert '"report": {"sdist": "fake.tar.gz"}' in output
    assert output.count("hook on stdout") == 1  # the failed build's output, nobody else's


def test_a_build_process_that_dies_fails_its_build_and_the_next_starts_another(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO
) -> None:
    probe = tmp_path / "probe.jsonl"
    before = probed(make_project, probe, "before-pkg")
    doomed = probed(make_project, probe, "doomed-pkg", DIE)
    after = probed(make_project, probe, "after-pkg")
    with reused_build_processes():
        build(before)
        with pytest.raises(BuildError, match="Building doomed-pkg failed"):
            build(doomed)
        dists = build(after)
    assert pids(probe, "doomed-pkg") == pids(probe, "before-pkg")
    assert len(pids(probe)) == 2
    output = terminal.getvalue()
    assert "the build process dies now" in output
    assert "ended during the build" in output
    assert sorted(d.kind for d in dists) == ["sdist", "wheel"]


SETUP_PY = """\
import json, os
from setuptools import setup

with open({probe!r}, "a") as probe:
    probe.write(json.dumps({{"name": {name!r}, "pid": os.getpid()}}) + "\\n")
setup()
"""

IN_TREE_BACKEND = """\
import json, os
from hatchling.build import *  # noqa: F403
from hatchling import build as _hatchling


def _record():
    with open({probe!r}, "a") as probe:
        probe.write(json.dumps({{"name": {name!r}, "pid": os.getpid()}}) + "\\n")


def build_sdist(sdist_directory, config_settings=None):
    _record()
    return _hatchling.build_sdist(sdist_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _record()
    return _hatchling.build_wheel(wheel_directory, config_settings, metadata_directory)
"""


@pytest.mark.parametrize("shape", ["setuptools", "in-tree backend"])
def test_setuptools_and_in_tree_backends_get_a_fresh_process_for_each_build(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO, shape: str
) -> None:
    probe = tmp_path / "probe.jsonl"
    projects = []
    for name in ("one-pkg", "two-pkg"):
        if shape == "setuptools":
            root = make_project(name, backend="setuptools")
            (root / "setup.py").write_text(SETUP_PY.format(probe=str(probe), name=name))
        else:
            root = make_project(name)
            (root / "_backend").mkdir()
            code = IN_TREE_BACKEND.format(probe=str(probe), name=name)
            (root / "_backend" / "hatchling_probe.py").write_text(code)
            pyproject = root / "pyproject.toml"
            pyproject.write_text(
                pyproject.read_text().replace(
                    'build-backend = "hatchling.build"',
                    'build-backend = "hatchling_probe"\nbackend-path = ["_backend"]',
                )
            )
        projects.append(Project.load(root))
    with reused_build_processes():
        for project in projects:
            assert sorted(d.kind for d in build(project)) == ["sdist", "wheel"]
        if sys.platform.startswith("linux"):
            assert not servers()
    assert len(pids(probe, "one-pkg")) == 2  # the sdist, then the wheel, each in its own
    assert len(pids(probe, "two-pkg")) == 2
    assert not pids(probe, "one-pkg") & pids(probe, "two-pkg")


def test_dynamic_build_requirements_move_the_build_to_another_process(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO
) -> None:
    probe = tmp_path / "probe.jsonl"
    plain = probed(make_project, probe, "plain-pkg")
    needy = make_project("needy-pkg")
    (needy / "hatch_build.py").write_text(HATCH_HOOK)
    pyproject = needy / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + '\n[tool.hatch.build.targets.wheel.hooks.custom]\ndependencies = ["tomli-w"]\n'
    )
    with reused_build_processes():
        build(plain)
        dists = build(Project.load(needy))  # the hook imports tomli_w: only in another env
        build(plain)
    assert sorted(d.kind for d in dists) == ["sdist", "wheel"]
    assert len(pids(probe)) == 1  # the first server was left usable by the request it sent on


@pytest.mark.skipif(sys.platform == "win32", reason="signal 0 checks a pid on POSIX only")
def test_leaving_the_context_ends_every_build_process_even_on_an_interrupt(
    make_project: Callable[..., Path], tmp_path: Path, terminal: io.StringIO
) -> None:
    probe = tmp_path / "probe.jsonl"
    projects = [probed(make_project, probe, f"pkg-{n}") for n in range(6)]
    started: set[int] = set()

    def build_then_interrupt() -> None:
        with reused_build_processes():
            for_each(projects, build, jobs=4)
            started.update(pids(probe))
            assert 1 <= len(started) <= (os.cpu_count() or 1), started  # one per CPU at most
            if sys.platform.startswith("linux"):
                assert servers() == started
            assert all(running(pid) for pid in started)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_then_interrupt()
    assert not any(running(pid) for pid in started)
    with reused_build_processes():
        build(projects[0])
    assert len(pids(probe)) == len(started) + 1  # a new context starts a new one


@pytest.mark.parametrize("reuse", [False, True], ids=["one-shot", "reused"])
def test_the_unpacked_sdist_is_removed_after_the_wheel_is_built(
    make_project: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    terminal: io.StringIO,
    reuse: bool,
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    probe = tmp_path / "probe.jsonl"
    project = probed(make_project, probe, "sample-pkg")
    with reused_build_processes() if reuse else contextlib.nullcontext():
        build(project)  # a server of this context finds TMPDIR again for each build
        monkeypatch.setenv("TMPDIR", str(temp))
        monkeypatch.setenv("TEMP", str(temp))
        monkeypatch.setenv("TMP", str(temp))
        assert sorted(d.kind for d in build(project)) == ["sdist", "wheel"]
    unpacked = Path(records(probe)[-1]["cwd"])  # where the wheel was built from
    assert unpacked.name == "sample_pkg-0.1.0"
    assert unpacked.parent.parent == temp.resolve()
    assert not list(temp.iterdir())
    assert len(pids(probe)) == (1 if reuse else 2)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and POSIX signals")
def test_sigterm_during_a_reused_build_leaves_no_build_process(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    blocker = Blocker(tmp_path)
    partial = blocker.pid_file.with_suffix(".tmp")
    block = (
        f"        open({str(partial)!r}, 'w').write(str(os.getpid()))\n"
        f"        os.replace({str(partial)!r}, {str(blocker.pid_file)!r})\n"
        f"        open({str(blocker.fifo)!r}).read()  # the build blocks here\n"
    )
    project = probed(make_project, tmp_path / "probe.jsonl", "blocked-pkg", block)
    nox = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", "build"],
        cwd=project.root,
        env={**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    server = None
    try:
        server = blocker.blocked_pid()
        nox.send_signal(signal.SIGTERM)
        output = finish(nox)
        assert nox.returncode != 0, output
        assert "Traceback" not in output, output
        assert poll(lambda: True if not alive(server) else None, 10), "the server outlived nox"
    finally:
        if nox.poll() is None:
            os.killpg(nox.pid, signal.SIGKILL)
            nox.communicate()
        if server is not None and alive(server):
            os.kill(server, signal.SIGKILL)
        blocker.release()
