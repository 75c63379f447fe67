"""``init_ci`` for a large monorepo holding a compiled package: in the one matrix workflow its
sdist, cibuildwheel and gathering jobs, fed by ``changed``'s outputs, the pure packages built
as before; on GitLab jobs of its own beside the pure packages' matrix. Checked by the real
linters (actionlint, zizmor, GitLab's schema), and by playing GitHub's rules for skipped
jobs over the workflow's conditions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from test_changed import run_changed, step_outputs
from test_init_ci_gitlab import valid_pipeline
from test_init_ci_matrix import NAMES, lint_workflow, monorepo
from test_init_ci_wheels import CIBUILDWHEEL

from conftest import git, run_nox
from releasekit._changes import NO_COMMIT
from releasekit.ci.github import WHEEL_RUNNERS
from releasekit.ci.workflow import CIBUILDWHEEL_COMMIT, CIBUILDWHEEL_VERSION, runners_for

#: The packages the fixture makes compiled: `db` by its [tool.cibuildwheel] table (every
#: platform family), `api` by setup.py passing ext_modules with wheel-platforms naming two.
COMPILED = {"db": ("manylinux", "musllinux", "macos", "windows"), "api": ("manylinux", "windows")}
SETUP_PY = (
    "from setuptools import Extension, setup\n\n"
    'setup(ext_modules=[Extension("api_speedups", ["speedups.c"])])\n'
)


def compiled_monorepo(root: Path) -> Path:
    """The six-package monorepo of test_init_ci_matrix with `db` and `api` compiled."""
    monorepo(root)
    db = root / "packages" / "db" / "pyproject.toml"
    db.write_text(db.read_text() + CIBUILDWHEEL)
    api = root / "packages" / "api"
    (api / "setup.py").write_text(SETUP_PY)
    with_platforms(api / "pyproject.toml", '["manylinux", "windows"]')
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: compiled db and api")
    return root


def with_platforms(pyproject: Path, families: str) -> None:
    """Set wheel-platforms in the [tool.releasekit] table of ``pyproject``."""
    text = pyproject.read_text()
    assert "\n[tool.releasekit]\n" in text
    pyproject.write_text(
        text.replace(
            "\n[tool.releasekit]\n", f"\n[tool.releasekit]\nwheel-platforms = {families}\n"
        )
    )


def github_jobs(root: Path) -> tuple[str, dict[str, Any]]:
    result = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    path = root / ".github" / "workflows" / "publish.yml"
    lint_workflow(path)
    text = path.read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    return text, YAML(typ="safe").load(text)["jobs"]


def needs_of(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def test_compiled_packages_get_sdist_wheels_and_gather_jobs(tmp_path: Path) -> None:
    text, jobs = github_jobs(compiled_monorepo(tmp_path))
    sdist, wheels, gather = jobs["sdist"], jobs["wheels"], jobs["gather"]
    assert jobs["build"]["if"] == "needs.plan.outputs.pure != '[]'"
    assert sdist["if"] == gather["if"] == "needs.plan.outputs.compiled != '[]'"
    assert wheels["if"] == "needs.plan.outputs.wheels != '[]'"
    assert needs_of(wheels) == ["plan", "sdist"] and needs_of(gather) == ["plan", "sdist", "wheels"]
    assert wheels["runs-on"] == "${{ matrix.os }}" and wheels["strategy"]["fail-fast"] is False
    assert [s["run"] for s in sdist["steps"] if "run" in s] == [
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist --dev --package "$PACKAGE"',
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist --package "$PACKAGE"',
    ]
    (cibuildwheel,) = [s for s in wheels["steps"] if "cibuildwheel" in s.get("uses", "")]
    assert f"pypa/cibuildwheel@{CIBUILDWHEEL_COMMIT} # v{CIBUILDWHEEL_VERSION}\n" in text
    assert cibuildwheel["with"]["package-dir"] == "${{ steps.sdist.outputs.sdist }}"
    (finder,) = [s for s in wheels["steps"] if s.get("id") == "sdist"]
    assert finder["shell"] == "bash" and finder["env"] == {"DIST": "${{ matrix.dist }}"}
    artifacts = {
        name: [
            (s["uses"].split("@")[0].split("/")[1], s["with"].get("name") or s["with"]["pattern"])
            for s in job["steps"]
            if "-artifact@" in s.get("uses", "")
        ]
        for name, job in jobs.items()
        if name in ("build", "sdist", "wheels", "gather")
    }
    assert artifacts == {
        "build": [("upload-artifact", "dist-${{ matrix.package }}")],
        "sdist": [("upload-artifact", "dist-${{ matrix.package }}~sdist")],
        "wheels": [
            ("download-artifact", "dist-${{ matrix.package }}~sdist"),
            ("upload-artifact", "dist-${{ matrix.package }}~wheels-${{ matrix.os }}"),
        ],
        # `~` is in no package name: `dist-db~*` never takes another package's files
        "gather": [
            ("download-artifact", "dist-${{ matrix.package }}~*"),
            ("upload-artifact", "dist-${{ matrix.package }}"),
        ],
    }
    assert [s["run"] for s in gather["steps"] if "run" in s] == [
        'uvx --with "$RELEASEKIT" nox -s check_dist -- --package "$PACKAGE"'
    ]
    for name in ("sdist", "wheels", "gather", "build"):  # no credential near a build
        assert jobs[name]["permissions"] == {"contents": "read"}
        assert "secrets." not in json.dumps(jobs[name]) and "environment" not in jobs[name]
    for publishing in ("testpypi", "pypi"):
        assert needs_of(jobs[publishing]) == ["plan", "build", "gather"]


def test_every_matrix_field_a_job_reads_is_in_the_output_it_fans_out_over(
    tmp_path: Path,
) -> None:
    """The plan `changed` prints for the repository, as GitHub would set it: each job's
    `matrix.X` is a field of the entries of the output its matrix includes, and the compiled
    packages get the runners of their families."""
    root = compiled_monorepo(tmp_path / "repo")
    _, jobs = github_jobs(root)
    outputs = tmp_path / "github_output"
    result = run_changed(root, "--since", NO_COMMIT, github_output=outputs)
    assert result.returncode == 0, result.stdout + result.stderr
    found = step_outputs(outputs)
    assert [e["package"] for e in found["compiled"]] == ["db", "api"]
    assert {e["package"] for e in found["pure"]} == set(NAMES) - set(COMPILED)
    assert {e["package"]: tuple(e["platforms"]) for e in found["compiled"]} == COMPILED
    assert [(e["package"], e["os"]) for e in found["wheels"]] == [
        (name, runner)
        for name, families in COMPILED.items()
        for runner in runners_for(families, WHEEL_RUNNERS)
    ]
    assert ("api", "macos-latest") not in [(e["package"], e["os"]) for e in found["wheels"]]
    for name, job in jobs.items():
        if "strategy" not in job:
            continue
        output = re.fullmatch(
            r"\$\{\{ fromJSON\(needs\.plan\.outputs\.(\w+)\) \}\}",
            job["strategy"]["matrix"]["include"],
        )
        assert output, name
        entries = found[output.group(1)]
        read = set(re.findall(r"matrix\.(\w+)", json.dumps(job)))
        assert entries and read <= set(entries[0]), (name, read - set(entries[0]))


def _condition(expression: str, results: Mapping[str, str], context: Mapping[str, Any]) -> bool:
    """A job's `if:` evaluated as GitHub does for the few forms these workflows use."""
    python = expression.strip().removeprefix("${{").removesuffix("}}")
    python = python.replace("!cancelled()", "True").replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"needs\.([\w-]+)\.result", r"results['\1']", python)
    python = re.sub(r"needs\.plan\.outputs\.(\w+)", r"outputs['\1']", python)
    python = re.sub(r"github\.(\w+)", r"github['\1']", python)
    assert "!" not in python.replace("!=", ""), python
    return bool(eval(python, {}, dict(context, results=results)))  # noqa: S307


