"""Settings and IndexSettings: typed, frozen [tool.releasekit], its defaults and its checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import write_project
from releasekit._project import Project, load_projects
from releasekit._settings import IndexSettings, Settings
from releasekit.errors import ConfigError

SOURCE = "pyproject.toml [tool.releasekit]"


def test_defaults() -> None:
    settings = Settings.from_table({}, SOURCE)
    assert settings == Settings()
    assert (settings.package_dir, settings.dist_dir, settings.release_branch) == (
        ".",
        "dist",
        "main",
    )
    assert settings.packages is None and settings.tag_format is None
    assert (settings.version_files, settings.smoke, dict(settings.indexes)) == ((), (), {})
    assert settings.max_file_size_mb == 100
    assert (settings.changelog_file, settings.attestations, settings.expect_publisher) == (
        None,
        "auto",
        None,
    )
    assert IndexSettings() == IndexSettings(None, None, None, None, allow_insecure_http=False)


def test_table_becomes_typed_values() -> None:
    settings = Settings.from_table(
        {
            "packages": ["a", "b"],
            "smoke": ["pkg --version"],
            "tag-format": "v{version}",
            "changelog-file": "docs/changes.rst",
            "attestations": "never",
            "expect-publisher": "gitlab:group/sub/project",
            "indexes": {
                "corp": {"upload-url": "http://127.0.0.1:1/", "allow-insecure-http": True},
                "plain": {"token-env": "PLAIN_TOKEN"},
            },
        },
        SOURCE,
    )
    assert (settings.packages, settings.smoke) == (("a", "b"), ("pkg --version",))
    assert settings.tag_format == "v{version}"
    assert settings.changelog_file == "docs/changes.rst"
    assert settings.attestations == "never"
    assert settings.expect_publisher == "gitlab:group/sub/project"
    assert settings.indexes == {
        "corp": IndexSettings(upload_url="http://127.0.0.1:1/", allow_insecure_http=True),
        "plain": IndexSettings(token_env="PLAIN_TOKEN"),
    }


def test_frozen() -> None:
    settings = Settings.from_table({"indexes": {"corp": {"token-env": "T"}}}, SOURCE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.dist_dir = "elsewhere"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.indexes["corp"].token_env = "OTHER"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.indexes["new"] = IndexSettings()  # type: ignore[index]
    assert hash(settings) == hash(dataclasses.replace(settings))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"attestations": "sometimes"}, 'attestations must be "auto", "always" or "never"'),
        ({"attestations": True}, "attestations must be a string"),
        ({"expect-publisher": "someone"}, "expect-publisher 'someone' names no publisher"),
        ({"expect-publisher": "github:owner"}, "names no publisher"),
        ({"expect-publisher": "bitbucket:o/r"}, "names no publisher"),
        ({"changelog-file": "CHANGELOG.txt"}, "not a Markdown or reStructuredText"),
        ({"changelog-file": "../CHANGELOG.md"}, "inside the package directory"),
        ({"changelog-file": 3}, "changelog-file must be a string"),
        ({"indexes": {"c": {"allow-insecure-http": "yes"}}}, "must be true or false"),
        (
            {"indexes": {"c": {"allow_insecure_http": True}}},
            "(?s)Unknown key.*Use one of: .*allow-insecure-http",
        ),
        ({"tag-format": "{version}-{branch}"}, "uses {branch}"),
    ],
)
def test_refused_values_are_explained(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_table(table, SOURCE)
    assert caught.value.fix


@pytest.mark.parametrize(
    "table",
    [
        {"attestations": "always"},
        {"expect-publisher": "github:my-org/my.repo"},
        {"changelog-file": "HISTORY.md"},
        {"indexes": {"c": {"allow-insecure-http": False}}},
    ],
)
def test_accepted_values(table: dict[str, object]) -> None:
    Settings.from_table(table, SOURCE)


def test_overrides_use_python_names_and_win(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", releasekit='attestations = "always"')
    project = Project.load(
        root,
        attestations="never",
        expect_publisher="github:o/r",
        changelog_file="CHANGES.md",
        indexes={"corp": {"upload-url": "http://127.0.0.1:5/", "simple-url": "http://x/s/"}},
    )
    assert project.settings.attestations == "never"
    assert project.settings.expect_publisher == "github:o/r"
    assert project.settings.changelog_file == "CHANGES.md"
    assert project.index("corp").upload_url == "http://127.0.0.1:5/"
    with pytest.raises(ConfigError, match="attestations must be"):
        Project.load(root, attestations="maybe")


def test_monorepo_precedence_for_new_keys(tmp_path: Path) -> None:
    write_project(tmp_path / "pkgs" / "alpha", "alpha", releasekit='attestations = "always"')
    write_project(tmp_path / "pkgs" / "beta", "beta")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.releasekit]\npackages = ['pkgs/alpha', 'pkgs/beta']\n"
        "attestations = 'never'\nexpect-publisher = 'github:o/r'\n"
    )
    alpha, beta = load_projects(tmp_path)
    assert (alpha.settings.attestations, beta.settings.attestations) == ("always", "never")
    assert alpha.settings.expect_publisher == beta.settings.expect_publisher == "github:o/r"
    (forced,) = load_projects(tmp_path, "alpha", attestations="auto")
    assert forced.settings.attestations == "auto"


def test_unset_tag_format_behaves_as_the_default(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", "Sample_Pkg", "1.2.0")
    unset = Project.load(root)
    explicit = Project.load(root, tag_format="{name}-v{version}")
    assert unset.settings.tag_format is None
    assert unset.tag("1.2.0") == explicit.tag("1.2.0") == "sample-pkg-v1.2.0"
    assert unset.version_of_tag("sample-pkg-v1.2.0") == Version("1.2.0")
    assert unset.version_of_tag("v1.2.0") is None
