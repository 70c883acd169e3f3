"""Atomic checkpoints: write to a temporary file in the same folder, then rename over."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` so that a reader sees the old file or the new one, whole."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> Any:
    """Load a checkpoint, or raise ValueError naming the file if it is missing or corrupt."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: no file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for a damaged file
        raise ValueError(f"checkpoint: {path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
