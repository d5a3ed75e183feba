"""Personal links for phones (个人链接): one random token per person and activation, stored hashed.

A member or team leader opens their link on a phone with no login: the token in the link *is* the
credential, so it is random (256 bits), only its SHA-256 is stored, and it can be revoked. A link is
bound to one person and one activation; :func:`check` tells apart a link that does not exist, one
that was revoked and one that expired (distinct codes, so the page can say which and what to do).
A GET with a link only shows; a POST acts (the service's rule, not this module's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mobilize.errors import MobilizeError

__all__ = ["TOKEN_BYTES", "DEFAULT_VALID_FOR", "LinkRefused", "PhoneLink", "new_token", "new_tokens", "hash_token",
           "link_url", "issue", "revoke", "check"]

#: Random bytes per token: 256 bits, twice the 128 the design asks as a floor.
TOKEN_BYTES = 32
#: How long a link stays valid if the caller says nothing; switching back revokes links sooner.
DEFAULT_VALID_FOR = timedelta(days=7)

# What token_urlsafe produces; anything else cannot be one of ours and is refused before hashing.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{22,128}")


class LinkRefused(MobilizeError):
    """A phone link that cannot be used: ``code`` is ``link_unknown`` (404), ``link_revoked`` or
    ``link_expired`` (410 Gone)."""

    def __init__(self, code: str, message_zh: str, message_en: str, status: int, **extra: Any):
        super().__init__(message_zh, message_en, [], extra, status, code)


def _unknown() -> LinkRefused:
    return LinkRefused("link_unknown", "链接无效，请核对短信中的链接或联系队长",
                       "This link is not valid; check the link in your message or ask your team leader", 404)


@dataclass(frozen=True, slots=True)
class PhoneLink:
    """A stored link: whose it is, for which activation, the token's hash, and its life."""

    person_id: int
    activation_id: int
    token_hash: str
    expires_at: datetime
    revoked_at: datetime | None = None


def new_token() -> str:
    """Return a fresh random token for a link (URL-safe, 256 bits).

    >>> len(new_token()) >= 43 and new_token() != new_token()
    True
    """
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_tokens(n: int) -> list[str]:
    """Return ``n`` fresh tokens like :func:`new_token`'s, drawn from the OS in one call.

    An activation links tens of thousands of people: one read of ``32 n`` random bytes instead of
    one per token.

    >>> tokens = new_tokens(3)
    >>> len(set(tokens)), all(len(t) == len(new_token()) for t in tokens)
    (3, True)
    """
    raw = secrets.token_bytes(TOKEN_BYTES * n)
    encode = base64.urlsafe_b64encode
    return [encode(raw[i:i + TOKEN_BYTES]).rstrip(b"=").decode("ascii")
            for i in range(0, TOKEN_BYTES * n, TOKEN_BYTES)]


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which ``token`` is stored and looked up.

    >>> hash_token("abc")[:16]
    'ba7816bf8f01cfea'
    """
    # No salt and no slow hash: those defend guessable secrets (passwords) against dictionary
    # attacks. A 256-bit random token has no dictionary, so a plain hash is as strong as a slow one,
    # and being unsalted it can be looked up directly by an index on the hash column.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_url(base: str, token: str, *, path: str = "/m/") -> str:
    """Return the link a person opens on their phone.

    >>> link_url("https://mobilize.example.gov.cn/", "tok")
    'https://mobilize.example.gov.cn/m/tok'
    """
    return f"{base.rstrip('/')}/{path.strip('/')}/{token}"


def issue(person_id: int, activation_id: int, *, now: datetime,
          valid_for: timedelta = DEFAULT_VALID_FOR) -> tuple[str, PhoneLink]:
    """Return a new token and the link to store for it; the token itself is never stored.

    >>> from datetime import datetime, timezone
    >>> token, link = issue(7, 1, now=datetime(2024, 7, 1, tzinfo=timezone.utc))
    >>> link.token_hash == hash_token(token), link.expires_at.day
    (True, 8)
    """
    token = new_token()
    return token, PhoneLink(person_id, activation_id, hash_token(token), now + valid_for)


def revoke(link: PhoneLink, now: datetime) -> PhoneLink:
    """Return ``link`` revoked at ``now``; revoking again keeps the first time."""
    return link if link.revoked_at is not None else replace(link, revoked_at=now)


def check(link: PhoneLink | None, token: str, now: datetime, *, activation_id: int | None = None) -> PhoneLink:
    """Return ``link`` if ``token`` opens it at ``now`` (``link`` is what the lookup by hash found).

    Raises
    ------
    LinkRefused
        ``link_unknown`` (404) when there is no such link, the token does not match it, or it belongs
        to another activation than ``activation_id``; ``link_revoked`` (410) when it was revoked;
        ``link_expired`` (410) when its time is over. A revoked link that has also expired is
        reported revoked: someone chose to end it, which is what the person needs to hear.

    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2024, 7, 1, tzinfo=timezone.utc)
    >>> token, link = issue(7, 1, now=t0, valid_for=timedelta(hours=1))
    >>> check(link, token, t0).person_id
    7
    >>> check(link, token, t0 + timedelta(hours=2))
    Traceback (most recent call last):
    ...
    mobilize.phonelinks.LinkRefused: 链接已过期，请联系队长获取新链接 / This link has expired; ask your team leader for a new one
    """
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token) or link is None:
        raise _unknown()
    # Constant time, so response timing says nothing about how much of a guessed hash matched.
    if not hmac.compare_digest(hash_token(token), link.token_hash):
        raise _unknown()
    if activation_id is not None and link.activation_id != activation_id:
        raise _unknown()
    if link.revoked_at is not None and link.revoked_at <= now:
        raise LinkRefused("link_revoked", "链接已被收回，请联系队长", "This link was revoked; ask your team leader",
                          410, revoked_at=link.revoked_at.isoformat())
    if now >= link.expires_at:
        raise LinkRefused("link_expired", "链接已过期，请联系队长获取新链接",
                          "This link has expired; ask your team leader for a new one", 410,
                          expired_at=link.expires_at.isoformat())
    return link
