"""`changed -- --since REF`: the packages changed since a ref, with those requiring them, in
dependency order, as one line of JSON for a CI matrix (real git repositories)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_monorepo, git
from releasekit._changes import NO_COMMIT, changed_packages
from releasekit._project import load_projects
from releasekit.errors import GitError

#: core <- cli <- app (app requires cli, cli requires core); docs-theme stands alone.
PACKAGES = {"core": (), "cli": ("core>=1.0",), "app": ("mono-cli",), "theme": ()}


def write_monorepo(root: Path, packages: dict[str, tuple[str, ...]] = PACKAGES) -> Path:
    """A monorepo of static packages `mono-<dir>` under packages/, committed, tagged `base`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("# mono\n")
    for directory, requires in packages.items():
        package = root / "packages" / directory
        (package / "src").mkdir(parents=True)
        deps = ", ".join(f'"{r if r.startswith("mono-") else "mono-" + r}"' for r in requires)
        (package / "pyproject.toml").write_text(
            f'[project]\nname = "mono-{directory}"\nversion = "1.0.0"\ndependencies = [{deps}]\n'
        )
        (package / "src" / "code.py").write_text("VALUE = 1\n")
    commit_monorepo(root, [f"packages/{d}" for d in packages], "feat: first")
    git(root, "tag", "base")
    return root


def commit(root: Path, *files: str) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(path.read_text() + "# changed\n" if path.exists() else "new\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fix: change")


def plan(root: Path, since: str = "base") -> list[tuple[str, str, int, str]]:
    return [
        (p.name, p.path, p.layer, p.reason) for p in changed_packages(load_projects(root), since)
    ]


