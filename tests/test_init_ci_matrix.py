"""``init_ci`` for a large monorepo: one workflow whose jobs fan out over the packages (a
GitHub Actions matrix fed by ``changed``, a GitLab ``parallel:matrix``), checked by the real
linters (actionlint, zizmor, GitLab's schema)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML
from test_init_ci_gitlab import jobs, script_lines, valid_pipeline

from conftest import commit_monorepo, git, run_nox, write_project
from releasekit._changes import ChangedPackage
from releasekit.ci.github import matrix_outputs
from releasekit.ci.workflow import MATRIX_FROM

#: The plan job's outputs, one per kind of matrix job.
MATRIX_OUTPUTS = ("packages", "pure", "compiled", "wheels")

NAMES = ("core", "cli", "web", "db", "api", "docs")


def monorepo(root: Path, names: tuple[str, ...] = NAMES) -> Path:
    """A committed monorepo: `core`, and packages requiring it."""
    for name in names:
        requires = () if name == "core" else ("core>=0.1",)
        write_project(root / "packages" / name, name, dependencies=requires)
    return commit_monorepo(root, [f"packages/{name}" for name in names])


def tool(name: str) -> str:
    """A linter installed beside this interpreter (the test dependency group has them)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed (uv sync --group test)"
    return found


def lint_workflow(path: Path) -> None:
    actionlint = subprocess.run(
        [tool("actionlint"), "-no-color", str(path)], capture_output=True, text=True, check=False
    )
    assert actionlint.returncode == 0, actionlint.stdout + actionlint.stderr
    zizmor = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "low", "--no-progress", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr


def test_a_large_monorepo_gets_one_matrix_workflow(tmp_path: Path) -> None:
    assert len(NAMES) == MATRIX_FROM
    root = monorepo(tmp_path)
    result = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    workflows = sorted(p.name for p in (root / ".github" / "workflows").iterdir())
    assert workflows == ["publish.yml"]
    path = root / ".github" / "workflows" / "publish.yml"
    lint_workflow(path)
    text = path.read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    assert 'tags: ["core-v*", "cli-v*", "web-v*", "db-v*", "api-v*", "docs-v*"]' in text
    assert 'nox -s changed -- --since "$BEFORE"' in text
    assert 'nox -s changed -- --tag "$GITHUB_REF_NAME"' in text
    workflow = YAML(typ="safe").load(text)
    assert workflow["jobs"]["plan"]["outputs"] == {
        name: f"${{{{ steps.changed.outputs.{name} }}}}" for name in MATRIX_OUTPUTS
    }
    fanned = {name: job for name, job in workflow["jobs"].items() if "strategy" in job}
    assert set(fanned) == {
        "build",
        "sdist",
        "wheels",
        "gather",
        "testpypi",
        "verify-testpypi",
        "pypi",
        "verify-pypi",
        "publish-release",
    }
    # pure packages build on one runner, compiled ones (none here: skipped) by cibuildwheel
    fed_by = {"build": "pure", "sdist": "compiled", "wheels": "wheels", "gather": "compiled"}
    for name, job in fanned.items():
        output = fed_by.get(name, "packages")
        assert job["strategy"]["matrix"]["include"] == (
            f"${{{{ fromJSON(needs.plan.outputs.{output}) }}}}"
        )
        assert "plan" in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])
        runs = [step["run"] for step in job["steps"] if "nox -s" in step.get("run", "")]
        if name == "wheels":  # cibuildwheel's action, from the sdist: no session, no checkout
            assert not runs and "env" not in job
            continue
        assert job["env"] == {"PACKAGE": "${{ matrix.package }}"}
        assert runs and all(run.endswith('--package "$PACKAGE"') for run in runs), runs
    with_token = sorted(n for n, j in workflow["jobs"].items() if "id-token" in j["permissions"])
    assert with_token == ["pypi", "testpypi"]


