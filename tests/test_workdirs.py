"""The verify environments' working directories: fresh and private every time, at paths
reused within a process (so uv knows the interpreter at that path and need not ask it)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import threading
from pathlib import Path

import pytest

from releasekit._workdirs import fresh_workdir


def test_one_after_another_reuse_the_path_and_start_empty() -> None:
    with fresh_workdir() as first:
        (first / "venv").mkdir()
        (first / "venv" / "leftover.txt").write_text("from the last verify")
    assert not first.exists()
    with fresh_workdir() as second:
        assert second == first
        assert list(second.iterdir()) == []


def test_concurrent_users_get_different_directories() -> None:
    inside = threading.Barrier(3)
    seen: list[Path] = []

    def use() -> None:
        with fresh_workdir() as workdir:
            seen.append(workdir)
            inside.wait(timeout=30)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(seen)) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_the_directory_is_private_to_this_user() -> None:
    with fresh_workdir() as workdir:
        assert stat.S_IMODE(workdir.parent.stat().st_mode) == 0o700


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_uses_a_directory_of_its_own() -> None:
    with fresh_workdir() as workdir:
        parent_root = workdir.parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its slot's directory, then leave at once
        with fresh_workdir() as child:
            os.write(write, str(child.parent).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child_root = Path(pipe.read())
    shutil.rmtree(child_root, ignore_errors=True)  # the child left without its exit handlers
    assert status == 0
    assert child_root != parent_root
