"""Upload a project's checked files to an index: idempotent, race-safe, explained.

What the index already holds is read first: a file there with the same sha256 is skipped
and reported, one with a different sha256 is a hard error. Files are checked
(:func:`releasekit._check.check`) before anything is sent. Each upload is the legacy upload
protocol that twine speaks (twine's own package model builds the form), sent with the
secret in memory only; transient failures are retried with backoff under a deadline, and
every refusal is explained. The same code serves PyPI, TestPyPI, pypiserver and devpi.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import httpx

from releasekit._check import check
from releasekit._distributions import Distribution
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.credentials import (
    Credentials,
    check_token,
    expected_location,
    refuse_plain_http,
    resolve_credentials,
)
from releasekit.credentials.signing import Signer, attestations_for
from releasekit.credentials.trusted import REFRESH_AFTER
from releasekit.errors import DistributionError, UploadError
from releasekit.indexes import (
    USER_AGENT,
    Index,
    IndexClient,
    ProjectPage,
    RetryPolicy,
    http_event_hooks,
)
from releasekit.indexes.network import client_options
from releasekit.indexes.pypi_rules import refuse_by_project_page
from releasekit.indexes.refusals import explain_refusal

Status = Literal["uploaded", "already there"]
#: What an identical file already on the index means for attestations: the index answers
#: 200 to a re-upload without reading them, so the file keeps the provenance it had.
_KEEPS_PROVENANCE = " It keeps the provenance it had (attestations are not sent again)."
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    """What happened to one file: ``"uploaded"`` or ``"already there"`` (same sha256)."""

    distribution: Distribution
    status: Status


def upload(
    project: Project,
    index: Index | str,
    credentials: Credentials | None = None,
    dist_dir: Path | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout: float = 300.0,
    signer: Signer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[UploadResult]:
    """Upload every file of ``project`` in the dist dir to ``index`` (a name or an Index):
    the wheels first, the sdist last.

    ``credentials`` default to :func:`resolve_credentials` for the index; either way they
    are checked offline (instance, scope, expiry) before any request. PEP 740 attestations
    go with the files as the ``attestations`` setting says: every file to send is attested
    (found beside it, or signed by ``signer``, else by Sigstore with the job's identity)
    before the first is sent. A minted token older than 10 minutes (by ``clock``) is
    replaced by a fresh one before the next file. Raises :class:`CheckFailed`,
    :class:`CredentialError`, :class:`AttestationError`, :class:`UploadError` or
    :class:`IndexUnavailable`; returns one result per file.
    """
    if isinstance(index, str):
        index = project.index(index)
    if credentials is None:
        credentials = resolve_credentials(index, project.name)
    elif credentials.token is not None:
        check_token(credentials.token, index, credentials.source, project.name)
    refuse_plain_http(index, index.upload_url, f"the credentials from {credentials.source}")
    reporter = get_reporter()
    dists = check(project, dist_dir)
    reporter.info(f"Uploading to {index.display} with {credentials.describe()}.")
    warning = credentials.least_privilege_warning(project.name)
    if warning:
        reporter.warn(warning)
    policy = retry or RetryPolicy()
    results: list[UploadResult] = []
    # A private index may need its credentials to read too; PyPI's tokens only upload.
    private = expected_location(index) is None
    reading = (credentials.username, credentials.password) if private else None
    with IndexClient(index, retry=policy, credentials=reading) as client:
        page = client.project_page(project.name)
        refuse_by_project_page(page, project.name, dists, index)
        present = _listed_sha256(client, page, dists)
        conflicts = [
            _conflict(dist, remote, index)
            for dist in dists
            if (remote := present.get(dist.filename)) is not None and remote != dist.sha256
        ]
        if conflicts:
            raise UploadError(
                "\n".join(c.what for c in conflicts), why=conflicts[0].why, fix=conflicts[0].fix
            )
        to_send = [dist for dist in dists if present.get(dist.filename) != dist.sha256]
        attestations = attestations_for(
            to_send, project.settings.attestations, credentials, index, signer
        )
        sender = _Sender(index, credentials, policy, timeout, clock)
        try:
            # Wheels first, the sdist last: an interrupted upload never leaves a version
            # with only its sdist, which would make every installer build from source.
            for dist in sorted(dists, key=lambda d: d.kind == "sdist"):
                if present.get(dist.filename) == dist.sha256:
                    _log.debug(
                        "skip %s: %s lists it with sha256 %s, the same as the local file",
                        dist.filename,
                        index.name,
                        dist.sha256,
                    )
                    reporter.info(
                        f"{dist.filename} is already there (same sha256); skipped."
                        + _KEEPS_PROVENANCE * (project.settings.attestations != "never")
                    )
                    results.append(UploadResult(dist, "already there"))
                    continue
                status = sender.send(dist, client, project, attestations.get(dist.filename))
                results.append(UploadResult(dist, status))
        finally:
            sender.close()
    reporter.table(
        f"{project.name} {dists[0].version} on {index.display}",
        ("file", "size", "sha256", "status"),
        [
            (r.distribution.filename, _size(r.distribution.size), r.distribution.sha256, r.status)
            for r in results
        ],
    )
    return results


def _listed_sha256(
    client: IndexClient, page: ProjectPage, dists: list[Distribution]
) -> dict[str, str]:
    """The sha256 of each of ``dists`` the project ``page`` lists (hashed here if the index
    gives none)."""
    listed = {item.filename: item for item in page.files}
    found = {}
    for dist in dists:
        item = listed.get(dist.filename)
        remote = client.listed_sha256(item, dist.size) if item is not None else None
        if remote is not None:
            found[dist.filename] = remote
    return found


def _conflict(dist: Distribution, remote: str, index: Index) -> UploadError:
    return UploadError(
        f"{dist.filename} is already on {index.display} with different content: the index "
        f"has sha256 {remote}, the local file has sha256 {dist.sha256}.",
        why="The build is not reproducible from what was uploaded: releasekit builds with "
        "SOURCE_DATE_EPOCH from the last commit, so a rebuild of the same commit is "
        "byte-identical (except setuptools sdists); a difference means the tree, the commit, "
        "the build backend's version or the build changed since. An index never lets a "
        "filename be reused with other content (PyPI not even after deletion).",
        fix="Bump the version (`nox -s release -- NEXT`, or build with --dev for TestPyPI), "
        "rebuild with `nox -s build`, and upload again. Or keep what is on the index: check "
        "out the commit it was built from and build again, or download the index's files "
        "into the dist dir.",
    )


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def _form(dist: Distribution) -> dict[str, list[str]]:
    """The upload form of ``dist`` as twine builds it (metadata, digests, protocol fields)."""
    from twine.exceptions import TwineException
    from twine.package import PackageFile

    try:
        package = PackageFile.from_filename(str(dist.path), comment=None)
        fields = _form_fields(package.metadata_dictionary())
    except (TwineException, ValueError, OSError) as exc:
        raise DistributionError(
            f"{dist.filename} could not be read for upload: {exc}",
            fix="Rebuild with `nox -s build`.",
        ) from exc
    if package.sha2_digest != dist.sha256:
        raise DistributionError(
            f"{dist.filename} changed after it was checked.",
            why="Something rewrote the dist dir during the upload.",
            fix="Rebuild with `nox -s build` and upload again.",
        )
    form: dict[str, list[str]] = {":action": ["file_upload"], "protocol_version": ["1"]}
    for key, value in fields:
        form.setdefault(key, []).append(str(value))
    return form


def _form_fields(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Metadata as upload form fields, as ``twine.repository.Repository`` sends them.

    (Importing twine.repository loads requests, 0.2 s, for this one conversion.)
    """
    fields: list[tuple[str, str]] = []
    for key, value in metadata.items():
        if key == "project_urls":
            fields += [(key, f"{label}, {url}") for label, url in value.items()]
        elif key == "keywords":
            fields.append((key, ", ".join(value)))
        elif isinstance(value, (list, tuple)):
            fields += [(key, str(item)) for item in value]
        else:
            fields.append((key, str(value)))
    return fields


class _Counting:
    """A file whose reads advance a progress bar (httpx streams the upload through it)."""

    def __init__(self, handle: IO[bytes], advance: Callable[[int], None]) -> None:
        self._handle = handle
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._advance(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:
        return self._handle.fileno()


class _Sender:
    """POSTs files to one index's upload endpoint, with retries and explained refusals."""

    def __init__(
        self,
        index: Index,
        credentials: Credentials,
        retry: RetryPolicy,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.credentials = credentials
        self.retry = retry
        self.timeout = timeout
        self.clock = clock
        self._minted_at = credentials.minted_at
        self._http = self._client(credentials)

    def _client(self, credentials: Credentials) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=10.0),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            auth=(credentials.username, credentials.password),
            follow_redirects=False,
            **client_options(credentials=True),
            event_hooks=http_event_hooks(),
        )

    def close(self) -> None:
        self._http.close()

    def _refresh(self) -> None:
        """Mint a fresh token when the minted one is past 10 of its 15 minutes."""
        renew = self.credentials.renew
        if renew is None or self._minted_at is None:
            return
        age = self.clock() - self._minted_at
        if age < REFRESH_AFTER:
            return
        _log.debug("the minted token is %.0f s old: minting a fresh one", age)
        self.credentials = renew()
        self._minted_at = self.clock()
        self._http.close()
        self._http = self._client(self.credentials)
        get_reporter().info(
            f"Minted a fresh upload token for {self.index.name} (the last one was "
            f"{age / 60:.0f} minutes old)."
        )

    def _post(
        self, dist: Distribution, form: dict[str, list[str]], budget: float
    ) -> httpx.Response:
        reporter = get_reporter()
        with (
            dist.path.open("rb") as handle,
            reporter.progress(f"Uploading {dist.filename}", dist.size) as advance,
        ):
            response = self._http.post(
                self.index.upload_url,
                data=form,
                files={
                    "content": (
                        dist.filename,
                        cast(IO[bytes], _Counting(handle, advance)),
                        "application/octet-stream",
                    )
                },
                timeout=httpx.Timeout(min(self.timeout, budget), connect=min(10.0, budget)),
            )
        if response.status_code >= 500:
            response.raise_for_status()  # transient: RetryPolicy tries again
        return response

    def send(
        self,
        dist: Distribution,
        client: IndexClient,
        project: Project,
        attestations: str | None = None,
    ) -> Status:
        """Upload ``dist`` (with its ``attestations`` field, a JSON list); "already there"
        when the index turns out to hold the same file."""
        self._refresh()
        form = _form(dist)
        if attestations is not None:
            form["attestations"] = [attestations]
        started = time.perf_counter()
        response = self.retry.run(
            lambda budget: self._post(dist, form, budget), f"upload {dist.filename}", self.index
        )
        status = response.status_code
        if status in (200, 201):
            get_reporter().success(
                f"Uploaded {dist.filename} to {self.index.name} "
                f"({time.perf_counter() - started:.1f} s)."
            )
            return "uploaded"
        text = _response_text(response)
        if status == 409 or (status == 400 and "already exist" in text.lower()):
            page = client.project_page(project.name)
            remote = _listed_sha256(client, page, [dist]).get(dist.filename)
            if remote == dist.sha256:
                _log.debug(
                    "%s refused %s (HTTP %d), and lists it with the same sha256: counted as "
                    "already there",
                    self.index.name,
                    dist.filename,
                    status,
                )
                get_reporter().info(
                    f"{dist.filename} is already there (same sha256, uploaded meanwhile)."
                    + _KEEPS_PROVENANCE * (attestations is not None)
                )
                return "already there"
            if remote is not None:
                raise _conflict(dist, remote, self.index)
        raise explain_refusal(status, text, self.index, dist, self.credentials.source)


def _response_text(response: httpx.Response) -> str:
    """The index's own words: a JSON message, else the reason phrase and the body's text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return " ".join(str(body["message"]).split())
    text = " ".join(response.text.split())[:500]
    reason = response.reason_phrase
    return f"{reason}: {text}" if text and text not in reason else reason or text
