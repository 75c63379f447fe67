"""Offline preflight: configuration, version files, and each index's credentials."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from releasekit._changelog import changelog_path
from releasekit._check import version_file_problems
from releasekit._platforms import expected_platforms
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.ci import detect as detect_ci
from releasekit.ci import publisher_claims
from releasekit.credentials import Credentials, MissingCredentials, describe_sources
from releasekit.credentials.sources import plain_http
from releasekit.errors import CredentialError, ReleasekitError
from releasekit.indexes import Index, builtin_indexes


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


def insecure_http_warning(index: Index) -> str | None:
    """What to say about an index whose credentials may travel over plain http (else None)."""
    urls = [url for url in (index.upload_url, index.simple_url) if plain_http(url)]
    if index.allow_insecure_http:
        where = f" ({', '.join(urls)})" if urls else ""
        return (
            f"allow-insecure-http = true: credentials for {index.name} may be sent over plain "
            f"http{where}, readable by anyone on the network path; use https:// and remove it."
        )
    if urls:
        return (
            f"{', '.join(urls)} is plain http to another machine: releasekit refuses to send "
            "credentials there; use https://."
        )
    return None


def index_reports(project: Project) -> list[IndexReport]:
    """Each index's credentials, described without the secret (no network)."""
    names = sorted({*builtin_indexes(), *project.settings.indexes})
    reports = []
    for name in names:
        index = project.index(name)
        insecure = insecure_http_warning(index)
        try:
            found: Credentials | str = describe_sources(index, project.name)
        except MissingCredentials as exc:
            reports.append(
                IndexReport(name, index.upload_url, "none", exc.what, False, True, warning=insecure)
            )
            continue
        except CredentialError as exc:
            detail = f"{exc.what} Fix: {exc.fix}" if exc.fix else exc.what
            reports.append(IndexReport(name, index.upload_url, "refused", detail, False))
            continue
        if isinstance(found, str):
            reports.append(IndexReport(name, index.upload_url, found, "", True, warning=insecure))
            continue
        detail = found.token.describe() if found.token else f"username {found.username!r}"
        warnings = [w for w in (insecure, found.least_privilege_warning(project.name)) if w]
        warning = " ".join(warnings) or None
        reports.append(
            IndexReport(name, index.upload_url, found.source, detail, True, warning=warning)
        )
    return reports


def version_source_line(project: Project) -> str:
    """Where ``project``'s version comes from, and how a build sets another one."""
    source = project.version_source
    backend = f" (build backend {source.backend})" if source.backend else ""
    settable = {
        "static": "release and build --version edit it",
        "version-file": "release and build --version edit it",
        "file": "release and build --version edit that file",
        "poetry": "release and build --version edit it",
        "git": "release tags it; build --version sets it through "
        + (f"{source.override}'s override variables" if source.override else "nothing"),
        "backend": "releasekit cannot set it",
    }[source.kind]
    return f"version source: {source.kind}, {source.detail}{backend}; {settable}."


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
    style = project.tag_style()
    reporter.info(
        f"{project.name} {project.version} at {project.root}; dist dir {project.dist_dir}; "
        f"tag {style.tag(project.normalized_name, project.version)}."
    )
    reporter.info(version_source_line(project))
    if project.version_source.kind == "git" and Version(project.version).local:
        reporter.warn(
            f"version {project.version} is a local version, which indexes refuse: the version "
            "comes from git and HEAD is not a release tag. `nox -s release -- VERSION` tags "
            "a release; `nox -s build -- --dev` builds a dev release."
        )
    reporter.info(f"tag style {style.format}: {style.reason}.")
    problems = version_file_problems(project)
    try:
        changelog = changelog_path(project)
    except ReleasekitError as exc:
        problems.append(exc.what)
    else:
        state = "exists" if changelog.is_file() else "will be created"
        reporter.info(f"changelog: release writes {changelog} ({state}).")
    wheels = expected_platforms(project, ())
    if wheels.families:
        reporter.info(
            f"wheels: a release needs one for each of {', '.join(wheels.families)} "
            f"({wheels.reason}); check_dist refuses a set without them."
        )
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
        if report.warning:
            reporter.warn(f"{report.index}: {report.warning}")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ReleasekitError(
            f"doctor found {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n{listing}",
            fix="Correct each problem listed, then run `nox -s doctor` again.",
        )
    reporter.success(f"doctor: {project.name} is ready to publish.")
    return reports
