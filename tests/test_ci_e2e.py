"""The generated CI files' publishing jobs, run end to end in CI-shaped environments.

A GitHub Actions job and a GitLab CI job are each imitated by the variables those CIs set
(GitHub's OIDC request variables pointing at a stand-in token service; GitLab's ``id_tokens``
variables as the generated ``.gitlab-ci.yml`` declares them), against a stand-in PyPI that
mints trusted-publishing tokens, checks the ``attestations`` field with pypi-attestations'
models and serves PEP 691 pages with PEP 740 provenance (tests/provenance_index.py), and a
stand-in forge API (tests/forge_standin.py). The commands are read from the files ``init_ci``
writes and run with nox in this process (the noxfile, the argument parsing and every child
process are real; one process keeps the local signer's key and the local trust in memory):
upload with attestations, verify showing the publisher, audit flagging a version another
repository uploaded, and ``publish_release``. Signing uses a local test key whose certificate
carries what Fulcio would derive from the job's identity: never Sigstore.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nox.__main__
import pytest
import yaml
from test_secret_exposure import found_in

import releasekit.credentials
from conftest import git, write_project
from forge_standin import ForgeStandIn
from provenance_index import Hosted, Issuer, StandIn, environ, jwt, publisher, serve, serve_issuer
from provenance_index import Project as Page
from releasekit._distributions import find_distributions
from releasekit._report import set_reporter
from releasekit.credentials.signing import LocalTestSigner, signing_with
from releasekit.credentials.trusted import SIGSTORE_AUDIENCE, _claims, identity_token
from releasekit.indexes.provenance import LocalTrust, trusting

pytestmark = pytest.mark.slow

TAG = "sample-pkg-v0.1.0"
SHA = "0123456789abcdef0123456789abcdef01234567"
FORGE_TOKEN = "ghs_e2eForgeToken0123456789abcdef"
REQUEST_TOKEN = "request-e2e-5f1d0c9a8b7e6d5c4b3a2918"
GITHUB_CLAIMS = {
    "iss": "https://token.actions.githubusercontent.com",
    "repository": "acme/sample-pkg",
    "repository_owner": "acme",
    "job_workflow_ref": f"acme/sample-pkg/.github/workflows/publish.yml@refs/tags/{TAG}",
    "workflow_ref": f"acme/sample-pkg/.github/workflows/publish.yml@refs/tags/{TAG}",
    "environment": "pypi",
    "ref": f"refs/tags/{TAG}",
    "ref_type": "tag",
    "sha": SHA,
    "sub": "repo:acme/sample-pkg:environment:pypi",
}
GITLAB_CLAIMS = {
    "iss": "https://gitlab.com",
    "project_path": "acme/sample-pkg",
    "ci_config_ref_uri": f"gitlab.com/acme/sample-pkg//.gitlab-ci.yml@refs/tags/{TAG}",
    "environment": "pypi",
    "ref": TAG,
    "ref_type": "tag",
    "sha": SHA,
    "sub": f"project_path:acme/sample-pkg:ref_type:tag:ref:{TAG}",
}
#: Another repository's identity: it uploaded 0.0.9, with valid provenance of its own.
MALLORY_CLAIMS = {
    **GITHUB_CLAIMS,
    "repository": "mallory/sample-pkg",
    "repository_owner": "mallory",
    "job_workflow_ref": "mallory/sample-pkg/.github/workflows/publish.yml@refs/tags/v0.0.9",
    "workflow_ref": "mallory/sample-pkg/.github/workflows/publish.yml@refs/tags/v0.0.9",
    "ref": "refs/tags/v0.0.9",
}
CHANGELOG = "# Changelog\n\n## [0.1.0] - 2026-01-02\n\n### Added\n\n- the first release\n"
#: Variables a CI job may hold that must not leak from the test's own environment.
CI_VARIABLES = re.compile(
    r"(GITHUB_|ACTIONS_|RUNNER_|CI_|GITLAB_|TWINE_|RELEASEKIT_).*|CI|PYPI_API_TOKEN|"
    r"TEST_PYPI_API_TOKEN|.*_ID_TOKEN"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project, once per module: both CI files written by ``init_ci``, committed,
    tagged, then built and checked by the build job's own commands."""
    root = write_project(
        tmp_path_factory.mktemp("e2e") / "sample-pkg",
        releasekit='expect-publisher = "github:acme/sample-pkg"\n',
    )
    (root / "CHANGELOG.md").write_text(CHANGELOG)
    git(root, "init", "-q", "-b", "main")
    with pytest.MonkeyPatch.context() as env:
        scrub(env)
        for ci in ("github", "gitlab"):
            code, out = run_nox(
                env, root, ["-s", "init_ci", "--", "--repository", "acme/sample-pkg", "--ci", ci]
            )
            assert code == 0, out
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "feat: first version")
        git(root, "tag", TAG)
        workflow = yaml.safe_load((root / ".github/workflows/publish.yml").read_text())
        for args in job_commands(workflow["jobs"]["build"], tag=True):
            code, out = run_nox(env, root, args)
            assert code == 0, out
    return root


