"""Domain errors: a small hierarchy with a stable `code`, mapped to HTTP once (loyalty.api.resolver)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(DomainError):
    code = "bad_request"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Gone(DomainError):
    code = "gone"


class Conflict(DomainError):
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class VersionConflict(Conflict):
    code = "version_conflict"


class Duplicate(Conflict):
    code = "duplicate"


class ValidationFailed(DomainError):
    """422: the request is well-formed but a field breaks a rule. `fields` name them."""

    code = "validation_error"

    def __init__(self, message: str, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, {"fields": fields or []})


class Throttled(DomainError):
    code = "throttled"


class Unavailable(DomainError):
    """503: a dependency kept failing with transient errors after the client's retries."""

    code = "unavailable"


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", [{"field": field, "message": message}])
