"""One line of an exception, for the one-line messages metagym prints instead of tracebacks."""

from __future__ import annotations


def error_line(error: BaseException) -> str:
    """``Type: first line of its message`` (libraries' messages are often paragraphs), or the
    type's name alone when the message is empty."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
