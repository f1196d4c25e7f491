"""Request-scoped context: the correlation id that follows one request across services."""

import uuid
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id of the current request or event, or a fresh one outside any."""
    return _correlation_id.get() or str(uuid.uuid4())


def set_correlation_id(value: str | None):
    """Set the correlation id; returns the token to reset it."""
    return _correlation_id.set(value)


def reset_correlation_id(token) -> None:
    _correlation_id.reset(token)


def peek_correlation_id() -> str | None:
    """The correlation id if one is set (for logs)."""
    return _correlation_id.get()
