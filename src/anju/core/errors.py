"""Errors the domain raises; the web and CLI layers turn them into answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``field`` is the schema name, ``message`` says what to fix."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class ValidationFailed(DomainError):
    """Input was refused; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)])


class NotFound(DomainError):
    """The record does not exist or is outside the caller's scope (the two look the same)."""


class PermissionDenied(DomainError):
    """The caller may see the record but not do this to it."""


class FieldValueError(ValueError):
    """A ``ValueError`` raised in a whole-model validator that belongs to one field.

    Pydantic reports model-level errors without a location; :func:`field_errors` reads the
    field from this exception so every caller can point at the right input.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Pydantic error types in the words the console shows (and the catalogue translates).
PLAIN_MESSAGES = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field",
    "string_too_short": "too short",
    "string_too_long": "too long",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "date_parsing": "must be a date like 2026-01-31",
    "date_from_datetime_parsing": "must be a date like 2026-01-31",
    "datetime_parsing": "must be a date and time like 2026-01-31 08:30",
    "datetime_from_date_parsing": "must be a date and time like 2026-01-31 08:30",
    "enum": "is not one of the allowed choices",
    "bool_parsing": "must be yes or no",
    "greater_than": "is too small",
    "greater_than_equal": "is too small",
    "less_than": "is too large",
    "less_than_equal": "is too large",
    "list_type": "must be a list",
}


def field_errors(exc: Any) -> list[FieldError]:
    """Turn a pydantic ``ValidationError`` into :class:`FieldError` s with plain messages."""
    out: list[FieldError] = []
    for err in exc.errors():
        original = (err.get("ctx") or {}).get("error")
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        if isinstance(original, FieldValueError):
            name, message = original.field, str(original)
        else:
            name = loc[0] if loc else "__all__"
            kind = str(err.get("type", ""))
            if isinstance(original, ValueError):
                message = str(original)
            elif kind == "string_too_short" and (err.get("ctx") or {}).get("min_length") == 1:
                message = PLAIN_MESSAGES["missing"]
            else:
                message = PLAIN_MESSAGES.get(kind, err.get("msg", "invalid value"))
        out.append(FieldError(name, message))
    return out