def test_a_changed_package_brings_its_dependents_in_dependency_order(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    commit(root, "packages/core/src/code.py")
    assert plan(root) == [
        ("mono-core", "packages/core", 0, "files"),
        ("mono-cli", "packages/cli", 1, "dependency"),
        ("mono-app", "packages/app", 2, "dependency"),
    ]


def test_only_the_packages_whose_files_changed(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    commit(root, "packages/app/src/code.py", "packages/theme/new-file.css")
    assert plan(root) == [
        ("mono-app", "packages/app", 0, "files"),
        ("mono-theme", "packages/theme", 0, "files"),
    ]


def test_root_files_change_no_package(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    commit(root, "README.md", "pyproject.toml", "packages/notes.txt")
    assert plan(root) == []


def test_a_file_moved_out_of_a_package_changes_it(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    git(root, "mv", "packages/theme/src/code.py", "moved.py")
    git(root, "commit", "-q", "-m", "refactor: move")
    assert [name for name, *_ in plan(root)] == ["mono-theme"]


def test_a_branchs_first_push_plans_every_package(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    assert [(name, layer) for name, _, layer, _ in plan(root, NO_COMMIT)] == [
        ("mono-core", 0),
        ("mono-theme", 0),
        ("mono-cli", 1),
        ("mono-app", 2),
    ]


def test_an_unknown_ref_is_explained(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    with pytest.raises(GitError) as caught:
        plan(root, "no-such-tag")
    assert "names no commit" in caught.value.what
    assert "git fetch --tags" in str(caught.value.fix)


def test_a_shallow_clone_without_the_ref_says_to_fetch_everything(tmp_path: Path) -> None:
    origin = write_monorepo(tmp_path / "origin")
    old = git(origin, "rev-parse", "HEAD").strip()
    commit(origin, "packages/core/src/code.py")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", origin.as_uri(), str(clone))
    with pytest.raises(GitError) as caught:
        plan(clone, old)
    assert "shallow clone" in caught.value.what
    assert "fetch-depth: 0" in str(caught.value.fix)


def test_outside_git_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_monorepo(tmp_path)
    projects = load_projects(root)
    (root / ".git").rename(root / "not-git")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(GitError) as caught:
        changed_packages(projects, "base")
    assert "not in a git repository" in caught.value.what


def run_changed(
    root: Path, *args: str, github_output: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true"}
    env.pop("GITHUB_OUTPUT", None)
    if github_output is not None:
        env["GITHUB_OUTPUT"] = str(github_output)
    return subprocess.run(
        [sys.executable, "-m", "nox", "-s", "changed", "--", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_session_prints_only_the_json_on_stdout(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path / "repo")
    commit(root, "packages/cli/src/code.py")
    outputs = tmp_path / "github_output"
    result = run_changed(root, "--since", "base", github_output=outputs)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [
        {"package": "mono-cli", "path": "packages/cli", "dist": "packages/cli/dist", "layer": 0}
        | {"reason": "files", "platforms": []},
        {"package": "mono-app", "path": "packages/app", "dist": "packages/app/dist", "layer": 1}
        | {"reason": "dependency", "platforms": []},
    ]
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == expected
    assert step_outputs(outputs) == {
        "packages": expected,
        "pure": expected,
        "compiled": [],
        "wheels": [],
    }


def step_outputs(path: Path) -> dict[str, Any]:
    """The step outputs written to ``$GITHUB_OUTPUT``, each value read as JSON."""
    lines = path.read_text().splitlines()
    return {name: json.loads(value) for name, _, value in (s.partition("=") for s in lines)}


def test_the_session_names_the_wheels_of_compiled_packages(tmp_path: Path) -> None:
    """A package with extension modules carries its platform families, and the step outputs
    split the plan into pure and compiled packages and one entry per compiled package and
    runner of its families."""
    root = write_monorepo(tmp_path / "repo")
    theme = root / "packages" / "theme" / "pyproject.toml"
    theme.write_text(theme.read_text() + '\n[tool.cibuildwheel]\nbuild = "cp312-*"\n')
    cli = root / "packages" / "cli" / "pyproject.toml"
    cli.write_text(cli.read_text() + '\n[tool.releasekit]\nwheel-platforms = ["windows"]\n')
    commit(root)
    outputs = tmp_path / "github_output"
    result = run_changed(root, "--since", NO_COMMIT, github_output=outputs)
    assert result.returncode == 0, result.stdout + result.stderr
    platforms = {entry["package"]: entry["platforms"] for entry in json.loads(result.stdout)}
    assert platforms == {
        "mono-core": [],
        "mono-cli": ["windows"],
        "mono-app": [],
        "mono-theme": ["manylinux", "musllinux", "macos", "windows"],
    }
    found = step_outputs(outputs)
    assert found["packages"] == json.loads(result.stdout)
    assert [e["package"] for e in found["pure"]] == ["mono-core", "mono-app"]
    assert [e["package"] for e in found["compiled"]] == ["mono-theme", "mono-cli"]  # layers
    assert found["wheels"] == [
        {"package": "mono-theme", "dist": "packages/theme/dist", "os": "ubuntu-latest"},
        {"package": "mono-theme", "dist": "packages/theme/dist", "os": "ubuntu-24.04-arm"},
        {"package": "mono-theme", "dist": "packages/theme/dist", "os": "macos-latest"},
        {"package": "mono-theme", "dist": "packages/theme/dist", "os": "windows-latest"},
        {"package": "mono-cli", "dist": "packages/cli/dist", "os": "windows-latest"},
    ]


def test_the_session_finds_the_package_of_a_release_tag(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    git(root, "tag", "mono-cli-v1.0.0")
    result = run_changed(root, "--tag", "mono-cli-v1.0.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == [
        {
            "package": "mono-cli",
            "path": "packages/cli",
            "dist": "packages/cli/dist",
            "layer": 0,
            "reason": "files",
            "platforms": [],
        }
    ]
    other = run_changed(root, "--tag", "base")
    assert json.loads(other.stdout) == []


def test_the_session_explains_an_unknown_ref(tmp_path: Path) -> None:
    root = write_monorepo(tmp_path)
    result = run_changed(root, "--since", "v9")
    assert result.returncode != 0
    assert "'v9' names no commit" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_workspace_root_package_owns_the_files_no_member_holds(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "mono-root"\nversion = "1.0.0"\ndependencies = ["mono-lib"]\n\n'
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
    )
    lib = tmp_path / "packages" / "lib"
    lib.mkdir(parents=True)
    (lib / "pyproject.toml").write_text('[project]\nname = "mono-lib"\nversion = "1.0.0"\n')
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "feat: first")
    git(tmp_path, "tag", "base")
    commit(tmp_path, "src/root.py")
    assert plan(tmp_path) == [("mono-root", ".", 0, "files")]
    git(tmp_path, "tag", "-f", "base")
    commit(tmp_path, "packages/lib/code.py")
    assert plan(tmp_path) == [
        ("mono-lib", "packages/lib", 0, "files"),
        ("mono-root", ".", 1, "dependency"),
    ]