@dataclass
class Run:
    """One CI run: the project checkout, the stand-ins, and everything seen."""

    root: Path
    index: StandIn
    forge: ForgeStandIn
    outputs: list[str] = field(default_factory=list)
    children: list[dict[str, str]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    #: The certificate of the other repository's signer (trusted: its provenance verifies).
    mallory: bytes = b""

    def job(self, monkeypatch: pytest.MonkeyPatch, args: list[str], env: Mapping[str, str]) -> str:
        """Run nox with ``args`` as a fresh job with exactly ``env`` (plus the stand-ins'
        addresses); returns its output, failing the test unless nox succeeded."""
        code, out = self.job_code(monkeypatch, args, env)
        assert code == 0, out
        return out

    def job_code(
        self, monkeypatch: pytest.MonkeyPatch, args: list[str], env: Mapping[str, str]
    ) -> tuple[int, str]:
        with monkeypatch.context() as patch:
            scrub(patch)
            for key, value in {**environ(self.index), **env}.items():
                patch.setenv(key, value)
            record_children(patch, self.children)
            code, out = run_nox(patch, self.root, args)
        releasekit.credentials.forget_secrets()  # the next job runs on another machine
        self.outputs.append(out)
        return code, out

    def leaks(self) -> list[str]:
        """The secrets seen in any output or in any child's environment or command line."""
        secrets = {**self.secrets, **{f"minted-{i}": t for i, t in enumerate(self.index.minted)}}
        texts = [*self.outputs, *(repr(child) for child in self.children)]
        return sorted({name for text in texts for name in found_in(text, secrets)})


@pytest.fixture
def ci_run(repository: Path, tmp_path: Path) -> Iterator[Run]:
    """A private checkout, a stand-in PyPI with trusted publishing for ``pypi`` holding a
    0.0.9 another repository uploaded, and a stand-in forge."""
    root = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(repository), str(root))
    dist = repository / "dist"
    (root / "dist").mkdir()
    for path in dist.iterdir():
        (root / "dist" / path.name).write_bytes(path.read_bytes())
    set_reporter(None)
    with serve() as index, ForgeStandIn(FORGE_TOKEN) as forge:
        index.audience = "pypi"
        run = Run(root, index, forge, secrets={"forge": FORGE_TOKEN, "request": REQUEST_TOKEN})
        mallory = LocalTestSigner(claims=MALLORY_CLAIMS)
        index.projects["sample-pkg"] = Page([mallory_upload(mallory, tmp_path)])
        run.mallory = mallory.certificate
        yield run
    set_reporter(None)


