"""No credential reaches code releasekit does not control, in any encoding (issue 12).

Every kind of child releasekit starts (a build backend, the installer, a dependency's sdist
build, smoke commands, a git hook) runs a spy that records its own environment and command
line and those of every ancestor it can read (``/proc/<pid>/environ``: the initial
environment block of the nox process itself). Each run is fed credentials of every kind: PyPI
tokens in PYPI_API_TOKEN and TEST_PYPI_API_TOKEN, a ``token-env`` value, TWINE_PASSWORD, a
user and password in an index URL, the GitHub OIDC request variables and a GitLab
``id_tokens`` JWT. The spies' records, the output of nox (with the verbose trail of every
child's command line) and every file written are scanned for each credential as is, as the
base64 of ``__token__:<secret>`` and URL-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import git, run_nox, twine_upload, write_project
from releasekit._doctor import doctor
from releasekit._project import Project
from releasekit._redaction import register_secret_variable
from releasekit._settings import IndexSettings
from releasekit.credentials import mint_token, netrc_for, resolve_credentials, take_secret
from releasekit.credentials.environment import child_environ
from releasekit.errors import CredentialError, ReleasekitError
from releasekit.indexes import Index, resolve_index
from releasekit.indexes.local import LocalIndex

LINUX = sys.platform.startswith("linux")
SPY = '''\
"""Record this process's environment and command line, and its ancestors'."""
import json, os, sys
from pathlib import Path

def _read(path):
    try:
        return Path(path).read_bytes().decode("utf-8", "replace").replace("\\0", "\\n")
    except OSError as exc:
        return f"unreadable: {exc.strerror}"

def dump(directory, label):
    record = {"env": dict(os.environ), "argv": sys.argv, "ancestors": []}
    pid = os.getpid()
    while pid > 1 and os.path.exists(f"/proc/{pid}"):
        record["ancestors"].append(
            {"pid": pid, "environ": _read(f"/proc/{pid}/environ"),
             "cmdline": _read(f"/proc/{pid}/cmdline")}
        )
        status = _read(f"/proc/{pid}/status")
        ppid = [l.split()[1] for l in status.splitlines() if l.startswith("PPid:")]
        pid = int(ppid[0]) if ppid else 0
    out = Path(directory) / f"{label}-{os.getpid()}-{len(list(Path(directory).iterdir()))}.json"
    out.write_text(json.dumps(record))

if __name__ == "__main__":
    dump(sys.argv[1], sys.argv[2])
'''


def forms(secret: str) -> list[str]:
    """``secret`` as it may travel: as is, in HTTP Basic credentials, URL-encoded."""
    basic = base64.b64encode(f"__token__:{secret}".encode()).decode()
    return [secret, basic, basic.rstrip("="), quote(secret, safe="")]


def found_in(text: str, credentials: dict[str, str]) -> list[str]:
    """The names of the credentials one of whose forms is in ``text``."""
    return sorted(
        name for name, value in credentials.items() if any(f in text for f in forms(value))
    )


def fake_jwt() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": "project_path:group/project", "nonce": secrets.token_hex(16)}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class Spy:
    """The spy script and the directory its records go to."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "records"
        self.dir.mkdir(parents=True)
        self.script = root / "spy.py"
        self.script.write_text(SPY)

    def command(self, label: str) -> str:
        return f"{sys.executable} {self.script} {self.dir} {label}"

    def python_call(self, label: str) -> str:
        """Python code that records from inside a running interpreter (a setup.py)."""
        return (
            f"import sys; sys.path.insert(0, {str(self.script.parent)!r}); import spy; "
            f"spy.dump({str(self.dir)!r}, {label!r})\n"
        )

    def records(self, label: str) -> list[str]:
        found = [p.read_text() for p in sorted(self.dir.glob(f"{label}-*.json"))]
        assert found, f"the {label} spy never ran"
        return found

    def clear(self) -> None:
        for path in self.dir.iterdir():
            path.unlink()


