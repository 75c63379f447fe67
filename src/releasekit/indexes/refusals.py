"""Why an index refused an upload, and what to do: a table of rules, tried in order.

Each :class:`Rule` matches an HTTP status and/or words of the index's answer and gives the
likely cause and the fix. The wordings come from PyPI and TestPyPI (warehouse), pypiserver
and devpi; a new index kind's answers go into
:data:`RULES` above the generic ones at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from releasekit._distributions import Distribution
from releasekit.errors import UploadError
from releasekit.indexes.endpoints import PYPI, TESTPYPI, Index


@dataclass(frozen=True)
class Explanation:
    """The likely cause and the fix, as templates with ``{name}`` (the project),
    ``{index}`` (the index's name), ``{source}`` (where the credentials came from) and
    ``{env_prefix}`` (the index's environment variable prefix)."""

    why: str
    fix: str


@dataclass(frozen=True)
class Rule:
    """A known refusal: every given matcher must match (an empty one matches anything).

    ``statuses``: the HTTP status is one of them; ``words``: the answer contains one of
    them (compared in lower case); ``indexes``: the index is one of these names.
    """

    explanation: Explanation
    statuses: range | tuple[int, ...] = ()
    words: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()

    def matches(self, status: int, text: str, index: Index) -> bool:
        """True when this rule explains ``status`` with the lower-cased ``text`` on ``index``."""
        return (
            (not self.statuses or status in self.statuses)
            and (not self.words or any(word in text for word in self.words))
            and (not self.indexes or index.name in self.indexes)
        )


_RENEW = "Create a new token on {index} and put it in {source}."
_TOO_LARGE = Explanation(
    "The file or the project's total size is over the index's limit.",
    "Leave data files out of the package, delete old releases' files, or ask the index for a "
    "higher limit (PyPI: file a limit request).",
)
_ALREADY_THERE = Explanation(
    "A file of this name is already on the index, and its content could not be confirmed to "
    "be the same.",
    "Bump the version, rebuild with `nox -s build`, and upload again.",
)
_FALLBACK = Explanation(
    "The index gave the reason above.",
    "Correct what the index names, then run the same session again (it resumes).",
)

#: PyPI and TestPyPI, by name (their local stand-ins included), for rules that hold only there.
PYPI_ONLY = (PYPI, TESTPYPI)

#: The rules, tried in order; the first that matches explains the refusal.
RULES: tuple[Rule, ...] = (
    # Credentials: pypiserver and devpi answer 401 without them.
    Rule(
        Explanation(
            "The index wants credentials it did not get or did not accept.",
            "Check the username and password or token in {source}.",
        ),
        statuses=(401,),
    ),
    # PyPI's and TestPyPI's 403 wordings.
    Rule(
        Explanation(
            "The index does not know this token: it was revoked or deleted, garbled when "
            "copied, or made for the other instance (PyPI and TestPyPI are separate).",
            _RENEW,
        ),
        statuses=(403,),
        words=("invalid or non-existent authentication",),
    ),
    Rule(
        Explanation("The index only accepts API tokens with the username __token__.", _RENEW),
        statuses=(403,),
        words=("username/password",),
    ),
    Rule(Explanation("The token has expired.", _RENEW), statuses=(403,), words=("expired",)),
    Rule(
        Explanation(
            "The token or account may not upload to {name}: it is scoped to another project, "
            "or the name belongs to someone else.",
            "Use a token scoped to {name} from an account that owns or maintains it; if the "
            "name is taken, rename the project.",
        ),
        statuses=(403,),
        words=("not valid for project", "isn't allowed to upload"),
    ),
    Rule(
        Explanation("The token was altered after it was created.", _RENEW),
        statuses=(403,),
        words=("signatures do not match",),
    ),
    Rule(
        Explanation(
            "The account is not allowed to upload yet (unverified e-mail address or no "
            "two-factor authentication).",
            "Verify the account's primary e-mail address and enable two-factor authentication "
            "in the index's account settings, then run the session again.",
        ),
        statuses=(403,),
        words=("e-mail", "email", "two factor", "two-factor"),
    ),
    # Any other 403: pypiserver's wrong password, devpi's index of another user.
    Rule(
        Explanation(
            "The index refused these credentials for this upload (wrong password or token, or "
            "no permission on this index).",
            "Check the credentials in {source} and the account's permissions on the index.",
        ),
        statuses=(403,),
    ),
    # Too many requests: on PyPI and TestPyPI, the limit on new projects.
    Rule(
        Explanation(
            "The index limits how many new projects an account may create in a short time.",
            "Wait an hour or so, then run the same session again.",
        ),
        statuses=(429,),
        indexes=PYPI_ONLY,
    ),
    Rule(
        Explanation(
            "The index limits how many requests it takes in a short time.",
            "Wait a few minutes, then run the same session again (it resumes).",
        ),
        statuses=(429,),
    ),
    # Sizes, damage, reuse and age (PyPI's wordings; 409 from pypiserver and devpi).
    Rule(_TOO_LARGE, statuses=(413,)),
    Rule(_TOO_LARGE, words=("too large",)),
    Rule(
        Explanation(
            "The file arrived damaged, or changed while it was sent.",
            "Rebuild with `nox -s build` and upload again.",
        ),
        words=("digest",),
    ),
    Rule(
        Explanation(
            "A file of this name was uploaded and then deleted; the index never allows a "
            "filename to be reused.",
            "Bump the version (a post release works), rebuild, and upload again.",
        ),
        words=("previously used",),
    ),
    Rule(_ALREADY_THERE, words=("already exist",)),
    Rule(_ALREADY_THERE, statuses=(409,)),
    Rule(
        Explanation(
            "The index does not accept new files for releases this old.",
            "Publish a new version instead.",
        ),
        words=("older than",),
    ),
    Rule(
        Explanation(
            "The release already has an sdist, and an index takes only one.",
            "Keep a single sdist in the dist dir (rebuild with `nox -s build`).",
        ),
        words=("only one sdist",),
    ),
    # Any index.
    Rule(
        Explanation(
            "The upload URL redirects; uploads are never sent on to another address.",
            "Set the final URL (often with a trailing slash) as {env_prefix}UPLOAD_URL or "
            "[tool.releasekit.indexes.{index}] upload-url.",
        ),
        statuses=range(300, 400),
    ),
    Rule(
        Explanation(
            "The index does not accept this file's name or metadata.",
            "Run `nox -s check_dist`, fix what it lists, rebuild, and upload again.",
        ),
        words=("bad filename", "invalid"),
    ),
)


def explain_refusal(
    status: int, text: str, index: Index, dist: Distribution, source: str
) -> UploadError:
    """An index's refusal of ``dist`` as what happened, the likely cause, and the fix.

    The first of :data:`RULES` that matches explains it; otherwise the index's own words
    stand.
    """
    low = text.lower()
    explanation = next(
        (rule.explanation for rule in RULES if rule.matches(status, low, index)), _FALLBACK
    )
    values = {
        "name": dist.name,
        "index": index.name,
        "source": source,
        "env_prefix": index.env_prefix,
    }
    return UploadError(
        f"{index.display} refused {dist.filename}: HTTP {status} {text}",
        why=explanation.why.format(**values),
        fix=explanation.fix.format(**values),
    )
