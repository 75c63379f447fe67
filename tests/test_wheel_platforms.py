"""Compiled projects: check_dist wants a wheel of every expected platform family, and upload
sends the wheels before the sdist (observed at a real local index).

No compiler is needed: a platform wheel here is the sample project's real pure wheel,
re-tagged (its WHEEL file says ``Root-Is-Purelib: false`` and the platform's tag, its RECORD
hashes the new WHEEL file, and its filename carries the tag), which is what a compiled
project's wheel looks like to every check and to the index.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from releasekit._check import check
from releasekit._doctor import doctor
from releasekit._platforms import expected_platforms, is_pure, wheel_families
from releasekit._project import Project
from releasekit._report import Reporter, captured, set_reporter
from releasekit._settings import WHEEL_PLATFORMS
from releasekit._upload import upload
from releasekit.credentials import mint_token
from releasekit.errors import CheckFailed, ConfigError
from releasekit.indexes.local import LocalIndex

#: One platform tag of each family, as cibuildwheel names its wheels.
TAGS = {
    "manylinux": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "musllinux": "musllinux_1_2_x86_64",
    "macos": "macosx_11_0_arm64",
    "windows": "win_amd64",
}


def retag(pure: Path, platform: str) -> Path:
    """A copy of the pure wheel ``pure`` tagged ``cp312-cp312-<platform>``, beside it."""
    tag = f"cp312-cp312-{platform}"
    name, version = pure.name.split("-")[:2]
    target = pure.with_name(f"{name}-{version}-{tag}.whl")
    with zipfile.ZipFile(pure) as source, zipfile.ZipFile(target, "w") as out:
        wheel_file = next(n for n in source.namelist() if n.endswith(".dist-info/WHEEL"))
        text = source.read(wheel_file).decode()
        text = text.replace("Root-Is-Purelib: true", "Root-Is-Purelib: false")
        text = re.sub(r"^Tag: .*$", f"Tag: {tag}", text, flags=re.M)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record = f"{wheel_file},sha256={digest.decode()},{len(text.encode())}"
        for info in source.infolist():
            data = source.read(info)
            if info.filename == wheel_file:
                data = text.encode()
            elif info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                lines = [record if line.startswith(wheel_file + ",") else line for line in lines]
                data = ("\n".join(lines) + "\n").encode()
            out.writestr(info, data)
    return target


def compiled(project: Project, *families: str, settings: str = "") -> Project:
    """``project`` with its pure wheel replaced by platform wheels of ``families``."""
    (pure,) = project.dist_dir.glob("*-any.whl")
    for family in families:
        retag(pure, TAGS[family])
    pure.unlink()
    if settings:
        setting(project, settings)
    return Project.load(project.root)


def setting(project: Project, line: str) -> None:
    """Add ``line`` to the project's [tool.releasekit] table."""
    text = project.pyproject.read_text()
    project.pyproject.write_text(
        text.replace("[tool.releasekit]\n", f"[tool.releasekit]\n{line}\n")
    )


@pytest.mark.parametrize(
    ("filename", "families"),
    [
        ("p-1-py3-none-any.whl", set()),
        ("p-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", {"manylinux"}),
        ("p-1-cp312-cp312-manylinux1_i686.whl", {"manylinux"}),
        ("p-1-cp312-cp312-musllinux_1_2_aarch64.whl", {"musllinux"}),
        ("p-1-cp312-cp312-macosx_10_9_universal2.whl", {"macos"}),
        ("p-1-cp312-cp312-win32.whl", {"windows"}),
        ("p-1-cp312-cp312-win_arm64.whl", {"windows"}),
        ("p-1-cp312-cp312-linux_x86_64.whl", set()),
    ],
)
def test_wheel_families(filename: str, families: set[str]) -> None:
    assert wheel_families(filename) == families
    assert is_pure(filename) == filename.endswith("-any.whl")


def test_a_pure_project_expects_no_platform_wheel(project: Project) -> None:
    wheels = [p.name for p in project.dist_dir.glob("*.whl")]
    assert expected_platforms(project, wheels).families == ()
    assert len(check(project)) == 2


def test_a_complete_compiled_set_passes(project: Project) -> None:
    project = compiled(project, *TAGS)
    assert expected_platforms(project, []).families == ()  # the files say it, not the config
    assert len(check(project)) == 5


