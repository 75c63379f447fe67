"""check_dist refuses what PyPI refuses at upload, reads archives within hard bounds, and the
local stand-in index refuses the same files the same way."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import warnings
import zipfile
from pathlib import Path

import httpx
import pytest

from releasekit._build import build
from releasekit._check import check
from releasekit._project import Project
from releasekit.errors import CheckFailed, DistributionError
from releasekit.indexes.local import LocalIndex
from releasekit.indexes.pypi_rules import pypi_problems

METADATA = "Metadata-Version: 2.4\nName: sample-pkg\nVersion: 0.1.0\nSummary: A sample.\n"


def wheel(
    path: Path,
    metadata: str = METADATA,
    *,
    extra: dict[str, bytes] | None = None,
    record: bool = True,
    method: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Write a small, well-formed wheel at ``path`` (its name gives the dist-info dir)."""
    name, version = path.name.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    members = {
        "sample_pkg/__init__.py": b"",
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        **(extra or {}),
    }
    lines = []
    for member, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{member},sha256={digest},{len(data)}")
    if record:
        members[f"{info}/RECORD"] = ("\n".join([*lines, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(path, "w", method) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def problems_of(path: Path) -> str:
    return "\n".join(pypi_problems(path).problems)


def failures(project: Project, **kwargs: bool) -> str:
    with pytest.raises(CheckFailed) as caught:
        check(project, **kwargs)
    return "\n".join(caught.value.problems)


def the_wheel(project: Project) -> Path:
    (found,) = project.dist_dir.glob("*.whl")
    return found


# --- archives, within hard bounds ----------------------------------------------------------


def test_zip_bomb_is_refused_from_the_central_directory(project: Project) -> None:
    """A wheel of about 1 MB whose METADATA expands to 1 GiB, written in chunks."""
    path = the_wheel(project)
    path.unlink()
    chunk = bytes(1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("sample_pkg-0.1.0.dist-info/METADATA", "w") as member,
    ):
        for _ in range(1024):
            member.write(chunk)
    assert path.stat().st_size < 2 << 20
    found = failures(project)
    assert "expand to 1,073,741,824 bytes" in found and "decompression bomb" in found
    assert found.count(path.name) == 1  # one clear refusal; nothing else read the file


def test_tar_bomb_is_refused_from_its_headers(project: Project) -> None:
    (sdist,) = project.dist_dir.glob("*.tar.gz")
    header = tarfile.TarInfo("sample_pkg-0.1.0/PKG-INFO")
    header.size = 1 << 30  # declared; the data never needs to be read
    with tarfile.open(sdist, "w:gz") as archive:
        archive.fileobj.write(header.tobuf())  # type: ignore[union-attr]
    found = failures(project)
    assert f"{sdist.name}: unreadable" in found and "decompression bomb" in found


@pytest.mark.parametrize(
    ("method", "label"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")]
)
def test_unsupported_compression_method(project: Project, method: int, label: str) -> None:
    wheel(the_wheel(project), method=method)
    found = failures(project)
    assert f"compression method {label}" in found and "stored and deflated" in found


def test_duplicate_entries(tmp_path: Path) -> None:
    path = wheel(tmp_path / "sample_pkg-0.1.0-py3-none-any.whl")
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as archive:
        warnings.simplefilter("ignore")
        archive.writestr("sample_pkg/__init__.py", b"again")
    assert "duplicate entries 'sample_pkg/__init__.py'" in problems_of(path)


def test_entry_missing_from_the_central_directory(tmp_path: Path) -> None:
    path = wheel(tmp_path / "sample_pkg-0.1.0-py3-none-any.whl", extra={"hidden.py": b"x = 1"})
    with zipfile.ZipFile(path, "a") as archive:  # drop it from the directory, keep its data
        archive.filelist = [i for i in archive.filelist if i.filename != "hidden.py"]
        del archive.NameToInfo["hidden.py"]
        archive._didModify = True
    with zipfile.ZipFile(path) as archive:
        assert "hidden.py" not in archive.namelist()
    assert "ZIP archive not accepted: its local file headers" in problems_of(path)


def test_trailing_data(tmp_path: Path) -> None:
    path = wheel(tmp_path / "sample_pkg-0.1.0-py3-none-any.whl")
    path.write_bytes(path.read_bytes() + b"appended")
    assert "trailing data" in problems_of(path)


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil.py", "'..' component"),
        ("/etc/evil.py", "absolute path"),
        ("sample_pkg\\evil.py", "backslash"),
        ("sample_pkg/e\x01vil.py", "unprintable"),
    ],
)
def test_unsafe_zip_paths(tmp_path: Path, member: str, why: str) -> None:
    path = wheel(tmp_path / "sample_pkg-0.1.0-py3-none-any.whl", extra={member: b""})
    assert why in problems_of(path)


def test_wheel_without_record(project: Project) -> None:
    path = the_wheel(project)
    wheel(path, record=False)
    assert "sample_pkg-0.1.0.dist-info/RECORD missing" in failures(project)


def _sdist(path: Path, *members: tarfile.TarInfo) -> Path:
    pkg_info = METADATA.encode()
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("sample_pkg-0.1.0/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
        for member in members:
            archive.addfile(member, io.BytesIO(bytes(member.size)))
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_member("sample_pkg-0.1.0/../../evil.py"), "'..' component"),
        (_member("sample_pkg-0.1.0/up", tarfile.SYMTYPE, "../../etc/passwd"), "points outside"),
        (_member("sample_pkg-0.1.0/abs", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
        (_member("sample_pkg-0.1.0/hard", tarfile.LNKTYPE, "etc/passwd"), "points outside"),
        (_member("sample_pkg-0.1.0/holes", tarfile.GNUTYPE_SPARSE), "sparse member"),
    ],
)
def test_unsafe_tar_members(tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    path = _sdist(tmp_path / "sample_pkg-0.1.0.tar.gz", member)
    assert why in problems_of(path)


def test_safe_links_and_the_built_files_pass(tmp_path: Path, built: Project) -> None:
    inside = _member("sample_pkg-0.1.0/link", tarfile.SYMTYPE, "PKG-INFO")
    assert problems_of(_sdist(tmp_path / "sample_pkg-0.1.0.tar.gz", inside)) == ""
    for path in built.dist_dir.iterdir():
        verdict = pypi_problems(path)
        assert verdict.problems == [] and verdict.safe and verdict.valid


# --- PyPI's acceptance rules ---------------------------------------------------------------


def test_linux_platform_tag_is_refused_and_can_be_a_warning(project: Project) -> None:
    path = the_wheel(project)
    path.rename(path.with_name("sample_pkg-0.1.0-py3-none-linux_x86_64.whl"))
    found = failures(project)
    assert "PyPI refuses the platform tag linux_x86_64" in found
    assert "manylinux" in found and "cibuildwheel" in found and "auditwheel" in found
    assert len(check(project, refuse_platform_tags=False)) == 2


@pytest.mark.parametrize(
    "tag", ["manylinux_2_28_x86_64", "musllinux_1_2_aarch64", "macosx_11_0_arm64", "win_amd64"]
)
def test_accepted_platform_tags(tmp_path: Path, tag: str) -> None:
    assert problems_of(wheel(tmp_path / f"sample_pkg-0.1.0-cp312-cp312-{tag}.whl")) == ""


def test_unknown_platform_tag(tmp_path: Path) -> None:
    path = wheel(tmp_path / "sample_pkg-0.1.0-py3-none-freebsd_14_0_amd64.whl")
    assert "platform tag freebsd_14_0_amd64: it accepts only" in problems_of(path)


def test_local_version(tmp_path: Path) -> None:
    path = tmp_path / "sample_pkg-0.1.0+g1234-py3-none-any.whl"
    wheel(path, METADATA.replace("0.1.0", "0.1.0+g1234"))
    assert "0.1.0+g1234 is a local version" in problems_of(path)


def test_sdist_name_must_be_pep_625(project: Project) -> None:
    (sdist,) = project.dist_dir.glob("*.tar.gz")
    sdist.rename(sdist.with_name("Sample.Pkg-0.1.0.tar.gz"))
    assert "it must be sample_pkg-0.1.0.tar.gz (PEP 625)" in failures(project)


def test_wheel_name_must_be_normalized(project: Project) -> None:
    path = the_wheel(project)
    path.rename(path.with_name("Sample_Pkg-0.1.0-py3-none-any.whl"))
    found = failures(project)
    assert "name part of a wheel's filename must be 'sample_pkg'" in found


def test_license_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "sample_pkg-0.1.0-py3-none-any.whl"
    wheel(path, METADATA + "License-Expression: MIT\nLicense-File: LICENSE\n")
    assert (
        "License-File LICENSE is not in the archive (at sample_pkg-0.1.0.dist-info/licenses/LICENSE)"
        in problems_of(path)
    )
    licensed = {"sample_pkg-0.1.0.dist-info/licenses/LICENSE": b"MIT"}
    wheel(path, METADATA + "License-Expression: MIT\nLicense-File: LICENSE\n", extra=licensed)
    assert problems_of(path) == ""


def test_license_file_missing_from_sdist(tmp_path: Path) -> None:
    path = tmp_path / "sample_pkg-0.1.0.tar.gz"
    pkg_info = (METADATA + "License-Expression: MIT\nLicense-File: LICENSE\n").encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("sample_pkg-0.1.0/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    assert (
        "License-File LICENSE is not in the archive (at the top directory/LICENSE)"
        in problems_of(path)
    )


def test_license_with_license_expression(tmp_path: Path) -> None:
    path = tmp_path / "sample_pkg-0.1.0-py3-none-any.whl"
    wheel(path, METADATA + "License: MIT License\nLicense-Expression: MIT\n")
    assert "both License and License-Expression" in problems_of(path)


@pytest.mark.parametrize("declared", ["2.0", "3.0"])
def test_refused_metadata_versions(tmp_path: Path, declared: str) -> None:
    path = tmp_path / "sample_pkg-0.1.0-py3-none-any.whl"
    wheel(path, METADATA.replace("Metadata-Version: 2.4", f"Metadata-Version: {declared}"))
    assert f"Metadata-Version {declared} is refused" in problems_of(path)


def test_unknown_and_deprecated_classifiers(project: Project) -> None:
    classifiers = (
        "Classifier: Made Up :: Nonsense\n"
        "Classifier: Framework :: Django CMS :: 4.2\n"
        "Classifier: Private :: Do Not Upload\n"
        "Classifier: Programming Language :: Python :: 3\n"
    )
    wheel(the_wheel(project), METADATA + classifiers)
    found = failures(project)
    assert "'Made Up :: Nonsense' is not a known trove classifier" in found
    assert "'Private :: Do Not Upload' is not a known" in found
    assert (
        "'Framework :: Django CMS :: 4.2' is deprecated; use 'Framework :: Django CMS :: 5.0'"
        in found
    )
    assert "Programming Language" not in found


def test_more_than_one_sdist(project: Project) -> None:
    (sdist,) = project.dist_dir.glob("*.tar.gz")
    shutil.copy(sdist, sdist.with_name("sample-pkg-0.1.0.tar.gz"))
    assert "2 sdists of version 0.1.0" in failures(project)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"[console_scripts\nrun = pkg:main\n", "does not parse"),
        (b"[console_scripts]\nrun : pkg:main\n", "does not parse"),
        (b"[console_scripts]\n../run = pkg:main\n", "entry point name '../run'"),
    ],
)
def test_entry_points_that_do_not_parse(tmp_path: Path, text: bytes, why: str) -> None:
    path = tmp_path / "sample_pkg-0.1.0-py3-none-any.whl"
    wheel(path, extra={"sample_pkg-0.1.0.dist-info/entry_points.txt": text})
    assert why in problems_of(path)