def play(
    jobs: Mapping[str, Any], ref_type: str, planned: Mapping[str, list[str]], fails: str = ""
) -> set[str]:
    """The jobs of the workflow that run for a push of ``ref_type`` whose plan holds the pure
    and compiled packages ``planned``, with GitHub's rules for skipped jobs: a job whose
    `if:` holds no status function runs only when every job before it, directly or through
    others, succeeded; one with `!cancelled()` only as its `if:` says. ``fails``: a job
    that fails."""
    outputs = {name: json.dumps(entries) for name, entries in planned.items()}
    outputs["packages"] = json.dumps(planned["pure"] + planned["compiled"])
    outputs["wheels"] = json.dumps([[name, "runner"] for name in planned["compiled"]])
    context = {
        "outputs": outputs,
        "github": {"repository": "acme/mono", "event_name": "push", "ref_type": ref_type},
    }
    results: dict[str, str] = {}
    before: dict[str, set[str]] = {}
    for name, job in jobs.items():  # each job comes after those it needs
        if name == "release":  # run by hand only
            continue
        before[name] = {a for need in needs_of(job) for a in before[need] | {need}}
        expression = job.get("if")
        status = expression is not None and "cancelled()" in expression
        runs = (status or all(results[a] == "success" for a in before[name])) and (
            expression is None or _condition(expression, results, context)
        )
        results[name] = ("failure" if name == fails else "success") if runs else "skipped"
    return {name for name, result in results.items() if result != "skipped"}


BRANCH_UPLOADS = {"testpypi", "verify-testpypi"}
TAG_UPLOADS = {"pypi", "verify-pypi", "publish-release"}


