"""``nox -s init_ci -- --ci gitlab``: the GitLab CI pipeline written for a user's project."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from conftest import run_nox, write_project
from releasekit import __version__
from releasekit.indexes.endpoints import public_upload_urls

#: Variables a script line may read: releasekit's own, set in the pipeline, and GitLab's.
ALLOWED_IN_SCRIPTS = {
    "RELEASEKIT",
    "PACKAGE",
    "PRERELEASE",
    "CI_COMMIT_TAG",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_SHA",
    "GITLAB_USER_NAME",
    "GITLAB_USER_EMAIL",
    "@",
}


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with GitLab's own CI schema (shipped with check-jsonschema)."""
    pytest.importorskip("check_jsonschema")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci"]
        + [str(path) for path in paths],
        capture_output=True,
        text=True,
        check=False,
    )


def valid_pipeline(path: Path) -> Any:
    """The pipeline at ``path``, loaded, once GitLab's schema accepts it and no template
    placeholder (``@NAME@``) is left in it."""
    checked = validate(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    return YAML(typ="safe").load(text)


def jobs(text: str) -> dict[str, Any]:
    loaded = YAML(typ="safe").load(text)
    return {name: job for name, job in loaded.items() if isinstance(job, dict)}


def script_lines(text: str) -> Iterator[str]:
    for job in jobs(text).values():
        for entry in job.get("script", []):
            yield from str(entry).splitlines()


def test_init_ci_gitlab_writes_a_valid_pipeline(make_project: Callable[..., Path]) -> None:
    project = make_project(name="Sample_Pkg", releasekit='tag-format = "v{version}"')
    result = run_nox(
        project, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/tools/sample"
    )
    assert result.returncode == 0, result.stdout
    path = project / ".gitlab-ci.yml"
    valid_pipeline(path)
    text = path.read_text()
    assert f'RELEASEKIT: "releasekit=={__version__}"' in text
    assert 'PUBLISH_PROJECT: "acme/tools/sample"' in text
    assert 'TAG_PATTERN: "/^v.+\\\\z/"' in text
    defined = jobs(text)
    assert set(defined) == {
        ".releasekit",
        "build",
        "testpypi",
        "verify-testpypi",
        "pypi",
        "verify-pypi",
        "gitlab-release",
        "release-auto",
    }
    assert defined["build"]["artifacts"]["paths"] == ["dist/"]
    assert defined["pypi"]["environment"]["name"] == "pypi"
    assert defined["testpypi"]["environment"]["name"] == "testpypi"
    assert defined["pypi"]["id_tokens"] == {
        "PYPI_ID_TOKEN": {"aud": "pypi"},
        "SIGSTORE_ID_TOKEN": {"aud": "sigstore"},
    }
    assert defined["testpypi"]["id_tokens"] == {
        "TESTPYPI_ID_TOKEN": {"aud": "testpypi"},
        "SIGSTORE_ID_TOKEN": {"aud": "sigstore"},
    }
    for name in ("build", "verify-testpypi", "verify-pypi", "gitlab-release", "release-auto"):
        assert "id_tokens" not in defined[name] and "environment" not in defined[name], name
    assert defined["gitlab-release"]["needs"] == ["build", "verify-pypi"]
    assert defined["gitlab-release"]["script"] == [
        'uvx --with "$RELEASEKIT" nox -s publish_release'
    ]
    assert defined["release-auto"]["rules"][0]["when"] == "manual"
    assert "nox -s release -- auto --push" in "\n".join(defined["release-auto"]["script"])
    for url in public_upload_urls().values():  # no index host name in the file
        host = urlsplit(url).hostname or ""
        assert host and host.removeprefix("upload.") not in text


def test_the_id_token_variables_are_the_ones_id_reads(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from id._internal.oidc.ambient import detect_gitlab

    project = make_project()
    assert (
        run_nox(project, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "a/b").returncode
        == 0
    )
    defined = jobs((project / ".gitlab-ci.yml").read_text())
    monkeypatch.setenv("GITLAB_CI", "true")
    for job in ("pypi", "testpypi"):
        for variable, claims in defined[job]["id_tokens"].items():
            monkeypatch.setenv(variable, f"token-for-{claims['aud']}")
            assert detect_gitlab(claims["aud"]) == f"token-for-{claims['aud']}"


def test_script_lines_read_values_only_from_variables(make_project: Callable[..., Path]) -> None:
    project = make_project(
        releasekit='tag-format = "re\'l\\"(id)-{version}"\nrelease-branch = "rel/`id`"'
    )
    result = run_nox(
        project, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/sample"
    )
    assert result.returncode == 0, result.stdout
    text = (project / ".gitlab-ci.yml").read_text()
    assert validate(project / ".gitlab-ci.yml").returncode == 0
    assert 'RELEASE_BRANCH: "rel/`id`"' in text
    lines = list(script_lines(text))
    assert lines
    for line in lines:
        assert "${" not in line and "`" not in line and "(id)" not in line, line
        assert set(re.findall(r"\$([A-Za-z_@][A-Za-z0-9_]*)?", line)) <= ALLOWED_IN_SCRIPTS, line


@pytest.mark.parametrize(
    ("setting", "what"),
    [
        ('release-branch = "$CI_JOB_TOKEN"', "release-branch"),
        ('tag-format = "v{version}$PYPI_API_TOKEN"', "tag-format"),
    ],
)
def test_init_ci_gitlab_refuses_a_variable_in_a_setting(
    make_project: Callable[..., Path], setting: str, what: str
) -> None:
    project = make_project(releasekit=setting)
    result = run_nox(project, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/x")
    assert result.returncode != 0, result.stdout
    assert what in result.stdout and "GitLab would evaluate it" in result.stdout
    assert not (project / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize("repository", ["sample", "acme/../x", "acme/$(id)", "acme/a b"])
def test_init_ci_gitlab_refuses_a_bad_project_path(project_dir: Path, repository: str) -> None:
    result = run_nox(
        project_dir, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", repository
    )
    assert result.returncode != 0
    assert "not a GitLab GROUP/PROJECT path" in result.stdout
    assert not (project_dir / ".gitlab-ci.yml").exists()


def test_init_ci_gitlab_writes_one_file_per_monorepo_package(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_project(tmp_path / "packages" / name, name)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.releasekit]\npackages = ["packages/alpha", "packages/beta"]\n'
    )
    (tmp_path / "noxfile.py").write_text((tmp_path / "packages/alpha/noxfile.py").read_text())
    result = run_nox(tmp_path, "-s", "init_ci", "--", "--ci", "gitlab", "--repository", "acme/mono")
    assert result.returncode == 0, result.stdout
    alpha, beta = tmp_path / ".gitlab/publish-alpha.yml", tmp_path / ".gitlab/publish-beta.yml"
    assert "local: .gitlab/publish-beta.yml" in result.stdout
    checked = validate(alpha, beta)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = beta.read_text()
    defined = jobs(text)
    assert "gitlab-release-beta" in defined and "build-alpha" not in defined
    assert defined[".releasekit-beta"]["variables"]["PACKAGE"] == "beta"
    assert defined["build-beta"]["artifacts"]["paths"] == ["packages/beta/dist/"]
    assert 'nox -s check_dist upload_pypi -- --package "$PACKAGE"' in text
    assert not set(jobs(alpha.read_text())) & set(defined)  # both can be included together
