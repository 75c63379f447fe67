"""Offline preflight: configuration, version files, and each index's credentials."""

from __future__ import annotations

from dataclasses import dataclass

from releasekit._check import version_file_problems
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.ci import detect as detect_ci
from releasekit.ci import publisher_claims
from releasekit.credentials import Credentials, MissingCredentials, describe_sources
from releasekit.errors import CredentialError, ReleasekitError
from releasekit.indexes import builtin_indexes


@dataclass(frozen=True)
class IndexReport:
    """What ``doctor`` found for one index: where credentials come from, or the problem."""

    index: str
    url: str
    source: str
    detail: str
    ok: bool
    missing: bool = False
    warning: str | None = None


def index_reports(project: Project) -> list[IndexReport]:
    """Each index's credentials, described without the secret (no network)."""
    names = sorted({*builtin_indexes(), *project.settings.indexes})
    reports = []
    for name in names:
        index = project.index(name)
        try:
            found: Credentials | str = describe_sources(index, project.name)
        except MissingCredentials as exc:
            reports.append(IndexReport(name, index.upload_url, "none", exc.what, False, True))
            continue
        except CredentialError as exc:
            detail = f"{exc.what} Fix: {exc.fix}" if exc.fix else exc.what
            reports.append(IndexReport(name, index.upload_url, "refused", detail, False))
            continue
        if isinstance(found, str):
            reports.append(IndexReport(name, index.upload_url, found, "", True))
            continue
        detail = found.token.describe() if found.token else f"username {found.username!r}"
        warning = found.least_privilege_warning(project.name)
        reports.append(
            IndexReport(name, index.upload_url, found.source, detail, True, warning=warning)
        )
    return reports


def _trusted_publishing(reports: list[IndexReport]) -> None:
    """In a CI job that can publish with trusted publishing: the identity the index will see
    (from the job's variables, no request), and each token secret that should now go."""
    ci = detect_ci()
    if not (ci.issues_oidc and ci.oidc_permitted):
        return
    reporter = get_reporter()
    claims = publisher_claims()
    if claims:
        reporter.table(
            "trusted publishing: the publisher to register (what PyPI will see)",
            ("field", "value"),
            claims,
        )
    builtin = builtin_indexes()
    for report in reports:
        variable = builtin[report.index].token_env if report.index in builtin else None
        if report.ok and variable is not None and report.source == variable:
            reporter.warn(
                f"{report.index}: this job can publish with trusted publishing, but the secret "
                f"{variable} is set, and a token wins. Once a trusted publisher is registered "
                f"for {report.index}, revoke that token on {report.index} and delete the "
                f"{variable} secret."
            )


def doctor(project: Project) -> list[IndexReport]:
    """Report configuration, version files and credentials; raise if anything is wrong.

    Missing credentials are a warning (not every machine publishes everywhere); credentials
    that are present but would be refused, and disagreeing version files, are errors.
    """
    reporter = get_reporter()
    reporter.info(
        f"{project.name} {project.version} at {project.root}; dist dir {project.dist_dir}; "
        f"tag {project.tag(project.version)}."
    )
    problems = version_file_problems(project)
    if not problems:
        places = ", ".join(f.spec for f in project.version_files) or "no extra version files"
        reporter.success(f"version {project.version} agrees everywhere ({places}).")
    reports = index_reports(project)
    reporter.table(
        "credentials (never shown)",
        ("index", "upload URL", "from", "what"),
        [(r.index, r.url, r.source, r.detail) for r in reports],
    )
    _trusted_publishing(reports)
    for report in reports:
        if report.missing:
            reporter.warn(f"{report.index}: {report.detail}")
        elif not report.ok:
            problems.append(f"{report.index}: {report.detail}")
        elif report.warning:
            reporter.warn(f"{report.index}: {report.warning}")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ReleasekitError(
            f"doctor found {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n{listing}",
            fix="Correct each problem listed, then run `nox -s doctor` again.",
        )
    reporter.success(f"doctor: {project.name} is ready to publish.")
    return reports