@pytest.mark.parametrize(
    ("ref_type", "pure", "compiled", "expected"),
    [
        ("branch", ["web"], [], {"plan", "build"} | BRANCH_UPLOADS),
        ("branch", [], ["db"], {"plan", "sdist", "wheels", "gather"} | BRANCH_UPLOADS),
        (
            "branch",
            ["web"],
            ["db"],
            {"plan", "build", "sdist", "wheels", "gather"} | BRANCH_UPLOADS,
        ),
        ("tag", ["web"], [], {"plan", "build"} | TAG_UPLOADS),
        ("tag", [], ["db"], {"plan", "sdist", "wheels", "gather"} | TAG_UPLOADS),
        ("branch", [], [], {"plan"}),
    ],
)
def test_a_pure_only_and_a_compiled_only_push_both_publish(
    tmp_path: Path, ref_type: str, pure: list[str], compiled: list[str], expected: set[str]
) -> None:
    _, jobs = github_jobs(compiled_monorepo(tmp_path))
    assert play(jobs, ref_type, {"pure": pure, "compiled": compiled}) == expected


@pytest.mark.parametrize("fails", ["build", "wheels", "gather"])
def test_a_failed_build_of_any_package_stops_every_upload(tmp_path: Path, fails: str) -> None:
    _, jobs = github_jobs(compiled_monorepo(tmp_path))
    for ref_type in ("branch", "tag"):
        ran = play(jobs, ref_type, {"pure": ["web"], "compiled": ["db"]}, fails=fails)
        assert fails in ran and not ran & (BRANCH_UPLOADS | TAG_UPLOADS), ran


def test_gitlab_gives_compiled_packages_their_own_wheel_jobs(tmp_path: Path) -> None:
    root = compiled_monorepo(tmp_path)
    result = run_nox(root, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    said = " ".join(result.stdout.split())
    assert "db expects wheels for macos, windows too" in said
    assert "api expects wheels for windows too" in said
    path = root / ".gitlab-ci.yml"
    loaded = valid_pipeline(path)
    everyone = [entry["PACKAGE"] for entry in loaded[".packages"]["parallel"]["matrix"]]
    assert everyone == list(NAMES)  # uploads and verification: every package
    built = [entry["PACKAGE"] for entry in loaded["build"]["parallel"]["matrix"]]
    assert built == [name for name in NAMES if name not in COMPILED]
    assert loaded["build"]["artifacts"]["paths"] == [f"packages/{name}/dist/" for name in built]
    for name in COMPILED:
        assert loaded[f".releasekit-{name}"] == {
            "extends": ".releasekit",
            "variables": {
                "PACKAGE": name,
                "PACKAGE_FILES": f"packages/{name}/**/*",
                "TAG_PATTERN": rf"/^{name}\-v.+\z/",
            },
        }
        rules = loaded[f".build-{name}"]["rules"]
        assert rules[0]["when"] == "never"
        assert rules[1:] == [{"if": "$CI_COMMIT_TAG"}, {"changes": ["$PACKAGE_FILES"]}]
        assert loaded[f"sdist-{name}"]["script"][0].splitlines()[1].strip() == (
            'uvx --with "$RELEASEKIT" nox -s build -- --sdist --package "$PACKAGE"'
        )
        assert loaded[f"wheels-linux-{name}"]["needs"] == [f"sdist-{name}"]
        assert loaded[f"wheels-linux-{name}"]["artifacts"]["paths"] == [
            f"packages/{name}/dist/*.whl"
        ]
        assert loaded[f"build-{name}"]["needs"] == [f"sdist-{name}", f"wheels-linux-{name}"]
        assert loaded[f"build-{name}"]["script"] == [
            'uvx --with "$RELEASEKIT" nox -s check_dist -- --package "$PACKAGE"'
        ]
        assert loaded[f".build-{name}"]["stage"] == "build"
        for job in ("sdist", "wheels-linux", "build"):
            assert loaded[f"{job}-{name}"]["extends"] == f".build-{name}"
    assert list(loaded).index("build-api") < list(loaded).index("testpypi")


def test_gitlab_with_only_compiled_packages_has_no_pure_build_matrix(tmp_path: Path) -> None:
    root = monorepo(tmp_path, ("core", "cli"))
    for name in ("core", "cli"):
        with_platforms(root / "packages" / name / "pyproject.toml", '["manylinux"]')
    args = ("--ci", "gitlab", "--repository", "acme/mono", "--matrix")
    result = run_nox(root, "-s", "init_ci", "--", *args)
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout.lower()
    path = root / ".gitlab-ci.yml"
    loaded = valid_pipeline(path)
    assert "build" not in loaded and "without extension modules" not in path.read_text()
    assert {"build-core", "build-cli", "wheels-linux-cli"} <= set(loaded)