def written(root: Path) -> str:
    """Every file under ``root`` (the project: dist, its tree; not git's compressed objects)."""
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and "objects" not in path.relative_to(root).parts:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
def spy(tmp_path: Path) -> Spy:
    return Spy(tmp_path / "spy")


@pytest.fixture
def credentials() -> dict[str, str]:
    """One credential of every kind, as environment variables (the URL password apart)."""
    return {
        "TEST_PYPI_API_TOKEN": mint_token("testpypi"),
        "PYPI_API_TOKEN": mint_token("pypi"),
        "CORP_UPLOAD_KEY": "corp-" + secrets.token_hex(16),  # a configured token-env
        "TWINE_PASSWORD": "twine-" + secrets.token_hex(16),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-" + secrets.token_hex(24),
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/oidc?nonce=" + secrets.token_hex(12),
        "PYPI_ID_TOKEN": fake_jwt(),  # a GitLab `id_tokens:` variable, named by the user
    }


SETUP = "import setuptools\nsetuptools.setup()\n"
CORP_INDEX = """
[tool.releasekit.indexes.corp]
upload-url = "http://127.0.0.1:9/"
simple-url = "http://127.0.0.1:9/simple/"
token-env = "CORP_UPLOAD_KEY"
"""


def assert_clean(what: str, text: str, credentials: dict[str, str]) -> None:
    leaked = found_in(text, credentials)
    assert not leaked, f"{what} holds {', '.join(leaked)}"


# --- every child releasekit starts ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc/<pid>/environ")
def test_smoke_commands_installer_and_dependency_builds_see_no_credential(
    tmp_path: Path,
    spy: Spy,
    credentials: dict[str, str],
    local_index: Callable[[str, str], LocalIndex],
) -> None:
    test = local_index("testpypi", credentials["TEST_PYPI_API_TOKEN"])
    prod = local_index("pypi", credentials["PYPI_API_TOKEN"])
    # A dependency published as an sdist only: the installer builds it with its in-tree
    # backend (no build requirements to fetch), which runs the spy.
    twine_upload(prod, [spy_sdist(tmp_path, spy)])
    spy.clear()
    smoke = f"smoke = [{spy.command('smoke')!r}]\n" + CORP_INDEX
    root = write_project(tmp_path / "sample-pkg", releasekit=smoke, dependencies=("spy-dep",))
    git(root, "init", "-q", "-b", "main")
    user, password = "reader", "url-" + secrets.token_hex(16)
    credentials["URL_PASSWORD"] = password
    env = {
        **test.environ(),
        **prod.environ(),
        # dependencies come from the production stand-in, named with a user and password
        "RELEASEKIT_PYPI_SIMPLE_URL": prod.simple_url.replace("://", f"://{user}:{password}@"),
        "RELEASEKIT_VERBOSE": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        **credentials,
    }
    del env["URL_PASSWORD"]
    # One nox process uploads (reading the TestPyPI token), then verifies: the smoke command,
    # the installer and the dependency's build all run while the other tokens are unread.
    result = run_nox(root, "-s", "build", "upload_testpypi", "verify_testpypi", env=env)
    assert result.returncode == 0, result.stdout
    assert "$ " in result.stdout  # the verbose trail shows each child's command line
    assert_clean("the output", result.stdout, credentials)
    assert_clean("the files written", written(root), credentials)
    for label in ("smoke", "sdist-build"):
        for record in spy.records(label):
            assert_clean(f"a {label} child or one of its ancestors", record, credentials)
    # the records do reach the nox process: its environment was read, and is clean
    nox_seen = [r for r in spy.records("smoke") if "nox" in r and "upload_testpypi" in r]
    assert nox_seen


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc/<pid>/environ")
def test_build_backends_see_no_credential(
    tmp_path: Path, spy: Spy, credentials: dict[str, str]
) -> None:
    root = write_project(tmp_path / "sample-pkg", backend="setuptools", releasekit=CORP_INDEX)
    (root / "setup.py").write_text(spy.python_call("backend") + SETUP)
    git(root, "init", "-q", "-b", "main")
    result = run_nox(root, "-s", "build", env={**credentials, "RELEASEKIT_VERBOSE": "1"})
    assert result.returncode == 0, result.stdout
    assert_clean("the output", result.stdout, credentials)
    assert_clean("the files written", written(root), credentials)
    for record in spy.records("backend"):
        assert_clean("the build backend or one of its ancestors", record, credentials)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc/<pid>/environ")