def test_every_rule_is_listed_at_once(project: Project) -> None:
    path = the_wheel(project)
    path.unlink()
    bad = (
        METADATA.replace("0.1.0", "0.1.0+local")
        + "Classifier: Made Up\nLicense: X\nLicense-Expression: MIT\n"
    )
    wheel(path.with_name("sample_pkg-0.1.0+local-py3-none-linux_x86_64.whl"), bad)
    found = failures(project)
    for needle in (
        "local version",
        "Made Up",
        "License-Expression",
        "linux_x86_64",
        "mixes versions",
    ):
        assert needle in found


# --- bad input -----------------------------------------------------------------------------


def test_dist_dir_that_is_a_file(project: Project) -> None:
    shutil.rmtree(project.dist_dir)
    project.dist_dir.write_text("not a directory")
    for action in (build, check):
        with pytest.raises(DistributionError, match="is a file, not a directory") as caught:
            action(project)
        assert caught.value.fix


def test_directory_named_like_a_dist_file(project: Project) -> None:
    path = the_wheel(project)
    path.unlink()
    path.mkdir()
    for action in (build, check):
        with pytest.raises(DistributionError, match="named like a distribution file") as caught:
            action(project)
        assert str(path) in caught.value.fix


# --- the stand-in index refuses the same files ---------------------------------------------


