"""PEP 740 attestations for upload: found beside the dists, or signed before anything is sent.

A :class:`Signer` turns files into attestation objects. :class:`SigstoreSigner` signs with
Sigstore, from the CI's identity token for the audience ``sigstore`` (its transparency log is
public and permanent: only real uploads use it). :class:`LocalTestSigner` signs with a
throwaway local key and a self-signed certificate: the same attestation structure, checked
by the same models, trusted by nobody but a :class:`~releasekit.indexes.provenance.LocalTrust`
given it through the Python API; rehearsals use it, and tests (also for a whole block of
sessions, with :func:`signing_with`).
``pypi-attestations`` and ``sigstore`` are imported only when attestations are made or read.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from releasekit._distributions import Distribution
from releasekit._report import get_reporter
from releasekit._settings import Attestations
from releasekit.credentials.sources import Credentials
from releasekit.credentials.trusted import SIGSTORE_AUDIENCE, identity_token
from releasekit.errors import AttestationError
from releasekit.indexes import PYPI, TESTPYPI, Index

if TYPE_CHECKING:
    from pypi_attestations import Attestation

#: The in-toto statement type and DSSE payload type of every PEP 740 attestation.
_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: Fulcio's certificate extensions: OIDC issuer (v2), build signer URI, source repository URI,
#: digest and ref, build config URI (OIDs 1.3.6.1.4.1.57264.1.N).
_FULCIO = "1.3.6.1.4.1.57264.1."


class Signer(Protocol):
    """Makes one PEP 740 attestation (as its JSON object) for each file, in order."""

    @property
    def kind(self) -> str:
        """How reports name this signer."""
        ...

    def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
        """Attest every file; raise :class:`AttestationError` if any cannot be signed."""
        ...


class SigstoreSigner:
    """Signs with Sigstore's public-good instance, as the PyPI publish action does."""

    kind = "Sigstore"

    def __init__(self, identity: str) -> None:
        self._identity = identity

    @classmethod
    def from_ci(cls) -> SigstoreSigner | None:
        """A signer with this CI job's Sigstore identity token (None: the CI issues none)."""
        token = identity_token(SIGSTORE_AUDIENCE, what="signing attestations with Sigstore")
        return None if token is None else cls(token)

    def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
        """Attest every file with one short-lived Sigstore certificate."""
        from pypi_attestations import Attestation
        from pypi_attestations import AttestationError as _Failed
        from pypi_attestations import Distribution as _Dist
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityToken
        from sigstore.sign import SigningContext

        try:
            context = SigningContext.from_trust_config(ClientTrustConfig.production())
            with context.signer(IdentityToken(self._identity), cache=True) as signer:
                return [_as_json(Attestation.sign(signer, _Dist.from_file(path))) for path in files]
        except (_Failed, SigstoreError, OSError, ValueError) as exc:
            raise AttestationError(
                f"Signing attestations with Sigstore failed: {exc}. Nothing was uploaded.",
                why="Sigstore (its certificate authority or transparency log) is unreachable "
                "or refused this job's identity token, or the token expired.",
                fix="Rerun the job; if Sigstore is down, wait, or upload without attestations "
                'meanwhile (attestations = "never" for this run).',
            ) from None


class LocalTestSigner:
    """Signs with a throwaway P-256 key and a self-signed certificate (never Sigstore).

    Its attestations have PEP 740's exact structure, so an index's models accept them and
    their signatures verify against the certificate inside; no trust root vouches for them.
    With ``claims`` (a CI identity token's), the certificate carries the extensions Fulcio
    would derive from them (issuer, source repository, ref, build config), so a publisher
    check reads the same fields as in a Sigstore certificate.
    """

    kind = "a local test key (not Sigstore)"

    def __init__(
        self, identity: str = "releasekit-rehearsal", claims: Mapping[str, Any] | None = None
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=10))
        )
        for number, value in fulcio_extensions(claims or {}).items():
            oid = x509.ObjectIdentifier(_FULCIO + number)
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, _utf8(value)), False)
        self.certificate = builder.sign(self._key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
        """Attest every file with the local key."""
        return [self._attest(path) for path in files]

    def _attest(self, path: Path) -> dict[str, Any]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from pypi_attestations import Attestation, AttestationType

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        statement = json.dumps(
            {
                "_type": _STATEMENT_TYPE,
                "subject": [{"name": path.name, "digest": {"sha256": digest}}],
                "predicateType": AttestationType.PYPI_PUBLISH_V1.value,
                "predicate": None,
            },
            separators=(",", ":"),
        ).encode()
        signature = self._key.sign(pae(statement), ec.ECDSA(hashes.SHA256()))
        body = base64.b64encode(json.dumps({"kind": "dsse", "local": True}).encode())
        entry = {
            "logIndex": "0",
            "logId": {"keyId": base64.b64encode(b"\0" * 32).decode()},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(int(time.time())),
            "inclusionPromise": {
                "signedEntryTimestamp": base64.b64encode(
                    self._key.sign(body, ec.ECDSA(hashes.SHA256()))
                ).decode()
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": base64.b64encode(hashlib.sha256(statement).digest()).decode(),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": "releasekit local test log\n1\n\n"},
            },
            "canonicalizedBody": body.decode(),
        }
        certificate = self.certificate
        attestation = Attestation.model_validate(
            {
                "version": 1,
                "verification_material": {
                    "certificate": base64.b64encode(certificate).decode(),
                    "transparency_entries": [entry],
                },
                "envelope": {
                    "statement": base64.b64encode(statement).decode(),
                    "signature": base64.b64encode(signature).decode(),
                },
            }
        )
        return _as_json(attestation)