def test_git_hooks_during_release_see_no_credential(
    make_project: Callable[..., Path], spy: Spy, credentials: dict[str, str]
) -> None:
    root = make_project(releasekit=CORP_INDEX)
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    for hook in ("pre-commit", "commit-msg", "pre-push"):
        path = root / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\nexec {spy.command('hook')}\n")
        path.chmod(0o755)
    remote = root.parent / "remote.git"
    git(root.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "origin", "main")
    with LocalIndex("pypi", credentials["PYPI_API_TOKEN"]) as pypi:
        env = {**pypi.environ(), **credentials, "RELEASEKIT_VERBOSE": "1"}
        result = run_nox(root, "-s", "release", "--", "0.2.0", "--push", env=env)
    assert result.returncode == 0, result.stdout
    assert_clean("the output", result.stdout, credentials)
    records = spy.records("hook")
    assert len(records) >= 2
    for record in records:
        assert_clean("a git hook or one of its ancestors", record, credentials)


BACKEND = """
import base64, hashlib, zipfile
from pathlib import Path
NAME = "spy_dep-0.1.0"

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    SPY_CALL
    files = {
        "spy_dep/__init__.py": b"",
        f"{NAME}.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: spy-dep\\nVersion: 0.1.0\\n",
        f"{NAME}.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: spy\\n"
        b"Root-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = [
        f"{path},sha256="
        + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
        + f",{len(data)}"
        for path, data in files.items()
    ]
    files[f"{NAME}.dist-info/RECORD"] = ("\\n".join([*record, f"{NAME}.dist-info/RECORD,,"]) + "\\n").encode()
    wheel = f"{NAME}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
"""


