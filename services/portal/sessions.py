"""The portal's sessions: one sealed cookie (Fernet: AES-CBC + HMAC-SHA256, with its issue time), no server state.

The cookie holds who signed in (the claims the services' token carries), the token itself and the CSRF
token of the session. It is HttpOnly (no JavaScript reads it: the token never reaches the browser's
scripts), SameSite=Lax, Secure outside local development, and sealed: the browser can neither read the
token nor change a field without the seal failing. A session ends when its token expires or after
`session_ttl_seconds`, whichever comes first; signing out deletes the cookie.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field, replace

from cryptography.fernet import Fernet, InvalidToken

COOKIE_NAME = "portal_session"
SECURE_COOKIE_NAME = "__Host-portal_session"  # __Host-: Secure, Path=/, no Domain (no sub-domain can set it)
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class User:
    """The signed-in person as the services see them (the claims of their token)."""

    subject: str
    name: str
    roles: tuple[str, ...]
    district: str | None = None
    office: str | None = None
    supervisor_id: str | None = None


@dataclass(frozen=True)
class Session:
    """What the cookie carries. `token` is the bearer token the portal sends to the services for `user`."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user: User | None = None
    token: str | None = None
    expires_at: int | None = None  # epoch seconds: the token's exp
    # OIDC sign-in in progress: state, nonce, PKCE verifier and the page to return to
    pending: dict[str, str] | None = None

    def signed_in(self, now: float) -> bool:
        return self.user is not None and self.token is not None and (self.expires_at or 0) > now

    def with_user(self, user: User, token: str, expires_at: int) -> Session:
        """A new session for `user` with a fresh CSRF token (nothing of the anonymous one survives sign-in)."""
        return Session(user=user, token=token, expires_at=expires_at)


def seal(session: Session, key: str) -> str:
    """The cookie value of `session`."""
    data = asdict(session)
    if session.user is not None:
        data["user"]["roles"] = list(session.user.roles)
    return Fernet(key).encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def unseal(value: str | None, key: str, *, ttl_seconds: int) -> Session | None:
    """The session in a cookie value; None when absent, tampered with, sealed with another key, or too old."""
    if not value:
        return None
    try:
        data = json.loads(Fernet(key).decrypt(value.encode(), ttl=ttl_seconds))
        user = data.get("user")
        return Session(
            csrf=str(data["csrf"]), token=data.get("token"), expires_at=data.get("expires_at"),
            pending=data.get("pending"),
            user=None if user is None else replace(User(**user), roles=tuple(user["roles"])),
        )
    except (InvalidToken, ValueError, TypeError, KeyError):
        return None


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    """The form's CSRF token is the session's (constant-time comparison)."""
    return session is not None and bool(submitted) and hmac.compare_digest(session.csrf, str(submitted))


def expired(session: Session | None, now: float | None = None) -> bool:
    """A session that was signed in and whose token has run out: the person must sign in again."""
    now = time.time() if now is None else now
    return session is not None and session.user is not None and not session.signed_in(now)
