"""Who published a file: its PEP 740 provenance, read from the index and verified offline.

The simple JSON API gives each file a ``provenance`` URL (the index's integrity API). The
provenance object holds attestation bundles, each naming the trusted publisher that signed
them (repository, workflow, environment). Each attestation is verified here, offline, against
Sigstore's embedded trust root: its certificate must be that publisher's and its subject the
file's name and sha256. pypi-attestations (and sigstore) are imported only when a file has
provenance.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from releasekit.indexes.simple import IndexClient, IndexFile

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

    def describe(self) -> str:
        """The publisher line: who published it, and whether that was verified."""
        if not self.publishers:
            return "none"
        who = "; ".join(p.describe() for p in self.publishers)
        if self.verified:
            return f"{who} (verified)"
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


def check_provenance(filename: str, sha256: str | None, text: str | None) -> FileProvenance:
    """Parse a provenance object (``text``; None: the file has none) and verify each of its
    attestations offline for the file ``filename`` with ``sha256``."""
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
                attestation.verify(bundle.publisher, dist, offline=True)
    except (AttestationError, ValueError) as exc:
        return FileProvenance(filename, publishers, problem=str(exc).splitlines()[0])
    return FileProvenance(filename, publishers, verified=True)


def read_provenance(
    client: IndexClient, items: Iterable[tuple[IndexFile, str | None]]
) -> list[FileProvenance]:
    """The provenance of each listed file, read from the index and verified offline.

    ``items`` pairs each file with the sha256 to verify against (the local file's, or the
    index's own when None). Reads a few files at once; the order of ``items`` is kept.
    """
    pairs = list(items)

    def one(pair: tuple[IndexFile, str | None]) -> FileProvenance:
        item, sha256 = pair
        text = client.provenance_json(item)
        _log.debug("%s: provenance %s", item.filename, "found" if text else "none")
        return check_provenance(item.filename, sha256 or item.sha256, text)

    if len(pairs) <= 1:
        return [one(pair) for pair in pairs]
    with ThreadPoolExecutor(max_workers=min(_READERS, len(pairs))) as pool:
        return list(pool.map(one, pairs))
