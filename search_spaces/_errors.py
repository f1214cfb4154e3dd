"""The package's errors, and pydantic's validation errors as 'field.path: message' lines."""

from __future__ import annotations

from pydantic import ValidationError


class UnknownNameError(KeyError):
    """A registry miss; the message lists the names that exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class SpaceError(ValueError):
    """A search space that cannot be loaded; the message names the file and the field."""


def describe_validation_error(err: ValidationError, *, sep: str = "; ") -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return sep.join(lines)
