"""The one exception family of touchlens. Every layer may import this module; it imports nothing of ours.

Edges translate these: the CLI prints the message and exits 1, the web answers 4xx with JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we know: file, line, field path."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ":".join(part for part in (self.file, str(self.line) if self.line else None) if part)
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {field}{self.message}" if where else f"{field}{self.message}"


class TouchlensError(Exception):
    """Base of every error touchlens raises on purpose.

    `field` names the option or field at fault (``window``), never a command-line flag: the CLI shows it as
    ``--window``, the web API returns it as ``"field"``; `message` is the rest.
    """

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return super().__str__()

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class WorkspaceError(TouchlensError):
    """No workspace where one was expected, or a broken one."""


class MapError(TouchlensError):
    """The map (YAML, JSON or CSV) is invalid; `problems` lists every error found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownItem(TouchlensError):
    """A key names no item of that kind; the message lists what exists."""


class BadOption(TouchlensError):
    """An option's value cannot be used (a duration that is not one, say); names the option."""


class UsageError(BadOption):
    """Options that cannot go together, or one that is missing: the command line exits 2, as for a typo."""
