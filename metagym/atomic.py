"""Replace a file atomically: write a temp file in the same folder, then rename it over.

A reader (or a crash) sees the old file or the new one, whole, never a partial write. Results,
logs and checkpoints all go through :func:`replaced_atomically`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def replaced_atomically(path: str | Path, binary: bool = False, mode: int | None = None) -> Iterator[IO[Any]]:
    """Yield a handle whose contents replace ``path`` when the block ends without an error.

    The temp file (``.<name>.<random>.tmp``) is removed if the block raises; the new file gets
    the mode any new file gets (``mkstemp`` alone would leave it 0600), or ``mode`` if given. An
    OSError of the write (a full disk) names ``path``, the file the caller meant to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, (0o666 if mode is None else mode) & ~umask)
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        if error.errno is not None and (error.filename is None or str(error.filename) == temp):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_figure(fig: Any, path: str | Path, **options: Any) -> None:
    """Save a Matplotlib figure as ``path`` (PNG) whole or not at all: rendered in memory, then
    replaced atomically, so a full disk leaves the old picture and names ``path``."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **options)
    with replaced_atomically(path, binary=True) as handle:
        handle.write(buffer.getbuffer())
