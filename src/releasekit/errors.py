"""One exception tree. Every error says what happened, the likely cause, and the fix."""

from __future__ import annotations


class ReleasekitError(Exception):
    """Base of every error releasekit raises on purpose.

    ``what`` is what happened, ``why`` the likely cause, ``fix`` what to do next. ``str()``
    renders all three as plain sentences, so any front end can show it as it is.
    """

    def __init__(self, what: str, *, why: str = "", fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.why = why
        self.fix = fix

    def __str__(self) -> str:
        parts = [self.what]
        if self.why:
            parts.append(f"Why: {self.why}")
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return "\n".join(parts)


class ConfigError(ReleasekitError):
    """pyproject.toml or ``[tool.releasekit]`` is missing, unreadable or invalid."""


class VersionError(ReleasekitError):
    """A version is invalid, not canonical, or disagrees with another place."""


class DistributionError(ReleasekitError):
    """Distribution files are missing, unreadable, or not what the project says."""


class BuildError(ReleasekitError):
    """Building the sdist or the wheel failed."""


class CheckFailed(ReleasekitError):
    """``check_dist`` found problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"check_dist found {count} problem{'s' if count != 1 else ''}:\n{listing}",
            fix="Correct each problem listed, rebuild with `nox -s build`, then check again.",
        )
        self.problems = problems


class CredentialError(ReleasekitError):
    """Credentials are missing, malformed, for the wrong index, expired, or out of scope."""


class MissingCredentials(CredentialError):
    """No credentials were found for an index."""


class IndexUnavailable(ReleasekitError):
    """An index could not be reached, or kept failing, after retries."""


class UploadError(ReleasekitError):
    """An index refused an upload."""


class VerifyError(ReleasekitError):
    """The release is not visible, not identical, not installable, or fails its smoke test."""


class ReleaseError(ReleasekitError):
    """A release guard refused, or a release step failed (the repository was restored)."""


class GitError(ReleasekitError):
    """A git command could not run, or git refused it (git's own words are in the message)."""


class YankError(ReleasekitError):
    """A yank could not be done or confirmed."""


class UnexplainedReleases(ReleasekitError):
    """``audit`` found versions on an index that no git tag explains."""


class SecretsFound(ReleasekitError):
    """PyPI tokens were found in files or history; ``places`` describes each (never the token)."""

    def __init__(self, places: list[str]) -> None:
        count = len(places)
        listing = "\n".join(f"  - {place}" for place in places)
        super().__init__(
            f"Found {count} PyPI API token{'s' if count != 1 else ''}:\n{listing}",
            why="Anyone who can read these files or this history can publish with the token.",
            fix="Revoke each token now on the instance named (account settings, API tokens); "
            "create a new one under a new name and update the CI secret that held it; remove "
            "the token from the files (and from history, with git filter-repo, after revoking); "
            "then review the project's releases for unauthorised ones (`nox -s audit`).",
        )
        self.places = places


class ActionNeeded(ReleasekitError):
    """A person has to act (for example on an index web page) before this can finish."""


class UsageError(ReleasekitError):
    """A session's arguments are wrong."""


class PackagesFailed(ReleasekitError):
    """Several packages of a monorepo failed; ``failures`` maps each name to its error."""

    def __init__(self, failures: dict[str, ReleasekitError], total: int) -> None:
        names = ", ".join(failures)
        details = "\n".join(
            f"  {name}: " + str(error).replace("\n", "\n    ") for name, error in failures.items()
        )
        super().__init__(
            f"{len(failures)} of {total} packages failed ({names}):\n{details}",
            fix="Correct each problem listed, then run the session again (`-- --package NAME` "
            "acts on one package).",
        )
        self.failures = failures


class CheckoutLocked(ReleasekitError):
    """Another releasekit run is setting a version in this checkout (build or release)."""


class AttestationError(ReleasekitError):
    """Attestations could not be signed, or those beside the dists are invalid or for other
    files; raised before any file is sent."""


class ForgeError(ReleasekitError):
    """The forge (GitHub, GitLab) refused or could not take a release, or this job is not one
    that can publish it."""
