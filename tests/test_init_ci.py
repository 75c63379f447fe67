"""``nox -s init_ci``: the publishing workflow written for a user's project."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOXFILE, run_nox, write_project
from releasekit import __version__


def test_init_ci_writes_the_workflow_for_the_project(make_project: Callable[..., Path]) -> None:
    project = make_project(name="Sample_Pkg", releasekit='tag-format = "v{version}"')
    result = run_nox(project, "-s", "init_ci", "--", "--repository", "acme/sample")
    assert result.returncode == 0, result.stdout
    text = (project / ".github" / "workflows" / "publish.yml").read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    assert 'tags: ["v*"]' in text
    assert "github.repository == 'acme/sample'" in text
    assert f'RELEASEKIT: "releasekit=={__version__}"' in text
    assert "name: dist-sample-pkg" in text
    assert 'path: "dist/"' in text
    assert "nox -s check_dist upload_pypi\n" in text
    assert "nox -s verify_pypi\n" in text
    assert "--package" not in text and "PACKAGE" not in text


def test_init_ci_keeps_a_different_file_unless_forced(project_dir: Path) -> None:
    workflow = project_dir / ".github" / "workflows" / "publish.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("name: mine\n")
    refused = run_nox(project_dir, "-s", "init_ci", "--", "--repository", "acme/sample")
    assert refused.returncode != 0
    assert "exists and differs" in refused.stdout
    assert "Traceback" not in refused.stdout
    assert workflow.read_text() == "name: mine\n"
    forced = run_nox(project_dir, "-s", "init_ci", "--", "--repository", "acme/sample", "--force")
    assert forced.returncode == 0, forced.stdout
    assert "upload_testpypi" in workflow.read_text()


def test_init_ci_refuses_a_repository_that_is_not_owner_name(project_dir: Path) -> None:
    result = run_nox(project_dir, "-s", "init_ci", "--", "--repository", "sample")
    assert result.returncode != 0
    assert "not a GitHub OWNER/NAME" in result.stdout
    assert not (project_dir / ".github").exists()


def test_init_ci_writes_one_workflow_per_monorepo_package(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_project(tmp_path / "packages" / name, name)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.releasekit]\npackages = ["packages/alpha", "packages/beta"]\n'
    )
    (tmp_path / "noxfile.py").write_text((tmp_path / "packages/alpha/noxfile.py").read_text())
    result = run_nox(tmp_path, "-s", "init_ci", "--", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    beta = (tmp_path / ".github" / "workflows" / "publish-beta.yml").read_text()
    assert 'tags: ["beta-v*"]' in beta
    assert 'path: "packages/beta/dist/"' in beta
    assert '\n  PACKAGE: "beta"\n' in beta
    assert 'nox -s build -- --dev --package "$PACKAGE"\n' in beta
    assert 'nox -s check_dist upload_testpypi -- --package "$PACKAGE"\n' in beta
    assert 'nox -s verify_testpypi -- --package "$PACKAGE"\n' in beta
    assert (tmp_path / ".github" / "workflows" / "publish-alpha.yml").exists()


@pytest.mark.parametrize("name", ["evil$(touch /tmp/pwned)", "../../evil", "a/b", "-x"])
def test_init_ci_refuses_a_name_that_is_not_a_package_name(tmp_path: Path, name: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\n', encoding="utf-8"
    )
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    result = run_nox(tmp_path, "-s", "init_ci", "--", "--repository", "acme/sample")
    assert result.returncode != 0, result.stdout
    assert "is not a valid package name" in result.stdout
    assert "PEP 508" in result.stdout
    assert "Traceback" not in result.stdout
    assert not (tmp_path / ".github").exists()
    assert not list(tmp_path.rglob("*.yml"))


def test_init_ci_quotes_settings_and_keeps_them_out_of_run_lines(
    make_project: Callable[..., Path],
) -> None:
    project = make_project(
        releasekit='tag-format = "re\'l\\"$(id)-{version}"\nrelease-branch = "rel/$(id)"'
    )
    result = run_nox(project, "-s", "init_ci", "--", "--repository", "acme/sample")
    assert result.returncode == 0, result.stdout
    text = (project / ".github" / "workflows" / "publish.yml").read_text()
    assert 'branches: ["rel/$(id)"]' in text
    assert 'tags: ["re\'l\\"$(id)-*"]' in text
    runs = re.findall(r"run: (.*)", text)
    assert runs and not [line for line in runs if "$(id)" in line or "${{" in line]


def test_init_ci_refuses_an_expression_in_a_setting(make_project: Callable[..., Path]) -> None:
    project = make_project(releasekit='release-branch = "${{ secrets.PYPI_API_TOKEN }}"')
    result = run_nox(project, "-s", "init_ci", "--", "--repository", "acme/sample")
    assert result.returncode != 0, result.stdout
    assert "release-branch" in result.stdout and "expression" in result.stdout
    assert not (project / ".github").exists()
