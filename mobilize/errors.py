"""One error base class for everything a user can get wrong, in Chinese and English.

Every error names what is wrong (a row, a column, a field) and why. The app maps
:class:`MobilizeError` to HTTP in one handler; the CLI prints the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Problem",
    "MobilizeError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "Forbidden",
    "Unauthorized",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is and why, in both languages."""

    reason_zh: str
    reason_en: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    field: str | None = None
    value: Any = None

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"第{self.row}行 row {self.row}")
        if self.column:
            parts.append(f"列「{self.column}」 column {self.column}")
        elif self.field:
            parts.append(f"字段 field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{self.reason_zh} / {self.reason_en}"
        return f"{where}: {text}" if where else text

    def as_dict(self) -> dict[str, Any]:
        data = {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "value": self.value,
            "reason_zh": self.reason_zh,
            "reason_en": self.reason_en,
        }
        return {k: v for k, v in data.items() if v is not None}


@dataclass
class MobilizeError(Exception):
    """Base of every error shown to a user; ``status`` is its HTTP status."""

    message_zh: str
    message_en: str
    problems: list[Problem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    status: int = 400
    code: str = "invalid_input"

    def __post_init__(self) -> None:
        super().__init__(self.message_en)

    def __str__(self) -> str:
        lines = [f"{self.message_zh} / {self.message_en}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message_zh,
            "message_en": self.message_en,
        }
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        body.update(self.extra)
        return {"error": body}


class InvalidInput(MobilizeError):
    """The input is wrong (400 / 422); ``problems`` name each row or field."""

    def __init__(self, message_zh: str, message_en: str, problems: list[Problem] | None = None, **extra: Any):
        super().__init__(message_zh, message_en, list(problems or []), extra, 422, "invalid_input")


class NotFound(MobilizeError):
    """Nothing of that id exists, or it lies outside the caller's scope (never tell which)."""

    def __init__(self, message_zh: str = "未找到", message_en: str = "Not found", **extra: Any):
        super().__init__(message_zh, message_en, [], extra, 404, "not_found")


class Conflict(MobilizeError):
    """The request collides with the current state (409)."""

    def __init__(self, message_zh: str, message_en: str, problems: list[Problem] | None = None, **extra: Any):
        super().__init__(message_zh, message_en, list(problems or []), extra, 409, "conflict")


class Forbidden(MobilizeError):
    """The caller's role does not allow this (403)."""

    def __init__(self, message_zh: str, message_en: str, problems: list[Problem] | None = None, **extra: Any):
        super().__init__(message_zh, message_en, list(problems or []), extra, 403, "forbidden")


class Unauthorized(MobilizeError):
    """No valid credentials (401)."""

    def __init__(self, message_zh: str = "请先登录", message_en: str = "Please log in", **extra: Any):
        super().__init__(message_zh, message_en, [], extra, 401, "unauthorized")
