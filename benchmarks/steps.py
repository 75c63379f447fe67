"""Run one benchmark pipeline in a fresh process: the steps come as JSON on stdin.

Each step is ``{"command": [...], "cwd": "...", "env": {...}}`` (the environment travels on
stdin, never on a command line). Prints one JSON line: the seconds of each step, each
step's output, and the peak resident memory of the process tree this pipeline started,
which is ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest single descendant (KiB),
measured here so that no other pipeline's children count. On a failing step, prints its
command and output and exits 1. Without the ``resource`` module (Windows) the peak is null.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

try:
    import resource
except ImportError:  # Windows: no peak memory figure
    resource = None  # type: ignore[assignment]


def main() -> int:
    steps = json.load(sys.stdin)
    seconds, outputs = [], []
    for step in steps:
        started = time.perf_counter()
        result = subprocess.run(
            step["command"],
            cwd=step["cwd"],
            env=step["env"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        seconds.append(time.perf_counter() - started)
        if result.returncode != 0:
            print(json.dumps({"failed": step["command"][:5], "output": result.stdout}))
            return 1
        outputs.append(result.stdout)
    peak = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if sys.platform == "darwin":  # bytes there, KiB on Linux
            peak //= 1024
    print(json.dumps({"seconds": seconds, "outputs": outputs, "peak_kib": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