def test_the_matrix_reads_only_what_changed_prints(tmp_path: Path) -> None:
    """Every `matrix.X` the workflow names is a field of the plan `changed` prints, and the
    plan job's command, run in the repository, prints a plan the matrix takes."""
    root = monorepo(tmp_path)
    assert run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono").returncode == 0
    text = (root / ".github" / "workflows" / "publish.yml").read_text()
    compiled = ChangedPackage("n", "p", "p/dist", 0, "files", ("windows",))
    outputs = matrix_outputs([compiled])
    assert list(outputs) == list(MATRIX_OUTPUTS)
    fields = {key for value in outputs.values() for entry in json.loads(value) for key in entry}
    assert fields == set(compiled.as_json()) | {"os"}
    named = set(re.findall(r"matrix\.(\w+)", text))
    assert named and named <= fields, named - fields
    (root / "packages" / "core" / "README.md").write_text("# core, changed\n")
    git(root, "commit", "-qam", "fix: core")
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "changed", "--", "--since", "HEAD~1"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "GITHUB_OUTPUT"}
        | {"NOX_SCRIPT_MODE": "none", "CI": "true"},
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [entry["package"] for entry in plan] == list(NAMES)  # core, then its dependents
    assert plan[0]["dist"] == "packages/core/dist" and plan[1]["layer"] == 1


def test_no_matrix_keeps_one_workflow_per_package(tmp_path: Path) -> None:
    root = monorepo(tmp_path)
    result = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono", "--no-matrix")
    assert result.returncode == 0, result.stdout
    written = sorted(p.name for p in (root / ".github" / "workflows").iterdir())
    assert written == sorted(f"publish-{name}.yml" for name in NAMES)


def test_a_small_monorepo_gets_the_matrix_when_asked(tmp_path: Path) -> None:
    root = monorepo(tmp_path, ("core", "cli"))
    per_package = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono")
    assert per_package.returncode == 0, per_package.stdout
    assert (root / ".github" / "workflows" / "publish-cli.yml").exists()
    asked = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/mono", "--matrix")
    assert asked.returncode == 0, asked.stdout
    assert (
        "fromJSON(needs.plan.outputs.packages)"
        in (root / ".github" / "workflows" / "publish.yml").read_text()
    )
    refused = run_nox(
        root, "-s", "init_ci", "--", "--repository", "acme/mono", "--matrix", "--package", "cli"
    )
    assert refused.returncode != 0
    assert "covers every package" in refused.stdout


def test_gitlab_gets_one_pipeline_with_a_parallel_matrix(tmp_path: Path) -> None:
    root = monorepo(tmp_path)
    result = run_nox(root, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    assert not (root / ".gitlab").exists()
    path = root / ".gitlab-ci.yml"
    loaded = valid_pipeline(path)
    text = path.read_text()
    matrix = loaded[".packages"]["parallel"]["matrix"]
    assert [entry["PACKAGE"] for entry in matrix] == list(NAMES)
    assert matrix[1] == {
        "PACKAGE": "cli",
        "PACKAGE_FILES": "packages/cli/**/*",
        "TAG_PATTERN": r"/^cli\-v.+\z/",
    }
    every = jobs(text)
    fanned = sorted(name for name, job in every.items() if ".packages" in job.get("extends", []))
    assert fanned == sorted(
        ["testpypi", "verify-testpypi", "pypi", "verify-pypi", "gitlab-release"]
    )
    assert every["build"]["parallel"]["matrix"] == matrix  # every package is pure here
    assert not any(name.startswith(("sdist", "wheels")) for name in every)
    assert every["build"]["artifacts"]["paths"] == [f"packages/{n}/dist/" for n in NAMES]
    assert sorted(name for name, job in every.items() if "id_tokens" in job) == [
        "pypi",
        "testpypi",
    ]
    sessions = [line for line in script_lines(text) if "nox -s" in line]
    assert all(
        line.endswith('--package "$PACKAGE"') for line in sessions if "release --" not in line
    )
    assert all("${" not in line for line in script_lines(text))
