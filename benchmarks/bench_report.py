"""The bench report: Markdown tables (``.bench/bench.md``) and the plot (``.bench/bench.svg``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_plan import plan_lines

NAMES = {"releasekit": "releasekit", "uv": "bare uv", "hand": "hand-run"}


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        "# releasekit bench",
        "",
        f"{report['machine']}; medians of {report['rounds']} rounds; one local pypiserver;"
        " each pipeline in a fresh process. Compare ratios measured in one run: absolute"
        " times vary with the machine's load.",
        "",
        "- **releasekit**: one `nox -s build check_dist upload_testpypi verify_testpypi`"
        " (per phase: the same steps timed in-process through the library API).",
        "- **bare uv**: `uv build`, `uv publish` (token in `UV_PUBLISH_TOKEN`), `uv venv` +"
        " `uv pip install --no-config` from the index, the CLI's `--version`; checks nothing,"
        " never polls.",
        "- **hand-run**: `python -m build`, `twine check --strict`, `twine upload`,"
        " `python -m venv` + `pip install` from the index, the CLI's `--version`.",
        "- **peak memory**: the largest resident set of any one process of the pipeline's"
        " tree (`ru_maxrss` of its children, measured in a fresh process per run).",
        "- releasekit builds in a shared build environment per set of build requirements"
        " (made by uv in the first round, reused after); the bytecode of the bench's"
        " environment is compiled once beforehand, as `pip install` leaves it.",
        "",
    ]
    for size, data in report["sizes"].items():
        seconds, peak = data["seconds"], data["peak_mib"]
        lines += [
            f"## {size} package ({data['modules']} modules)",
            "",
            "| phase | releasekit (s) | bare uv (s) | hand-run (s) |",
            "|---|---|---|---|",
        ]
        for label, row in data["phases"].items():
            lines.append(
                f"| {label} | {_s(row['releasekit'])} | {_s(row['uv'])} | {_s(row['hand'])} |"
            )
        lines += [
            f"| **total** (releasekit: one nox invocation) | **{seconds['releasekit']:.2f}** | "
            f"{seconds['uv']:.2f} | {seconds['hand']:.2f} |",
            f"| releasekit / this | | **{data['ratio_to_uv']:.2f}** | "
            f"**{data['ratio_to_hand']:.2f}** |",
            f"| peak memory (MiB) | {_mib(peak['releasekit'])} | {_mib(peak['uv'])} | "
            f"{_mib(peak['hand'])} |",
            "",
        ]
    mono = report["monorepo"]
    lines += [
        f"## monorepos (small packages; medians of {mono['rounds']} rounds)",
        "",
        "releasekit: the four sessions on every package, one nox invocation (packages"
        " concurrently). Bare uv and hand-run: their sequence package after package, each"
        " package installed in its own fresh environment. Each round against a fresh local"
        " index, as each size: pypiserver lists and stats every file it holds on every"
        " request, which a real index does not.",
        "",
        "| packages | releasekit (s) | x one | bare uv (s) | x one | hand-run (s) | x one |"
        " releasekit / uv | peak MiB (releasekit / uv / hand) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for count in map(str, mono["counts"]):
        cells = []
        for tool in ("releasekit", "uv", "hand"):
            cells.append(_s(mono["seconds"][tool].get(count)))
            cells.append(_s(mono["times_one"][tool].get(count)))
        peak = " / ".join(_mib(mono["peak_mib"][t].get(count)) for t in NAMES)
        lines.append(
            f"| {count} | {' | '.join(cells)} | {_s(mono['ratio_to_uv'][count])} | {peak} |"
        )
    lines += _breakdown_lines(report)
    lines += plan_lines(report["plan"]) if "plan" in report else []
    notice = report["notice"]
    lines += [
        "",
        "## verify noticing an upload",
        "",
        f"Upload completed → verify noticed: median {notice['median']:.3f} s, "
        f"max {notice['max']:.3f} s over {len(notice['samples'])} uploads "
        f"(placed {', '.join(str(d) for d in notice['delays'])} s into the polling).",
        "",
        "## goals (issue 14): measured figure and ratio",
        "",
    ]
    lines += ["| goal | measured | ratio | limit | |", "|---|---|---|---|---|"]
    for row in report["targets"]:
        verdict = "met" if row["met"] else "**MISSED**"
        lines.append(
            f"| {row['goal']} | {row['figure']} | {row['ratio']:.2f} | {row['limit']:g} |"
            f" {verdict} |"
        )
    if report.get("plot"):
        lines += ["", f"![time against package count]({Path(report['plot']).name})"]
    return "\n".join(lines) + "\n"


def _breakdown_lines(report: dict[str, Any]) -> list[str]:
    """Where releasekit's single-package time goes."""
    small = report["sizes"].get("small")
    where = report["breakdown"]
    lines = [
        "",
        "## where releasekit's single-package time goes (small package)",
        "",
        "| part | seconds |",
        "|---|---|",
    ]
    for label, seconds in where["fixed"].items():
        lines.append(f"| {label} | {seconds:.3f} |")
    imports = where["imports"]
    lines.append(
        f"| imports of one pipeline invocation (`-X importtime`) | {imports['total']:.3f} |"
    )
    if small:
        for phase, seconds in small["in_process"].items():
            lines.append(f"| in-process: {phase} | {seconds:.3f} |")
    lines += [
        "",
        "Costliest top-level imports of one pipeline invocation: "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in imports["top"].items())
        + ".",
    ]
    return lines


def plot(report: dict[str, Any], path: Path) -> str | None:
    """Time against package count for each pipeline, as SVG; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mono = report["monorepo"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for tool, name in NAMES.items():
        points = sorted((int(count), s) for count, s in mono["seconds"][tool].items())
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=name)
    axes.set_xticks(mono["counts"])
    axes.set_xlabel("packages in the monorepo")
    axes.set_ylabel("seconds (build, check, upload, verify)")
    axes.set_title(f"Time against package count ({report['machine']})", fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="svg")
    plt.close(figure)
    return str(path)
