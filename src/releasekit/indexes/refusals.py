"""Why an index refused an upload, and what to do: PyPI's, TestPyPI's, pypiserver's and
devpi's answers explained."""

from __future__ import annotations

from releasekit._distributions import Distribution
from releasekit.errors import UploadError
from releasekit.indexes.endpoints import Index


def explain_refusal(
    status: int, text: str, index: Index, dist: Distribution, source: str
) -> UploadError:
    """An index's refusal of ``dist`` as what happened, the likely cause, and the fix.

    Knows PyPI's and TestPyPI's responses, pypiserver's (400, 401, 403, 409) and devpi's
    (401, 403, 409).
    """
    what = f"{index.display} refused {dist.filename}: HTTP {status} {text}"
    low = text.lower()
    cause, fix = _explanation(status, low, index, dist, source)
    return UploadError(what, why=cause, fix=fix)


def _explanation(
    status: int, low: str, index: Index, dist: Distribution, source: str
) -> tuple[str, str]:
    name = dist.name
    new_token = f"Create a new token on {index.name} and put it in {source}."
    if status == 401:
        return (
            "The index wants credentials it did not get or did not accept.",
            f"Check the username and password or token in {source}.",
        )
    if status == 403:
        if "invalid or non-existent authentication" in low:
            return (
                "The index does not know this token: it was revoked or deleted, garbled when "
                "copied, or made for the other instance (PyPI and TestPyPI are separate).",
                new_token,
            )
        if "username/password" in low:
            return ("The index only accepts API tokens with the username __token__.", new_token)
        if "expired" in low:
            return ("The token has expired.", new_token)
        if "not valid for project" in low or "isn't allowed to upload" in low:
            return (
                f"The token or account may not upload to {name}: it is scoped to another "
                "project, or the name belongs to someone else.",
                f"Use a token scoped to {name} from an account that owns or maintains it; if "
                "the name is taken, rename the project.",
            )
        if "signatures do not match" in low:
            return ("The token was altered after it was created.", new_token)
        if "e-mail" in low or "email" in low or "two factor" in low or "two-factor" in low:
            return (
                "The account is not allowed to upload yet (unverified e-mail address or no "
                "two-factor authentication).",
                "Verify the account's primary e-mail address and enable two-factor "
                "authentication in the index's account settings, then run the session again.",
            )
        return (
            "The index refused these credentials for this upload (wrong password or token, or "
            "no permission on this index).",
            f"Check the credentials in {source} and the account's permissions on the index.",
        )
    if status == 429:
        return (
            "The index limits how many new projects an account may create in a short time.",
            "Wait an hour or so, then run the same session again.",
        )
    if status == 413 or "too large" in low:
        return (
            "The file or the project's total size is over the index's limit.",
            "Leave data files out of the package, delete old releases' files, or ask the "
            "index for a higher limit (PyPI: file a limit request).",
        )
    if "digest" in low:
        return (
            "The file arrived damaged, or changed while it was sent.",
            "Rebuild with `nox -s build` and upload again.",
        )
    if "previously used" in low:
        return (
            "A file of this name was uploaded and then deleted; the index never allows a "
            "filename to be reused.",
            "Bump the version (a post release works), rebuild, and upload again.",
        )
    if "already exist" in low or status == 409:
        return (
            "A file of this name is already on the index, and its content could not be "
            "confirmed to be the same.",
            "Bump the version, rebuild with `nox -s build`, and upload again.",
        )
    if "older than" in low:
        return (
            "The index does not accept new files for releases this old.",
            "Publish a new version instead.",
        )
    if "only one sdist" in low:
        return (
            "The release already has an sdist, and an index takes only one.",
            "Keep a single sdist in the dist dir (rebuild with `nox -s build`).",
        )
    if 300 <= status < 400:
        return (
            "The upload URL redirects; uploads are never sent on to another address.",
            f"Set the final URL (often with a trailing slash) as {index.env_prefix}UPLOAD_URL "
            f"or [tool.releasekit.indexes.{index.name}] upload-url.",
        )
    if "bad filename" in low or "invalid" in low:
        return (
            "The index does not accept this file's name or metadata.",
            "Run `nox -s check_dist`, fix what it lists, rebuild, and upload again.",
        )
    return (
        "The index gave the reason above.",
        "Correct what the index names, then run the same session again (it resumes).",
    )
