"""Errors the domain raises; the web and CLI layers turn them into answers."""

from __future__ import annotations

from dataclasses import dataclass


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
