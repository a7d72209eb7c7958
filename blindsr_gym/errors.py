"""The package's error types. The CLI reports an :class:`InputError` (and the OS's file errors) as one line
with exit code 2; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

__all__ = ["InputError", "InputTypeError", "UnknownNameError"]


class InputError(ValueError):
    """Input the user gave is unusable: a bad argument, file, checkpoint or configuration. The message
    says what is wrong and, where it can, what to do instead."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong kind (e.g. a blind SR checkpoint where a renderer is needed)."""


class UnknownNameError(InputError, KeyError):
    """A name (metric, method, model) that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