def fulcio_extensions(claims: Mapping[str, Any]) -> dict[str, str]:
    """The Fulcio extensions (last OID number to value) a GitHub Actions or GitLab CI identity
    token's ``claims`` give a Sigstore certificate; none for other claims."""
    text = {key: str(value) for key, value in claims.items()}
    iss = text.get("iss", "")
    if "job_workflow_ref" in text:
        return {
            "8": iss,
            "9": f"https://github.com/{text['job_workflow_ref']}",
            "12": f"https://github.com/{text.get('repository', '')}",
            "13": text.get("sha", ""),
            "14": text.get("ref", ""),
            "18": f"https://github.com/{text.get('workflow_ref', text['job_workflow_ref'])}",
        }
    if "project_path" in text:
        kind = "tags" if text.get("ref_type") == "tag" else "heads"
        config = f"https://{text.get('ci_config_ref_uri', '')}"
        return {
            "8": iss,
            "9": config,
            "12": f"{iss}/{text['project_path']}",
            "13": text.get("sha", ""),
            "14": f"refs/{kind}/{text.get('ref', '')}",
            "18": config,
        }
    return {}


def _utf8(text: str) -> bytes:
    """``text`` as a DER UTF8String (Fulcio's encoding of its extension values)."""
    data = text.encode()
    size = len(data)
    length = bytes([size]) if size < 128 else bytes([0x82]) + size.to_bytes(2, "big")
    return b"\x0c" + length + data


_SIGNER: ContextVar[Signer | None] = ContextVar("releasekit_signer", default=None)


@contextmanager
def signing_with(signer: Signer) -> Iterator[None]:
    """Attest with ``signer`` instead of Sigstore within the block (rehearsals and tests).

    Only Python code can choose a signer; no setting or environment variable does.
    """
    reset = _SIGNER.set(signer)
    try:
        yield
    finally:
        _SIGNER.reset(reset)


def pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of an in-toto ``payload`` (what is signed)."""
    kind = _PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _as_json(attestation: Attestation) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(attestation.model_dump_json())
    return value


def parse_attestation(data: str | bytes, filename: str, sha256: str, source: str) -> Attestation:
    """Read one attestation and check it is for ``filename`` with ``sha256``.

    ``source`` names where it came from in errors. Raises :class:`AttestationError`.
    """
    from pydantic import ValidationError
    from pypi_attestations import Attestation

    try:
        attestation = Attestation.model_validate_json(data)
        subjects = attestation.statement.get("subject") or []
    except (ValidationError, ValueError) as exc:
        raise AttestationError(
            f"{source} is not a PEP 740 attestation: {str(exc).splitlines()[0]}.",
            why="It does not parse with pypi-attestations' models (damaged, or another format).",
            fix="Delete it and let releasekit sign the file, or make it again.",
        ) from None
    names = [str(s.get("name")) for s in subjects if isinstance(s, dict)]
    digests = [(s.get("digest") or {}).get("sha256") for s in subjects if isinstance(s, dict)]
    if names != [filename] or digests != [sha256]:
        subject = ", ".join(names) or "no file"
        raise AttestationError(
            f"{source} attests {subject}"
            + (f" with sha256 {digests[0]}" if names == [filename] and digests else "")
            + f", not {filename} with sha256 {sha256}. Nothing was uploaded.",
            why="An attestation is for exactly one file, by name and content; this one belongs "
            "to another file or to an earlier build of this one.",
            fix="Delete the stale attestation files from the dist dir (rebuilding with `nox -s "
            "build` removes them), then upload again.",
        )
    return attestation


def attestation_files(dist: Distribution) -> list[Path]:
    """The attestation files beside ``dist``: ``<file>.publish.attestation`` as the PyPI
    publish action writes them, or any ``<file>.<kind>.attestation`` as twine sends them."""
    return sorted(dist.path.parent.glob(f"{dist.filename}.*.attestation"))


def attestations_for(
    dists: Sequence[Distribution],
    mode: Attestations,
    credentials: Credentials,
    index: Index,
    signer: Signer | None = None,
) -> dict[str, str]:
    """The ``attestations`` form field of each file to upload (filename to a JSON list).

    Attestation files beside the dists are checked and sent as they are; the other files are
    signed, all of them before anything is sent, by ``signer`` or else by Sigstore where a
    trusted-publishing identity exists (``mode`` "auto" and "always"; "auto" only for PyPI and
    TestPyPI; an index without trusted publishing gets none); within :func:`signing_with`, by
    that block's signer. Without one, "auto" uploads without (said once) and "always" is an
    error.
    Raises :class:`AttestationError`; nothing has been sent when it does.
    """
    reporter = get_reporter()
    signer = signer or _SIGNER.get()
    if mode == "auto" and index.oidc_audience is None:
        return {}  # an index without trusted publishing takes no attestations
    found = {dist.filename: attestation_files(dist) for dist in dists}
    if mode == "never":
        count = sum(len(paths) for paths in found.values())
        if count:
            reporter.info(
                f'attestations = "never": the {count} attestation files beside the '
                "dists are not sent."
            )
        return {}
    attested: dict[str, list[dict[str, Any]]] = {}
    for dist in dists:
        for path in found[dist.filename]:
            parsed = parse_attestation(path.read_bytes(), dist.filename, dist.sha256, str(path))
            attested.setdefault(dist.filename, []).append(_as_json(parsed))
    _check_predicates(attested)
    unsigned = [dist for dist in dists if dist.filename not in attested]
    identity = credentials.trusted_publishing and (
        mode == "always" or index.name in (PYPI, TESTPYPI)
    )
    if signer is None and unsigned and identity:
        signer = SigstoreSigner.from_ci()
    if signer is None and (unsigned or not credentials.trusted_publishing):
        if not credentials.trusted_publishing:
            reason = (
                f"the credentials ({credentials.source}) are not a trusted-publishing "
                "identity, and an index takes attestations only from trusted publishers"
            )
        elif not identity:
            reason = f'{index.name} is neither PyPI nor TestPyPI (attestations = "always" signs)'
        else:
            reason = "this CI issues no identity token for Sigstore"
        if mode == "always":
            raise AttestationError(
                f'attestations = "always", but these files cannot be attested: {reason}. '
                "Nothing was uploaded.",
                why="Attestations are signed with the job's trusted-publishing identity "
                "(GitHub Actions or GitLab CI, publishing with trusted publishing).",
                fix="Run the upload in the CI job registered as the trusted publisher (with "
                "`id-token: write`, or GitLab `id_tokens` for the index and for sigstore), "
                'without a token secret; or set attestations = "auto".',
            )
        reporter.info(f"Uploading without attestations: {reason}.")
        return {}
    if unsigned and signer is not None:
        with reporter.status(f"Signing {len(unsigned)} files with {signer.kind}"):
            signed = signer.sign([dist.path for dist in unsigned])
        if len(signed) != len(unsigned):
            raise AttestationError(
                f"{signer.kind} returned {len(signed)} attestations for {len(unsigned)} files.",
                fix="This is a bug in the signer; nothing was uploaded.",
            )
        for dist, made in zip(unsigned, signed, strict=True):
            parse_attestation(json.dumps(made), dist.filename, dist.sha256, signer.kind)
            attested[dist.filename] = [made]
        reporter.info(
            f"Signed {len(unsigned)} attestation(s) with {signer.kind}: "
            + ", ".join(dist.filename for dist in unsigned)
            + "."
        )
    return {name: json.dumps(items) for name, items in attested.items()}


def _check_predicates(attested: dict[str, list[dict[str, Any]]]) -> None:
    """At most one attestation per predicate type per file, as the index requires."""
    for filename, items in attested.items():
        kinds = [
            json.loads(base64.b64decode(item["envelope"]["statement"])).get("predicateType")
            for item in items
        ]
        if len(set(kinds)) != len(kinds):
            raise AttestationError(
                f"{filename} has {len(kinds)} attestation files, several of the same kind.",
                why="An index takes at most one attestation per predicate type per file.",
                fix="Keep one `<file>.publish.attestation` beside each file.",
            )
