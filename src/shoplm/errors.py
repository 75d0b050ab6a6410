"""Exceptions with messages a shop owner can act on.

Every error that reaches a user says *what* is wrong and *where* (file, line, field).
"""

from __future__ import annotations

from pathlib import Path


class ShoplmError(Exception):
    """Base class of every error shoplm raises on purpose."""


class InputError(ShoplmError):
    """Bad input: a file, a column, a value. Carries where the problem is.

    Example:
        >>> str(InputError("missing column 'item_id'", path="items.csv"))
        "items.csv: missing column 'item_id'"
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
        if self.field:
            where += f"{' ' if where else ''}[{self.field}]"
        return f"{where}: {self.message}" if where else self.message


class NotFoundError(ShoplmError):
    """What was asked for does not exist (yet): an unknown user, a report no job has written.

    The HTTP service answers 404 with ``code``; the command line exits 2.

    Example:
        >>> NotFoundError("no churn scores yet: run `shoplm churn`", code="no_churn_results").code
        'no_churn_results'
    """

    def __init__(self, message: str, *, code: str = "not_found") -> None:
        super().__init__(message)
        self.code = code


class ConflictError(ShoplmError):
    """The request is well formed but the state forbids it now: a spent privacy budget, say.

    The HTTP service answers 409 with ``code``; the command line exits 2.

    Example:
        >>> ConflictError("privacy budget spent", code="privacy_budget_exhausted").code
        'privacy_budget_exhausted'
    """

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class ModelNotFoundError(ShoplmError):
    """A language model is not installed; the message names the package or path to install."""


class NotFittedError(ShoplmError):
    """An estimator was used before ``fit`` or ``load``."""


class ModelFileError(ShoplmError):
    """A saved model directory is missing, corrupted, or of another kind."""


class GeneratorError(ShoplmError):
    """A text generator failed: endpoint unreachable, timed out, or answered with an error."""