def mallory_upload(signer: LocalTestSigner, tmp_path: Path) -> Hosted:
    """A 0.0.9 wheel with provenance naming mallory/sample-pkg, signed by that identity."""
    path = tmp_path / "sample_pkg-0.0.9-py3-none-any.whl"
    path.write_bytes(b"not the repository's wheel")
    bundle = {"publisher": publisher(MALLORY_CLAIMS), "attestations": signer.sign([path])}
    provenance = json.dumps({"version": 1, "attestation_bundles": [bundle]})
    return Hosted(path.name, path.read_bytes(), provenance)


class LocalFulcio:
    """Signs as :class:`SigstoreSigner` does, from the job's own identity token for the
    audience ``sigstore``, but with a local key: its certificate carries what Fulcio would
    certify from that token's claims (repository, workflow, ref, issuer)."""

    kind = LocalTestSigner.kind

    def __init__(self) -> None:
        self.certificates: list[bytes] = []

    def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
        token = identity_token(SIGSTORE_AUDIENCE, what="signing attestations")
        assert token is not None
        signer = LocalTestSigner(claims=_claims(token))
        self.certificates.append(signer.certificate)
        return signer.sign(files)


# --- running nox as the CI file says -------------------------------------------------------


def scrub(patch: pytest.MonkeyPatch) -> None:
    """Remove every CI variable and credential of the test's own environment."""
    for key in list(os.environ):
        if CI_VARIABLES.fullmatch(key):
            patch.delenv(key)
    patch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    patch.setenv("NOX_SCRIPT_MODE", "none")


def run_nox(patch: pytest.MonkeyPatch, root: Path, args: list[str]) -> tuple[int, str]:
    """``nox ARGS`` in ``root``, in this process; its exit code and output (colour removed)."""
    patch.chdir(root)
    patch.setattr(sys, "argv", ["nox", *args])
    code: int | str | None = 0
    with tempfile.TemporaryFile("w+") as out:
        patch.setattr(sys, "stdout", out)
        patch.setattr(sys, "stderr", out)
        try:
            nox.__main__.main()
        except SystemExit as exc:
            code = exc.code
        out.seek(0)
        text = ANSI.sub("", out.read())
    return (code if isinstance(code, int) else 1), text


def record_children(patch: pytest.MonkeyPatch, seen: list[dict[str, str]]) -> None:
    """Record the environment and command line of every child process started."""
    original = subprocess.Popen.__init__

    def init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        env = kwargs.get("env")
        seen.append({"argv": repr(args), **(dict(os.environ) if env is None else dict(env))})
        original(self, args, *rest, **kwargs)

    patch.setattr(subprocess.Popen, "__init__", init)


def job_commands(job: Mapping[str, Any], *, tag: bool) -> list[list[str]]:
    """The nox arguments of each ``run:`` step of a GitHub job (the tag's steps when
    ``tag``); every step must run releasekit's nox as the workflow pins it."""
    commands = []
    for step in job["steps"]:
        if "run" not in step:
            continue
        condition = step.get("if", "")
        if condition and (condition == "github.ref_type == 'tag'") != tag:
            continue
        commands.append(nox_args(step["run"]))
    return commands


def nox_args(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[:4] == ["uvx", "--with", "$RELEASEKIT", "nox"], line
    return words[4:]


def github_job(
    workflow: Mapping[str, Any], name: str, issuer: Issuer
) -> tuple[list[str], dict[str, str]]:
    """The one command of the GitHub job ``name`` and the environment GitHub gives it on a
    tag push: the workflow's and step's ``env`` (a secret that does not exist is an empty
    string), and the OIDC request variables only with ``id-token: write``."""
    job = workflow["jobs"][name]
    [step] = [step for step in job["steps"] if "run" in step]
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/sample-pkg",
        "GITHUB_REPOSITORY_OWNER": "acme",
        "GITHUB_REF": f"refs/tags/{TAG}",
        "GITHUB_REF_NAME": TAG,
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_SHA": SHA,
        "GITHUB_WORKFLOW_REF": GITHUB_CLAIMS["workflow_ref"],
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_API_URL": "",  # set by the caller: the stand-in forge
        **{key: str(value) for key, value in workflow["env"].items()},
    }
    for key, value in (step.get("env") or {}).items():
        expression = re.fullmatch(r"\$\{\{ (.+) \}\}", str(value))
        assert expression, value
        env[key] = {"github.token": FORGE_TOKEN}.get(expression[1], "")
        assert expression[1] == "github.token" or expression[1].startswith("secrets."), value
    if job["permissions"].get("id-token") == "write":
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = issuer.url
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = REQUEST_TOKEN
    return nox_args(step["run"]), env


