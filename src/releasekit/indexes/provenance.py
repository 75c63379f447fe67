"""Who published a file: its PEP 740 provenance, read from the index and verified offline.

The simple JSON API gives each file a ``provenance`` URL (the index's integrity API). The
provenance object holds attestation bundles, each naming the trusted publisher that signed
them (repository, workflow, environment). Each attestation is verified here, offline, against
Sigstore's embedded trust root: its certificate must be that publisher's and its subject the
file's name and sha256. pypi-attestations (and sigstore) are imported only when a file has
provenance.

Rehearsals and tests sign with a local test key (``LocalTestSigner``); :class:`LocalTrust`
accepts exactly the certificates it is given, only within :func:`trusting`, a Python-API
block: no setting or environment variable can make verification trust anything but Sigstore.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from releasekit.indexes.simple import IndexClient, IndexFile

if TYPE_CHECKING:
    from pypi_attestations import Attestation
    from pypi_attestations import Distribution as AttestedFile

_log = logging.getLogger(__name__)

#: How many provenance objects are read at once (one index, small JSON documents).
_READERS = 8
_KINDS = {"github": "GitHub", "gitlab": "GitLab"}


@dataclass(frozen=True)
class Publisher:
    """The trusted publisher named in an attestation bundle (as the index recorded it)."""

    kind: str
    repository: str | None = None
    workflow: str | None = None
    environment: str | None = None
    identity: str | None = None

    def describe(self) -> str:
        """One line: ``GitHub owner/repo, workflow publish.yml, environment pypi``."""
        parts = [f"{self.kind} {self.repository or self.identity or '(unnamed)'}"]
        if self.workflow:
            parts.append(f"workflow {self.workflow}")
        if self.environment:
            parts.append(f"environment {self.environment}")
        return ", ".join(parts)

    def is_expected(self, expected: str) -> bool:
        """True when this is the publisher ``expected`` (``github:OWNER/REPO`` or
        ``gitlab:GROUP/PROJECT``) names; repository names compare without case."""
        forge, _, repository = expected.partition(":")
        return (
            self.kind == _KINDS.get(forge.lower())
            and self.repository is not None
            and self.repository.lower() == repository.lower()
        )


@dataclass(frozen=True)
class FileProvenance:
    """What a file's provenance says and whether it holds.

    ``publishers`` is empty when the file has no provenance. ``problem`` says why the
    provenance does not hold (unreadable, or an attestation that fails verification).
    """

    filename: str
    publishers: tuple[Publisher, ...] = ()
    verified: bool = False
    problem: str | None = None
    #: What vouched for the certificates, when not Sigstore (a :class:`LocalTrust`'s label).
    verified_by: str = ""

    def describe(self) -> str:
        """The publisher line: who published it, and whether that was verified (and by
        what, when not by Sigstore)."""
        if not self.publishers:
            return "none"
        who = "; ".join(p.describe() for p in self.publishers)
        if self.verified:
            return f"{who} (verified{f' with {self.verified_by}' if self.verified_by else ''})"
        return f"{who} (NOT verified: {self.problem})"

    def expectation_problem(self, expected: str) -> str | None:
        """Why this file was not published by ``expected``, or None when it was (verified)."""
        if not self.publishers:
            return self.problem or "it has no provenance"
        if not self.verified:
            return f"its provenance does not verify: {self.problem}"
        others = [p for p in self.publishers if not p.is_expected(expected)]
        if others:
            return "it was published by " + "; ".join(p.describe() for p in others)
        return None


def _publisher(model: object) -> Publisher:
    kind = str(getattr(model, "kind", "unknown"))
    repository = getattr(model, "repository", None) or getattr(model, "vcs_origin", None)
    return Publisher(
        kind=kind,
        repository=repository,
        workflow=getattr(model, "workflow", None) or getattr(model, "workflow_filepath", None),
        environment=getattr(model, "environment", None) or None,
        identity=getattr(model, "email", None) or getattr(model, "project_id", None),
    )


class Trust(Protocol):
    """What vouches for attestations: verifies one for a publisher and a file, or raises
    pypi-attestations' ``AttestationError`` (or ``ValueError``) saying why not."""

    #: How the publisher line names it ("": Sigstore, said by nothing more than "verified").
    label: str

    def verify(self, attestation: Attestation, publisher: Any, dist: AttestedFile) -> None:
        """Raise unless ``attestation`` is by ``publisher`` for ``dist``."""
        ...


class SigstoreTrust:
    """Sigstore's embedded trust root, offline: the production verification, always the default."""

    label = ""

    def verify(self, attestation: Attestation, publisher: Any, dist: AttestedFile) -> None:
        """pypi-attestations' own verification (certificate chain, log entry, publisher)."""
        attestation.verify(publisher, dist, offline=True)


