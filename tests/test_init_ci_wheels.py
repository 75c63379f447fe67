"""``nox -s init_ci`` for a compiled project: a cibuildwheel job matrix whose wheels the
``build`` job gathers with the sdist and checks, on GitHub Actions and GitLab CI; and
``build -- --sdist``, which that matrix starts from."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from test_init_ci_gitlab import ALLOWED_IN_SCRIPTS, script_lines, valid_pipeline

from conftest import run_nox, write_project
from releasekit._settings import WHEEL_PLATFORMS
from releasekit.ci.github import WHEEL_RUNNERS
from releasekit.ci.workflow import CIBUILDWHEEL_COMMIT, CIBUILDWHEEL_VERSION, runners_for

CIBUILDWHEEL = '\n[tool.cibuildwheel]\nbuild = "cp312-*"\n'


def compiled_project(make_project: Callable[..., Path], **kwargs: Any) -> Path:
    """A sample project whose pyproject.toml configures cibuildwheel, committed."""
    root = make_project(**kwargs)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + CIBUILDWHEEL)
    return root


def github_workflow(root: Path, *args: str) -> tuple[str, dict[str, Any]]:
    result = run_nox(root, "-s", "init_ci", "--", "--repository", "acme/fast", *args)
    assert result.returncode == 0, result.stdout
    text = (root / ".github" / "workflows" / "publish.yml").read_text()
    return text, YAML(typ="safe").load(text)["jobs"]


def lint(workflow: Path) -> None:
    """actionlint and zizmor, as the lint session runs them on this repository's workflows."""
    tools = Path(sys.executable).parent
    for command in (
        ["actionlint", "-no-color", str(workflow)],
        ["zizmor", "--offline", "--min-severity", "low", str(workflow)],
    ):
        found = shutil.which(command[0], path=str(tools)) or shutil.which(command[0])
        assert found, f"{command[0]} is not installed (the test dependency group has it)"
        result = subprocess.run(
            [found, *command[1:]], capture_output=True, text=True, check=False, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_github_builds_the_wheels_from_the_sdist_then_gathers_and_checks(
    make_project: Callable[..., Path],
) -> None:
    root = compiled_project(make_project, name="fast-thing")
    text, jobs = github_workflow(root)
    assert not re.search(r"@[A-Z_]+@", text)
    assert list(jobs)[:3] == ["sdist", "wheels", "build"]
    sdist, wheels, build = jobs["sdist"], jobs["wheels"], jobs["build"]
    assert [s["run"] for s in sdist["steps"] if "run" in s] == [
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist --dev',
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist',
    ]
    assert (
        sdist["outputs"]["sdist"] == "${{ steps.dev.outputs.sdist || steps.tagged.outputs.sdist }}"
    )
    assert wheels["needs"] == "sdist" and wheels["strategy"]["fail-fast"] is False
    assert wheels["strategy"]["matrix"]["os"] == runners_for(WHEEL_PLATFORMS, WHEEL_RUNNERS)
    assert wheels["strategy"]["matrix"]["os"] == [
        "ubuntu-latest",
        "ubuntu-24.04-arm",
        "macos-latest",
        "windows-latest",
    ]
    (cibuildwheel,) = [s for s in wheels["steps"] if "cibuildwheel" in s["uses"]]
    assert cibuildwheel["uses"] == f"pypa/cibuildwheel@{CIBUILDWHEEL_COMMIT}"
    assert f"pypa/cibuildwheel@{CIBUILDWHEEL_COMMIT} # v{CIBUILDWHEEL_VERSION}\n" in text
    assert cibuildwheel["with"]["package-dir"] == "${{ needs.sdist.outputs.sdist }}"
    uploaded = {
        s["with"]["name"]
        for job in jobs.values()
        for s in job["steps"]
        if "upload-artifact" in s.get("uses", "")
    }
    assert uploaded == {
        "dist-fast-thing.sdist",
        "dist-fast-thing.wheels-${{ matrix.os }}",
        "dist-fast-thing",
    }
    assert build["needs"] == ["sdist", "wheels"]
    (gather,) = [s for s in build["steps"] if "download-artifact" in s.get("uses", "")]
    assert gather["with"] == {
        "pattern": "dist-fast-thing.*",
        "merge-multiple": True,
        "path": "dist/",
    }
    assert [s["run"] for s in build["steps"] if "run" in s] == [
        'uvx --with "$RELEASEKIT" nox -s check_dist'
    ]
    for publishing in ("testpypi", "pypi"):
        assert jobs[publishing]["needs"] == "build"
        assert "nox -s check_dist upload_" in str(jobs[publishing]["steps"])
    uses = re.findall(r"uses: (\S+)", text)
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses
    lint(root / ".github" / "workflows" / "publish.yml")


def test_wheel_platforms_choose_the_runners(make_project: Callable[..., Path]) -> None:
    root = make_project(releasekit='wheel-platforms = ["windows", "manylinux"]')
    text, jobs = github_workflow(root)
    assert jobs["wheels"]["strategy"]["matrix"]["os"] == [
        "ubuntu-latest",
        "ubuntu-24.04-arm",
        "windows-latest",
    ]
    assert "wheel-platforms manylinux, windows:" in text


def test_a_compiled_monorepo_package_gets_its_own_wheel_jobs(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_project(tmp_path / "packages" / name, name)
    alpha = tmp_path / "packages" / "alpha" / "pyproject.toml"
    alpha.write_text(alpha.read_text() + CIBUILDWHEEL)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.releasekit]\npackages = ["packages/alpha", "packages/beta"]\n'
    )
    (tmp_path / "noxfile.py").write_text((tmp_path / "packages/alpha/noxfile.py").read_text())
    result = run_nox(tmp_path, "-s", "init_ci", "--", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    workflows = tmp_path / ".github" / "workflows"
    jobs = YAML(typ="safe").load((workflows / "publish-alpha.yml").read_text())["jobs"]
    assert [s["run"] for s in jobs["sdist"]["steps"] if "run" in s] == [
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist --dev --package "$PACKAGE"',
        'uvx --with "$RELEASEKIT" nox -s build -- --sdist --package "$PACKAGE"',
    ]
    assert jobs["sdist"]["steps"][-1]["with"]["path"] == "packages/alpha/dist/*.tar.gz"
    assert "cibuildwheel" not in (workflows / "publish-beta.yml").read_text()


def test_a_pure_project_gets_the_one_build_job(project_dir: Path) -> None:
    text, jobs = github_workflow(project_dir)
    assert "sdist" not in jobs and "wheels" not in jobs
    assert "cibuildwheel" not in text and "--sdist" not in text
    assert jobs["build"]["name"] == "build and check_dist"


def test_gitlab_builds_linux_wheels_in_docker_and_says_what_it_cannot(
    make_project: Callable[..., Path],
) -> None:
    root = compiled_project(make_project)
    result = run_nox(root, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/fast")
    assert result.returncode == 0, result.stdout
    assert "expects wheels for macos, windows too" in result.stdout
    assert (
        'wheel-platforms lists only the platforms you ship, e.g. ["manylinux", "musllinux"]'
        in " ".join(result.stdout.split())
    )
    path = root / ".gitlab-ci.yml"
    jobs = valid_pipeline(path)
    text = path.read_text()
    assert jobs["wheels-linux"]["needs"] == ["sdist"]
    assert (
        jobs["wheels-linux"]["variables"]["CIBUILDWHEEL"] == f"cibuildwheel=={CIBUILDWHEEL_VERSION}"
    )
    assert jobs["wheels-linux"]["artifacts"]["paths"] == ["dist/*.whl"]
    assert jobs["build"]["needs"] == ["sdist", "wheels-linux"]
    assert jobs["build"]["script"] == ['uvx --with "$RELEASEKIT" nox -s check_dist']
    assert jobs["testpypi"]["needs"] == ["build"] and jobs["pypi"]["needs"] == ["build"]
    for name in ("sdist", "wheels-linux", "build"):
        assert jobs[name]["extends"] == ".build"
    assert jobs[".build"]["rules"][0]["when"] == "never"
    for line in script_lines(text):
        names = set(re.findall(r"\$([A-Za-z_@][A-Za-z0-9_]*)?", line))
        assert names <= ALLOWED_IN_SCRIPTS | {"CIBUILDWHEEL", "DIST_DIR"}, line


def test_gitlab_says_nothing_when_the_linux_wheels_are_all(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(releasekit='wheel-platforms = ["musllinux", "manylinux"]')
    result = run_nox(root, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/fast")
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout
    assert "wheel-platforms: manylinux, musllinux)" in (root / ".gitlab-ci.yml").read_text()


@pytest.mark.slow
def test_build_sdist_only_names_it_as_a_step_output(project_dir: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "github-output"
    result = run_nox(
        project_dir, "-s", "build", "--", "--sdist", env={"GITHUB_OUTPUT": str(outputs)}
    )
    assert result.returncode == 0, result.stdout
    assert sorted(p.name for p in (project_dir / "dist").iterdir()) == ["sample_pkg-0.1.0.tar.gz"]
    assert outputs.read_text() == "sdist=dist/sample_pkg-0.1.0.tar.gz\n"