def gitlab_job(
    pipeline: Mapping[str, Any], name: str, job_token: str
) -> tuple[list[str], dict[str, str]]:
    """The one command of the GitLab job ``name`` and the variables GitLab gives it in a tag
    pipeline: the template's ``variables``, CI_JOB_TOKEN, and one identity token with
    GITLAB_CLAIMS for each of the job's ``id_tokens``."""
    job = pipeline[name]
    [line] = job["script"]
    env = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_JOB_TOKEN": job_token,
        "CI_PROJECT_PATH": "acme/sample-pkg",
        "CI_PROJECT_NAMESPACE": "acme",
        "CI_PROJECT_NAME": "sample-pkg",
        "CI_PROJECT_ID": "42",
        "CI_COMMIT_TAG": TAG,
        "CI_COMMIT_REF_NAME": TAG,
        "CI_COMMIT_SHA": SHA,
        "CI_CONFIG_PATH": ".gitlab-ci.yml",
        "CI_PIPELINE_IID": "7",
        "CI_SERVER_URL": "https://gitlab.com",
        **{key: str(value) for key, value in pipeline[job["extends"]]["variables"].items()},
    }
    for variable, token in (job.get("id_tokens") or {}).items():
        env[variable] = jwt({**GITLAB_CLAIMS, "aud": token["aud"]})
    return nox_args(line), env


def uploaded(run: Run) -> dict[str, str | None]:
    return {h.filename: h.provenance for h in run.index.projects["sample-pkg"].files}


# --- GitHub Actions ------------------------------------------------------------------------