def _upload(index: LocalIndex, path: Path) -> httpx.Response:
    return httpx.post(
        index.upload_url,
        data={
            ":action": "file_upload",
            "protocol_version": "1",
            "name": "sample-pkg",
            "version": "0.1.0",
        },
        files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
        auth=("__token__", index.token),
        timeout=30,
    )


def test_local_index_refuses_what_pypi_refuses(built: Project, tmp_path: Path) -> None:
    with LocalIndex("pypi", "secret-0123456789", pypi_rules=True) as index:
        _refuses_what_pypi_refuses(index, built, tmp_path)
    with LocalIndex("pypi", "secret-0123456789") as plain:  # the tests' plain stand-in
        linux = tmp_path / "sample_pkg-0.1.0-py3-none-linux_x86_64.whl"
        assert _upload(plain, linux).status_code == 200


def _refuses_what_pypi_refuses(index: LocalIndex, built: Project, tmp_path: Path) -> None:
    linux = tmp_path / "sample_pkg-0.1.0-py3-none-linux_x86_64.whl"
    shutil.copy(the_wheel(built), linux)
    refused = _upload(index, linux)
    assert refused.status_code == 400
    assert refused.reason_phrase.startswith("Invalid distribution file.")
    assert "platform tag linux_x86_64" in refused.text
    (sdist,) = built.dist_dir.glob("*.tar.gz")
    assert _upload(index, sdist).status_code == 200
    assert _upload(index, the_wheel(built)).status_code == 200
    other = tmp_path / "sample-pkg-0.1.0.tar.gz"
    shutil.copy(sdist, other)
    second = _upload(index, other)
    assert (second.status_code, second.text) == (400, "Only one sdist may be uploaded per release.")
    assert sorted(p.name for p in (index.root / "packages").iterdir()) == sorted(
        [sdist.name, the_wheel(built).name]
    )
