"""metagym's one exception for a bad argument, and one line of any exception for messages.

Every check of a value a caller passed raises :class:`ArgumentError` (a ``ValueError``) or
:class:`ArgumentTypeError` (also a ``TypeError``), naming the argument in ``.argument``; its text is
``"argument: what is wrong and what is allowed"``. The ``metagym`` command turns the argument into
its option (``total_steps`` into ``--steps``) and prints that one line; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["ArgumentError", "ArgumentTypeError", "error_line"]


class ArgumentError(ValueError):
    """A bad value of the argument ``argument``; ``detail`` says what is wrong and what is allowed.

    ``argument`` is the caller's name for it: a parameter (``tasks``), a config field
    (``total_steps``), a part of one (``task.goal``, ``env_kwargs['size']``) or a file.
    """

    def __init__(self, argument: str, detail: str | None = None) -> None:
        if detail is None:  # one message, as code that re-raises ``type(error)(text)`` builds it (gymnasium.make)
            named, colon, rest = argument.partition(": ")
            argument, detail = (named, rest) if colon else ("", argument)
        super().__init__(f"{argument}: {detail}" if argument else detail)
        self.argument = argument
        self.detail = detail

    def __reduce__(self) -> tuple[type[ArgumentError], tuple[str, str]]:  # pickled across processes (Ray)
        return type(self), (self.argument, self.detail)


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of a type that is not allowed (caught as a ``TypeError`` or an :class:`ArgumentError`)."""


def error_line(error: BaseException) -> str:
    """``Type: first line of its message`` (libraries' messages are often paragraphs), or the
    type's name alone when the message is empty."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