class LocalTrust:
    """Trusts exactly the given DER certificates of local test signers, never anything else.

    An attestation verifies when its certificate is one of them, its signature over the DSSE
    pre-authentication encoding of its statement verifies with that certificate's key, its
    statement is a PyPI publish attestation whose only subject is the file's name and sha256,
    and the certificate's Fulcio extensions satisfy pypi-attestations' own policy for the
    publisher (issuer, repository, workflow at the signed ref).
    """

    label = "a local test key, not Sigstore"

    def __init__(self, *certificates: bytes) -> None:
        self._certificates = frozenset(certificates)

    def verify(self, attestation: Attestation, publisher: Any, dist: AttestedFile) -> None:
        """Verify ``attestation`` against the local certificates (see the class)."""
        import json

        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from pypi_attestations import AttestationType, VerificationError
        from sigstore.errors import VerificationError as PolicyError

        from releasekit.credentials.signing import pae

        material = attestation.verification_material.certificate
        if material not in self._certificates:
            raise VerificationError("its certificate is not one of the trusted local test keys")
        certificate = x509.load_der_x509_certificate(material)
        key = certificate.public_key()
        envelope = attestation.envelope
        try:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise InvalidSignature
            key.verify(envelope.signature, pae(envelope.statement), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise VerificationError("the signature does not match the statement") from None
        statement = json.loads(envelope.statement)
        subjects = statement.get("subject") or []
        if statement.get("predicateType") != AttestationType.PYPI_PUBLISH_V1.value:
            raise VerificationError("it is not a PyPI publish attestation")
        if [(s.get("name"), (s.get("digest") or {}).get("sha256")) for s in subjects] != [
            (dist.name, dist.digest)
        ]:
            raise VerificationError("its subject is not this file's name and sha256")
        try:
            publisher._as_policy().verify(certificate)  # pypi-attestations' own policy
        except PolicyError as exc:
            raise VerificationError(f"the certificate is not the publisher's: {exc}") from None


_TRUST: ContextVar[Trust | None] = ContextVar("releasekit_provenance_trust", default=None)


@contextmanager
def trusting(trust: Trust) -> Iterator[None]:
    """Verify provenance with ``trust`` instead of Sigstore within the block (rehearsals and
    tests, with a :class:`LocalTrust`). Only Python code can do this."""
    reset = _TRUST.set(trust)
    try:
        yield
    finally:
        _TRUST.reset(reset)


def check_provenance(
    filename: str, sha256: str | None, text: str | None, trust: Trust | None = None
) -> FileProvenance:
    """Parse a provenance object (``text``; None: the file has none) and verify each of its
    attestations offline for the file ``filename`` with ``sha256``, with ``trust`` (default:
    the :func:`trusting` block's, else Sigstore's embedded trust root)."""
    trust = trust or _TRUST.get() or SigstoreTrust()
    if text is None:
        return FileProvenance(filename, problem="it has no provenance")
    from pydantic import ValidationError
    from pypi_attestations import AttestationError, Distribution, Provenance

    # Offline on purpose: sigstore's note that its trust root is not refreshed is not news.
    logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)

    try:
        provenance = Provenance.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return FileProvenance(
            filename, problem=f"its provenance is not a PEP 740 object ({where}: {first['msg']})"
        )
    publishers = tuple(_publisher(bundle.publisher) for bundle in provenance.attestation_bundles)
    if not publishers:
        return FileProvenance(filename, problem="its provenance holds no attestation bundle")
    if sha256 is None:
        return FileProvenance(filename, publishers, problem="the index lists no sha256 for it")
    try:
        dist = Distribution(name=filename, digest=sha256)
        for bundle in provenance.attestation_bundles:
            if not bundle.attestations:
                return FileProvenance(filename, publishers, problem="a bundle has no attestation")
            for attestation in bundle.attestations:
                trust.verify(attestation, bundle.publisher, dist)
    except (AttestationError, ValueError) as exc:
        return FileProvenance(filename, publishers, problem=str(exc).splitlines()[0])
    return FileProvenance(filename, publishers, verified=True, verified_by=trust.label)


def read_provenance(
    client: IndexClient, items: Iterable[tuple[IndexFile, str | None]], trust: Trust | None = None
) -> list[FileProvenance]:
    """The provenance of each listed file, read from the index and verified offline (with
    ``trust``, as :func:`check_provenance`).

    ``items`` pairs each file with the sha256 to verify against (the local file's, or the
    index's own when None). Reads a few files at once; the order of ``items`` is kept.
    """
    pairs = list(items)
    chosen = trust or _TRUST.get() or SigstoreTrust()  # the readers' threads see no context

    def one(pair: tuple[IndexFile, str | None]) -> FileProvenance:
        item, sha256 = pair
        text = client.provenance_json(item)
        _log.debug("%s: provenance %s", item.filename, "found" if text else "none")
        return check_provenance(item.filename, sha256 or item.sha256, text, chosen)

    if len(pairs) <= 1:
        return [one(pair) for pair in pairs]
    with ThreadPoolExecutor(max_workers=min(_READERS, len(pairs))) as pool:
        return list(pool.map(one, pairs))
