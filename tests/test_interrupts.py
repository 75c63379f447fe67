"""Interrupts with real processes: a build backend and git hooks that block (on a FIFO, no
sleep) until the test signals nox. No child may outlive nox, no temporary directory may be
left, and an interrupted push reports what the repository and the remote hold."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import commit_monorepo, git, write_project
from releasekit._polling import Deadline, poll
from releasekit._process import children_stopped, run, start
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._stamp import sigterm_raises
from releasekit._workspace import for_each
from releasekit.errors import ReleasekitError

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="FIFOs, POSIX signals and /proc-free pid checks: POSIX only"
)
TAG = "sample-pkg-v0.2.0"


class Blocker:
    """A FIFO a child blocks on, and the file where it writes its pid before blocking."""

    def __init__(self, where: Path) -> None:
        self.fifo = where / "block.fifo"
        self.pid_file = where / "blocked.pid"
        os.mkfifo(self.fifo)

    def shell(self) -> str:
        """Shell lines: write our pid, then block until the FIFO is written (or killed)."""
        return f"echo $$ > '{self.pid_file}.tmp' && mv '{self.pid_file}.tmp' '{self.pid_file}'\ncat '{self.fifo}' > /dev/null\n"

    def blocked_pid(self) -> int:
        """The pid of the blocked child, once it is blocked (within 120 s)."""
        found = poll(lambda: self.pid_file.read_text() if self.pid_file.exists() else None, 120)
        assert found, "the child never reached the point where it blocks"
        return int(found)

    def release(self) -> None:
        """Unblock a child still waiting (clean-up after a failed test)."""
        try:
            handle = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nobody is blocked
            return
        os.close(handle)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:  # no /proc (macOS): signal 0 answered, so it runs
        return True


@pytest.fixture
def start_nox() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start nox in its own session (as a terminal would); killed with its group at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        full_env = {**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true", **(env or {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "nox", *args],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def finish(process: subprocess.Popen[str]) -> str:
    """nox's output once it has exited (it must, within 60 s of the signal)."""
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("nox did not exit after the signal")
    return output


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.slow
def test_sigterm_during_build_leaves_no_backend_and_no_temp_dir(
    make_project: Callable[..., Path],
    start_nox: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    root = make_project(backend="setuptools")
    blocker = Blocker(tmp_path)
    (root / "setup.py").write_text(
        "import os, pathlib\nfrom setuptools import setup\n\n"
        f"pid_file = pathlib.Path({str(blocker.pid_file)!r})\n"
        "pid_file.with_suffix('.tmp').write_text(str(os.getpid()))\n"
        "pid_file.with_suffix('.tmp').replace(pid_file)\n"
        f"open({str(blocker.fifo)!r}).read()  # the backend blocks here\n"
        "setup()\n"
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    nox = start_nox(root, "-s", "build", env={"TMPDIR": str(temp)})
    backend = blocker.blocked_pid()
    try:
        assert list(temp.glob("releasekit-build-*")), "the build has its temp dir by now"
        nox.send_signal(signal.SIGTERM)
        output = finish(nox)
        assert nox.returncode != 0, output
        assert "Traceback" not in output, output
        assert poll(lambda: True if not alive(backend) else None, 10), "the backend outlived nox"
        assert not list(temp.glob("releasekit-build-*")), output
        assert (root / "pyproject.toml").read_text().count('version = "0.1.0"') == 1
    finally:
        if alive(backend):
            os.kill(backend, signal.SIGKILL)
        blocker.release()


BLOCKING_SETUP = (
    "import os, pathlib\nfrom setuptools import setup\n\n"
    "pid_file = pathlib.Path({pid_file!r})\n"
    "pid_file.with_suffix('.tmp').write_text(str(os.getpid()))\n"
    "pid_file.with_suffix('.tmp').replace(pid_file)\n"
    "open({fifo!r}).read()  # the backend blocks here\n"
    "setup()\n"
)
BLOCKING_HOOK = (  # runs in the reused build process of hatchling
    "import os, pathlib\n"
    "from hatchling.builders.hooks.plugin.interface import BuildHookInterface\n\n\n"
    "class Blocking(BuildHookInterface):\n"
    "    def initialize(self, version, build_data):\n"
    "        pid_file = pathlib.Path({pid_file!r})\n"
    "        pid_file.with_suffix('.tmp').write_text(str(os.getpid()))\n"
    "        pid_file.with_suffix('.tmp').replace(pid_file)\n"
    "        open({fifo!r}).read()  # the build blocks here\n"
)
PACKAGES = ("alpha-pkg", "beta-pkg", "gamma-pkg")


def blocking_monorepo(root: Path, backend: str, blocks: Path) -> dict[str, Blocker]:
    """A monorepo of three packages whose builds block: each package's blocker by name."""
    blockers: dict[str, Blocker] = {}
    for name in PACKAGES:
        where = blocks / name
        where.mkdir(parents=True)
        blocker = blockers[name] = Blocker(where)
        package = write_project(root / "packages" / name, name, backend=backend)
        paths = {"pid_file": str(blocker.pid_file), "fifo": str(blocker.fifo)}
        if backend == "setuptools":
            (package / "setup.py").write_text(BLOCKING_SETUP.format(**paths))
        else:
            (package / "hatch_build.py").write_text(BLOCKING_HOOK.format(**paths))
            with (package / "pyproject.toml").open("a") as pyproject:
                pyproject.write("\n[tool.hatch.build.hooks.custom]\n")
    commit_monorepo(root, [f"packages/{name}" for name in PACKAGES], "feat: three packages")
    return blockers


def started(blockers: dict[str, Blocker]) -> dict[str, int]:
    """The pid of each package's build that has reached the point where it blocks."""
    return {
        name: int(blocker.pid_file.read_text())
        for name, blocker in blockers.items()
        if blocker.pid_file.exists()
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "signum"),
    [
        # a fresh backend process per build
        pytest.param("setuptools", signal.SIGTERM, id="setuptools-SIGTERM"),
        pytest.param("setuptools", signal.SIGINT, id="setuptools-SIGINT"),
        pytest.param(  # reused build processes, one per CPU
            "hatchling",
            signal.SIGTERM,
            id="hatchling-SIGTERM",
            marks=pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two build processes"),
        ),
    ],
)
def test_interrupt_during_monorepo_build_stops_every_package_at_once(
    start_nox: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    backend: str,
    signum: signal.Signals,
) -> None:
    root = tmp_path / "repo"
    blockers = blocking_monorepo(root, backend, tmp_path / "blocks")
    temp = tmp_path / "temp"
    temp.mkdir()
    nox = start_nox(root, "-s", "build", env={"TMPDIR": str(temp), "RELEASEKIT_JOBS": "2"})
    try:
        blocked = poll(lambda: running if len(running := started(blockers)) == 2 else None, 120)
        assert blocked, "two builds never reached the point where they block"
        os.killpg(nox.pid, signum)  # as a terminal (Ctrl-C) or a CI runner (SIGTERM) does
        deadline = Deadline(30)
        output = finish(nox)
        assert not deadline.expired, f"nox took {deadline.elapsed:.1f} s to exit"
        assert nox.returncode != 0, output
        assert "Traceback" not in output, output
        gone = poll(lambda: True if not any(map(alive, blocked.values())) else None, 10)
        assert gone, "a build outlived nox"
        assert started(blockers) == blocked, "a queued package started after the interrupt"
        assert not list(temp.glob("releasekit-build-*")), output
        assert "Working on 3 packages" in output, output
        assert "Building" not in output, output  # no package failed: the run was interrupted
        assert "packages failed" not in output, output
    finally:
        for pid in started(blockers).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for blocker in blockers.values():
            blocker.release()


def in_thread(command: str, cwd: Path) -> tuple[threading.Thread, list[int]]:
    """``command`` run by :func:`releasekit._process.run` in a thread; its exit status."""
    statuses: list[int] = []
    thread = threading.Thread(
        target=lambda: statuses.append(run(["sh", "-c", command], cwd=cwd).returncode)
    )
    thread.start()
    return thread, statuses


def test_children_stopped_ends_the_children_other_threads_wait_for(tmp_path: Path) -> None:
    blocker = Blocker(tmp_path)
    waiting, statuses = in_thread(blocker.shell(), tmp_path)
    pid = blocker.blocked_pid()
    streaming = start([sys.executable, "-c", "import sys; sys.stdin.read()"], cwd=tmp_path)
    try:
        with children_stopped():
            waiting.join(30)
            late, late_statuses = in_thread(f"cat '{blocker.fifo}'", tmp_path)
            late.join(30)
        assert not waiting.is_alive(), "run still waits for its child"
        assert statuses == [-signal.SIGKILL]
        assert not alive(pid)
        assert streaming.returncode == -signal.SIGKILL, "the streaming child was not stopped"
        assert not late.is_alive(), "a child started while stopping ran on"
        assert late_statuses == [-signal.SIGKILL]
        after, after_statuses = in_thread("exit 3", tmp_path)
        after.join(30)
        assert after_statuses == [3], "children run again after the block"
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        blocker.release()
        if streaming.poll() is None:
            streaming.kill()
        streaming.communicate()


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_for_each_raises_the_interrupt_and_nothing_of_the_packages(
    tmp_path: Path, terminal: io.StringIO, signum: signal.Signals
) -> None:
    projects = [
        Project.load(write_project(tmp_path / "packages" / name, name)) for name in PACKAGES
    ]
    blockers = {}
    for name in PACKAGES:
        (tmp_path / "blocks" / name).mkdir(parents=True)
        blockers[name] = Blocker(tmp_path / "blocks" / name)

    def action(project: Project) -> None:
        get_reporter().info(f"Started {project.name}")
        result = run(["sh", "-c", blockers[project.name].shell()], cwd=tmp_path)
        raise ReleasekitError(f"{project.name}: exit status {result.returncode}")

    main = threading.main_thread().ident
    assert main is not None

    returned = threading.Event()
    kept_waiting: list[bool] = []

    def release_all() -> None:
        for blocker in blockers.values():
            blocker.release()

    def interrupt() -> None:
        if not poll(lambda: True if len(started(blockers)) == 2 else None, 60):
            return
        signal.pthread_kill(main, signum)  # where Python runs the handlers
        if not returned.wait(30):  # for_each waits for its packages: let them end
            kept_waiting.append(True)
            poll(lambda: True if returned.is_set() else release_all(), 120)

    def run_packages() -> None:
        try:
            for_each(projects, action, jobs=2)
        finally:
            returned.set()

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with sigterm_raises(), pytest.raises((KeyboardInterrupt, SystemExit)) as caught:
            run_packages()
        assert not kept_waiting, "for_each waited for the packages after the interrupt"
        if signum == signal.SIGINT:
            assert caught.type is KeyboardInterrupt
        else:
            assert caught.type is SystemExit and caught.value.code == 128 + signal.SIGTERM
        blocked = started(blockers)
        assert len(blocked) == 2, "a queued package started after the interrupt"
        assert not any(map(alive, blocked.values())), "a child outlived the interrupt"
        assert "Started" not in terminal.getvalue()
        assert "exit status" not in terminal.getvalue()
    finally:
        for pid in started(blockers).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        release_all()


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
def test_an_interrupt_ends_the_packages_waiting_for_an_index(
    tmp_path: Path, terminal: io.StringIO
) -> None:
    """Packages waiting for their files to show up on an index (verify polls up to 300 s by
    default; 120 s here) stop waiting at once when the main thread is interrupted."""
    projects = [
        Project.load(write_project(tmp_path / "packages" / name, name)) for name in PACKAGES
    ]
    waiting: list[str] = []
    ended: list[str] = []

    def action(project: Project) -> None:
        get_reporter().info(f"Started {project.name}")
        waiting.append(project.name)
        try:
            poll(lambda: None, 120)  # an index that never lists the files
        finally:
            ended.append(project.name)

    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if poll(lambda: True if len(waiting) == 2 else None, 60):
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    clock = Deadline(120)
    with pytest.raises(KeyboardInterrupt):
        for_each(projects, action, jobs=2)
    assert clock.elapsed < 30, "for_each waited for the packages' polling to time out"
    assert sorted(ended) == sorted(waiting) and len(waiting) == 2  # the third never started
    assert "Started" not in terminal.getvalue()
    after: list[BaseException] = []

    def wait_in_a_worker() -> None:
        try:
            Deadline(1).wait(0.01)
        except BaseException as exc:
            after.append(exc)

    worker = threading.Thread(target=wait_in_a_worker)
    worker.start()
    worker.join(30)
    assert after == []  # waiting works again once the interrupt is over


@pytest.fixture
def pushing(make_project: Callable[..., Path]) -> tuple[Path, Path]:
    """A sample project with a bare remote that has its main branch."""
    root = make_project()
    remote = root.parent / "remote.git"
    git(root.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    return root, remote


def _interrupted_release(
    root: Path, blocker: Blocker, start_nox: Callable[..., subprocess.Popen[str]]
) -> tuple[str, int]:
    nox = start_nox(root, "-s", "release", "--", "0.2.0", "--push", "--no-index-check")
    hook = blocker.blocked_pid()
    try:
        os.killpg(nox.pid, signal.SIGINT)  # Ctrl-C: to the terminal's foreground group
        output = finish(nox)
        assert nox.returncode != 0, output
        assert "Traceback" not in output, output
        assert poll(lambda: True if not alive(hook) else None, 10), "the hook outlived nox"
    finally:
        if alive(hook):
            os.kill(hook, signal.SIGKILL)
        blocker.release()
    return output, hook


def test_interrupt_in_pre_push_hook_names_the_state_and_restores(
    pushing: tuple[Path, Path],
    start_nox: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    root, remote = pushing
    blocker = Blocker(tmp_path)
    executable(root / ".git" / "hooks" / "pre-push", "#!/bin/sh\n" + blocker.shell())
    head = git(root, "rev-parse", "HEAD")
    output, _ = _interrupted_release(root, blocker, start_nox)
    assert f"interrupted at step 'push'; the remote 'origin' does not have the tag {TAG}" in output
    assert "the repository was restored" in output
    assert git(root, "rev-parse", "HEAD") == head
    assert TAG not in git(root, "tag", "--list")
    assert TAG not in git(remote, "tag", "--list")


def test_interrupt_after_the_push_landed_keeps_the_release(
    pushing: tuple[Path, Path],
    start_nox: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    # The remote has taken the push; git then updates its remote-tracking ref, and this
    # hook blocks right there: the interrupt comes after the push landed.
    root, remote = pushing
    blocker = Blocker(tmp_path)
    executable(
        root / ".git" / "hooks" / "reference-transaction",
        '#!/bin/sh\n[ "$1" = committed ] || exit 0\ngrep -q " refs/remotes/" || exit 0\n'
        + blocker.shell(),
    )
    output, _ = _interrupted_release(root, blocker, start_nox)
    assert "interrupted during the push; the push went through" in output, output
    assert f"'origin' has the tag {TAG}" in output
    assert "nothing was undone" in output
    assert TAG in git(root, "tag", "--list")
    assert git(remote, "rev-parse", f"{TAG}^{{commit}}") == git(root, "rev-parse", "HEAD")


@pytest.mark.parametrize("terminal", [True, False])
def test_a_command_that_may_prompt_keeps_the_terminal_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    """git push may ask for a passphrase at the terminal: a new session would have none."""
    import pty

    leader, follower = pty.openpty()
    stdin = os.fdopen(follower if terminal else os.open(os.devnull, os.O_RDONLY))
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        session = [sys.executable, "-c", "import os; print(os.getsid(0))"]
        prompting = run(session, cwd=tmp_path, may_prompt=True)
        ordinary = run(session, cwd=tmp_path)
    finally:
        stdin.close()
        os.close(leader)
        if not terminal:
            os.close(follower)
    assert (int(prompting.stdout) == os.getsid(0)) is terminal
    assert int(ordinary.stdout) != os.getsid(0)