def spy_sdist(tmp_path: Path, spy: Spy) -> Path:
    """An sdist of ``spy-dep`` whose in-tree build backend runs the spy when it builds."""
    import tarfile

    source = tmp_path / "spy-dep" / "spy_dep-0.1.0"
    source.mkdir(parents=True)
    (source / "backend.py").write_text(BACKEND.replace("SPY_CALL", spy.python_call("sdist-build")))
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "spy-dep"\nversion = "0.1.0"\n'
    )
    (source / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: spy-dep\nVersion: 0.1.0\n")
    path = source.parent / "spy_dep-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(source, arcname=source.name)
    return path


# --- this process: what it keeps, what children and /proc see ----------------------------


@pytest.mark.skipif(not LINUX, reason="/proc/self/environ")
def test_sealing_wipes_the_initial_environment_block_and_keeps_values_in_memory(
    credentials: dict[str, str],
) -> None:
    """/proc/<pid>/environ shows a process's initial environment, which os.environ cannot
    change: releasekit overwrites the secrets there before any child starts."""
    code = textwrap.dedent(
        """
        import json, os, sys
        from releasekit._process import run
        from releasekit.credentials import take_secret
        from pathlib import Path
        child = run(["sh", "-c", "cat /proc/$PPID/environ; echo; env"], cwd=Path("."))
        print(json.dumps({
            "child": child.stdout,
            "self": Path("/proc/self/environ").read_bytes().decode("utf-8", "replace"),
            "held": take_secret("PYPI_API_TOKEN"),
            "oidc_in_python": os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
            "pypi_in_environ": "PYPI_API_TOKEN" in os.environ,
        }))
        """
    )
    # (no project is loaded here, so nothing names CORP_UPLOAD_KEY as a token-env)
    del credentials["CORP_UPLOAD_KEY"]
    env = {**os.environ, **credentials}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(result.stdout)
    assert_clean("the child's view of its parent and itself", seen["child"], credentials)
    assert_clean("/proc/self/environ", seen["self"], credentials)
    assert "PYPI_API_TOKEN=" in seen["self"]  # the name stays, the value is gone
    assert seen["held"] == credentials["PYPI_API_TOKEN"]  # kept in memory for later sessions
    assert not seen["pypi_in_environ"]
    # what third-party code reads from os.environ (the OIDC client) is still there
    assert seen["oidc_in_python"] == credentials["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]


@pytest.mark.skipif(not LINUX, reason="/proc/self/environ")
def test_a_secret_variable_named_after_the_first_child_is_wiped_before_the_next() -> None:
    """The environment block is sealed again only when what counts as a secret changed: a
    token-env named by a project loaded after the first child started is wiped too."""
    code = textwrap.dedent(
        """
        import json
        from pathlib import Path
        from releasekit._process import run
        from releasekit._redaction import register_secret_variable
        first = run(["sh", "-c", "cat /proc/$PPID/environ"], cwd=Path("."))
        register_secret_variable("CORP_UPLOAD_KEY")
        second = run(["sh", "-c", "cat /proc/$PPID/environ; echo; env"], cwd=Path("."))
        print(json.dumps({"first": first.stdout, "second": second.stdout}))
        """
    )
    value = "corp-" + secrets.token_hex(16)
    env = {**os.environ, "CORP_UPLOAD_KEY": value}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(result.stdout)
    assert value in seen["first"]  # not a secret by its name or value, until registered
    assert value not in seen["second"]


def test_a_value_seen_plain_is_a_secret_once_registered() -> None:
    """Children's environments are checked against what is known to hold no secret; a
    registration makes that knowledge void."""
    from releasekit._redaction import register_secret
    from releasekit.credentials.environment import is_secret

    value = "plain-for-now-" + secrets.token_hex(8)
    assert not is_secret("CORP_SETTING", value)
    assert child_environ({"CORP_SETTING": value}) == {"CORP_SETTING": value}
    register_secret(value)
    assert is_secret("CORP_SETTING", value)
    assert child_environ({"CORP_SETTING": value}) == {}


@pytest.mark.skipif(not LINUX, reason="prctl")
def test_a_process_holding_a_secret_is_not_dumpable(credentials: dict[str, str]) -> None:
    code = (
        "import ctypes; from releasekit.credentials import take_secret;"
        "take_secret('PYPI_API_TOKEN'); from releasekit.credentials.environment import seal;"
        "seal(); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    env = {**os.environ, "PYPI_API_TOKEN": credentials["PYPI_API_TOKEN"]}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0"


def test_children_get_no_credential_by_name_or_by_value(
    monkeypatch: pytest.MonkeyPatch, credentials: dict[str, str]
) -> None:
    register_secret_variable("CORP_UPLOAD_KEY")  # as loading a project that names it does
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOME_URL", "https://user:hunter22@example.invalid/simple/")
    monkeypatch.setenv("HARMLESS", "kept")
    env = child_environ()
    assert_clean("a child's environment", json.dumps(env), credentials)
    assert "SOME_URL" not in env
    assert env["HARMLESS"] == "kept"
    # an environment given explicitly is scrubbed too
    given = {"A": credentials["PYPI_API_TOKEN"], "B": "kept", "GITHUB_TOKEN": "ghs_x"}
    assert child_environ(given) == {"B": "kept"}
    # what releasekit reads stays readable in this process, from memory
    assert "PYPI_API_TOKEN" not in os.environ
    assert take_secret("PYPI_API_TOKEN") == credentials["PYPI_API_TOKEN"]


# --- plain http (item 2) -------------------------------------------------------------------


def corp(url: str, *, allow: bool = False) -> Index:
    return Index("corp", url, url + "simple/", "CORP_UPLOAD_KEY", allow_insecure_http=allow)


@pytest.mark.parametrize(
    "url", ["http://192.0.2.1/", "http://pypi.corp.example/", "http://[2001:db8::1]:8080/"]
)
def test_credentials_over_plain_http_to_another_host_are_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CORP_UPLOAD_KEY", "corp-password-123")
    with pytest.raises(CredentialError, match=r"plain http://[\s\S]*allow-insecure-http") as info:
        resolve_credentials(corp(url))
    assert "corp-password-123" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/", "http://127.8.9.10/", "http://localhost:8080/", "http://[::1]/"]
)
def test_credentials_over_http_to_this_machine_are_accepted(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CORP_UPLOAD_KEY", "corp-password-123")
    assert resolve_credentials(corp(url)).password == "corp-password-123"


def test_allow_insecure_http_accepts_it_and_doctor_warns(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORP_UPLOAD_KEY", "corp-password-123")
    assert resolve_credentials(corp("http://192.0.2.1/", allow=True)).source == "CORP_UPLOAD_KEY"
    table = {"upload-url": "http://192.0.2.1/", "simple-url": "http://192.0.2.1/simple/"}
    allowed = Project.load(
        project_dir,
        indexes={"corp": {**table, "token-env": "CORP_UPLOAD_KEY", "allow-insecure-http": True}},
    )
    assert allowed.index("corp").allow_insecure_http
    reports = {r.index: r for r in doctor(allowed)}
    assert "allow-insecure-http" in (reports["corp"].warning or "")
    refused = Project.load(project_dir, indexes={"corp": {**table, "token-env": "CORP_UPLOAD_KEY"}})
    with pytest.raises(ReleasekitError, match="plain http"):
        doctor(refused)


# --- credentials in an index URL (item 5) --------------------------------------------------


def test_url_userinfo_is_kept_apart_masked_and_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    from releasekit._redaction import redact

    password = "p@ss/" + secrets.token_hex(8)
    url = f"https://reader:{quote(password, safe='')}@pypi.corp.example/simple/"
    monkeypatch.setenv("RELEASEKIT_CORP_SIMPLE_URL", url)
    monkeypatch.setenv("RELEASEKIT_CORP_UPLOAD_URL", url.replace("/simple/", "/"))
    index = resolve_index("corp", {"corp": IndexSettings()})
    assert index.simple_url == "https://pypi.corp.example/simple/"
    assert index.upload_url == "https://pypi.corp.example/"
    assert index.simple_auth == ("reader", password)
    assert password not in repr(index) and password not in index.display
    for form in forms(password):
        assert form not in redact(f"the index said {form}")
    assert resolve_credentials(index).source == "the upload URL"


@pytest.fixture
def private_index() -> Iterator[Index]:
    return Index(
        "corp",
        "https://pypi.corp.example/",
        "https://pypi.corp.example/simple/",
        simple_auth=("reader", "netrc-" + secrets.token_hex(8)),
    )


def test_url_userinfo_reaches_installers_only_in_a_private_netrc(private_index: Index) -> None:
    assert private_index.simple_auth is not None
    with netrc_for(private_index) as extra:
        path = Path(extra["NETRC"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        if os.name == "posix":
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        text = path.read_text()
        assert "machine pypi.corp.example" in text
        assert private_index.simple_auth[1] in text
    assert not path.parent.exists()
    with netrc_for(Index("plain", "https://h/", "https://h/simple/")) as none:
        assert none == {}


def test_url_userinfo_over_plain_http_is_refused() -> None:
    insecure = Index(
        "corp", "http://192.0.2.1/", "http://192.0.2.1/simple/", simple_auth=("reader", "x" * 12)
    )
    with pytest.raises(CredentialError, match="plain http"), netrc_for(insecure):
        pytest.fail("no netrc for a password over plain http")