def test_a_missing_platform_is_one_explained_problem(project: Project) -> None:
    project = compiled(project, "manylinux", "macos")
    with pytest.raises(CheckFailed) as caught:
        check(project)
    problems = [p for p in caught.value.problems if "no wheel for" in p]
    assert len(problems) == 1, caught.value.problems
    (problem,) = problems
    assert "no wheel for musllinux, windows among the files of sample-pkg" in problem
    assert "expected: manylinux, musllinux, macos, windows" in problem
    assert "is a platform wheel" in problem
    assert "re-run it" in problem and "wheel-platforms" in problem


def test_the_setting_narrows_the_expected_platforms(project: Project) -> None:
    narrowed = compiled(project, "manylinux", "macos", settings='wheel-platforms = ["manylinux"]')
    assert expected_platforms(narrowed, []).families == ("manylinux",)
    assert len(check(narrowed)) == 3


def test_the_setting_alone_makes_a_project_compiled(project: Project) -> None:
    setting(project, 'wheel-platforms = ["windows"]')
    with pytest.raises(CheckFailed) as caught:
        check(Project.load(project.root))
    assert any("no wheel for windows" in p for p in caught.value.problems)


def test_a_cibuildwheel_table_makes_a_project_compiled(project: Project) -> None:
    pyproject = project.pyproject
    pyproject.write_text(pyproject.read_text() + '\n[tool.cibuildwheel]\nbuild = "cp312-*"\n')
    reloaded = Project.load(project.root)
    expected = expected_platforms(reloaded, ["sample_pkg-0.1.0-py3-none-any.whl"])
    assert expected.families == WHEEL_PLATFORMS
    assert "[tool.cibuildwheel]" in expected.reason
    with captured() as out:
        doctor(reloaded)
    assert "wheels: a release needs one for each of manylinux, musllinux, macos, windows (the " in (
        out.getvalue()
    )
    with pytest.raises(CheckFailed) as caught:
        check(reloaded)
    assert any(
        "no wheel for manylinux, musllinux, macos, windows" in p for p in caught.value.problems
    )


def test_an_unknown_platform_in_the_setting_is_refused(project: Project) -> None:
    setting(project, 'wheel-platforms = ["linux"]')
    with pytest.raises(ConfigError) as caught:
        Project.load(project.root)
    assert "'linux'" in caught.value.what and "manylinux" in str(caught.value)


# --- upload order, at a real local index -------------------------------------------------


@pytest.fixture
def testpypi(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    for name in ("PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    token = mint_token("testpypi")
    with LocalIndex("testpypi", token, pypi_rules=True) as server:
        for key, value in server.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TEST_PYPI_API_TOKEN", token)
        yield server


class _Interrupted(Reporter):
    """A reporter whose user presses Ctrl-C as the first file is reported uploaded."""

    def success(self, message: str) -> None:
        super().success(message)
        if message.startswith("Uploaded "):
            raise KeyboardInterrupt


@pytest.fixture
def reporter() -> Iterator[Callable[[Reporter], None]]:
    yield set_reporter
    set_reporter(None)


@pytest.mark.slow
def test_upload_sends_the_wheels_first_and_the_sdist_last(
    project: Project, testpypi: LocalIndex, reporter: Callable[[Reporter], None]
) -> None:
    reporter(Reporter(plain=True))
    project = compiled(project, *TAGS)
    results = upload(project, "testpypi")
    sdist = "sample_pkg-0.1.0.tar.gz"
    assert testpypi.received[-1] == sdist
    assert len(testpypi.received) == 5 and all(
        name.endswith(".whl") for name in testpypi.received[:-1]
    )
    assert [r.distribution.filename for r in results] == testpypi.received


@pytest.mark.slow
def test_an_interrupted_upload_never_leaves_the_sdist_alone(
    project: Project, testpypi: LocalIndex, reporter: Callable[[Reporter], None]
) -> None:
    reporter(_Interrupted(plain=True))
    with pytest.raises(KeyboardInterrupt):
        upload(project, "testpypi")
    assert testpypi.received == ["sample_pkg-0.1.0-py3-none-any.whl"]
    assert not (testpypi.root / "packages" / "sample_pkg-0.1.0.tar.gz").exists()
    reporter(Reporter(plain=True))
    assert [r.status for r in upload(project, "testpypi")] == ["already there", "uploaded"]
    assert testpypi.received[-1] == "sample_pkg-0.1.0.tar.gz"
