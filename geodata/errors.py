"""Domain errors: a machine code, a Chinese and an English message, the offending field, detail.

They say what was refused and why, never how a transport answers it: the HTTP API maps each class
to a status in one place (``dashboard.api.core.error_from_exception``). Every one is raised before
anything is written (the caller's transaction then rolls back whatever it had begun).
"""
from __future__ import annotations


class DomainError(ValueError):
    """A refused request (bad or inconsistent input); the subclasses below say more."""

    default_field: str | None = None

    def __init__(self, code: str, message_zh: str, message_en: str, field: str | None = None,
                 detail: dict | None = None):
        super().__init__(f"{message_zh} / {message_en}")
        self.code, self.message_zh, self.message_en = code, message_zh, message_en
        self.field = field if field is not None else self.default_field
        self.detail = detail or {}


class NotFoundError(DomainError):
    """The thing named does not exist (or the viewer may not see it: the same answer)."""


class ConflictError(DomainError):
    """The request contradicts the current state (changed by someone else, already done)."""


class ForbiddenError(DomainError):
    """The actor may not do this."""


class TooLargeError(DomainError):
    """Too much of something (photos: count, bytes, pixels)."""


class UnsupportedTypeError(DomainError):
    """Content of a kind that is not accepted (a photo that is no JPEG, PNG or WebP image)."""


class OutsideGridsError(DomainError):
    """The point lies in no current block grid."""


class TransitionError(DomainError):
    """A workflow step that cannot be taken (an unknown action); names the field ``action``."""

    default_field = "action"


class IllegalTransitionError(TransitionError):
    """The action is not allowed from the issue's current state."""


class TransitionForbiddenError(TransitionError):
    """None of the actor's roles may take the action."""


def not_found(what_zh: str, what_en: str, key: object, field: str = "id") -> NotFoundError:
    """“{what} '{key}' does not exist”, naming ``field``."""
    return NotFoundError("not_found", f"{what_zh}“{key}”不存在", f"{what_en} '{key}' does not exist", field=field)


def conflict(current: int | None = None) -> ConflictError:
    """Someone else changed the issue since the client read it (optimistic locking)."""
    return ConflictError("changed_by_someone_else", "该事项已被他人修改，请刷新后重试",
                         "the issue was changed by someone else; reload it and try again",
                         field="version", detail={"current_version": current} if current else None)
