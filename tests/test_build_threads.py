"""find_uv from many threads at once, as monorepo builds call it."""

from __future__ import annotations

import subprocess
import sys

RACE = """
import threading
from releasekit._process import find_uv
barrier = threading.Barrier(16)
errors = []
def look():
    barrier.wait()
    try:
        find_uv()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=look) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_find_uv_is_safe_from_many_threads_in_a_fresh_process() -> None:
    # sysconfig's first use races; only a fresh interpreter has it still to come.
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", RACE], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]", result.stdout