def test_github_workflow_publishes_with_provenance_end_to_end(
    ci_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = yaml.safe_load((ci_run.root / ".github/workflows/publish.yml").read_text())
    assert workflow["jobs"]["publish-release"]["needs"] == "verify-pypi"
    with serve_issuer(GITHUB_CLAIMS, request_token=REQUEST_TOKEN) as issuer:
        ci_run.secrets["jwt"] = jwt({**GITHUB_CLAIMS, "aud": "pypi"})
        ci_run.secrets["sigstore-jwt"] = jwt({**GITHUB_CLAIMS, "aud": "sigstore"})
        jobs = {}
        for name in ("pypi", "verify-pypi", "publish-release"):
            args, env = github_job(workflow, name, issuer)
            jobs[name] = (args, {**env, "GITHUB_API_URL": ci_run.forge.url})
        assert jobs["pypi"][0] == ["-s", "check_dist", "upload_pypi"]

        fulcio = LocalFulcio()
        with signing_with(fulcio):
            out = ci_run.job(monkeypatch, *jobs["pypi"])
        assert issuer.audiences == ["pypi", "sigstore"]  # the index's, then Sigstore's
        assert "Signed 2 attestation(s) with a local test key (not Sigstore)" in out
        assert [c["repository"] for c in ci_run.index.minted.values()] == ["acme/sample-pkg"]
        dists = {d.filename for d in find_distributions(ci_run.root / "dist")}
        assert dists <= {name for name, prov in uploaded(ci_run).items() if prov}

        with trusting(LocalTrust(*fulcio.certificates, ci_run.mallory)):
            out = ci_run.job(monkeypatch, *jobs["verify-pypi"])
            line = (
                "GitHub acme/sample-pkg, workflow publish.yml, environment pypi "
                "(verified with a local test key, not Sigstore)"
            )
            assert out.count(line) == 2, out
            assert "Every file was published by github:acme/sample-pkg" in out

            code, out = ci_run.job_code(monkeypatch, ["-s", "audit"], jobs["verify-pypi"][1])
            assert code != 0
            assert "0.0.9" in out and "mallory/sample-pkg" in out, out
            assert "0.1.0" not in out.split("Files not published by")[-1], out

            out = ci_run.job(monkeypatch, *jobs["publish-release"])
            assert list(ci_run.forge.state.releases) == [TAG]
            assert set(ci_run.forge.state.files[TAG]) == dists
            assert ci_run.leaks() == []

            # Negative: another expected publisher makes the same files fail, explained.
            pyproject = ci_run.root / "pyproject.toml"
            pyproject.write_text(pyproject.read_text().replace("acme/sample-pkg", "acme/other"))
            code, out = ci_run.job_code(monkeypatch, *jobs["verify-pypi"])
    assert code != 0
    assert "2 files of sample-pkg 0.1.0" in out and "not published by github:acme/other" in out
    assert "it was published by GitHub acme/sample-pkg, workflow publish.yml" in out
    assert ci_run.leaks() == []
    # the recorder saw the jobs' children, and what they were given: the verify job's installer
    assert any(c.get("GITHUB_REPOSITORY") == "acme/sample-pkg" for c in ci_run.children)
    assert any("uv" in c["argv"] and "install" in c["argv"] for c in ci_run.children)


# --- GitLab CI -----------------------------------------------------------------------------


def test_gitlab_pipeline_publishes_with_provenance_end_to_end(
    ci_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = yaml.safe_load((ci_run.root / ".gitlab-ci.yml").read_text())
    pyproject = ci_run.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("github:acme", "gitlab:acme"))
    forge_url = f"{ci_run.forge.url}/api/v4"
    jobs = {}
    for name in ("pypi", "verify-pypi", "gitlab-release"):
        args, env = gitlab_job(pipeline, name, FORGE_TOKEN)
        jobs[name] = (args, {**env, "CI_API_V4_URL": forge_url})
        ci_run.secrets.update({f"{name}-{k}": v for k, v in env.items() if k.endswith("_TOKEN")})
    assert pipeline["gitlab-release"]["needs"][-1] == "verify-pypi"
    assert set(pipeline["pypi"]["id_tokens"]) == {"PYPI_ID_TOKEN", "SIGSTORE_ID_TOKEN"}
    fulcio = LocalFulcio()
    with signing_with(fulcio):
        out = ci_run.job(monkeypatch, *jobs["pypi"])
    assert "Signed 2 attestation(s) with a local test key (not Sigstore)" in out
    assert [c["project_path"] for c in ci_run.index.minted.values()] == ["acme/sample-pkg"]
    with trusting(LocalTrust(*fulcio.certificates, ci_run.mallory)):
        out = ci_run.job(monkeypatch, *jobs["verify-pypi"])
        line = (
            "GitLab acme/sample-pkg, workflow .gitlab-ci.yml, environment pypi "
            "(verified with a local test key, not Sigstore)"
        )
        assert out.count(line) == 2, out
        assert "Every file was published by gitlab:acme/sample-pkg" in out

        code, out = ci_run.job_code(monkeypatch, ["-s", "audit"], jobs["verify-pypi"][1])
        assert code != 0
        assert "0.0.9" in out and "mallory/sample-pkg" in out, out

        ci_run.job(monkeypatch, *jobs["gitlab-release"])
        assert list(ci_run.forge.state.releases) == [TAG]
        dists = {d.filename for d in find_distributions(ci_run.root / "dist")}
        assert set(ci_run.forge.state.files["sample-pkg/0.1.0"]) == dists
    assert ci_run.leaks() == []
