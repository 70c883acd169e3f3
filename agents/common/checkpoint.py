"""Atomic checkpoints: write to a temporary file in the same folder, then rename over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metagym.atomic import replaced_atomically


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` so that a reader sees the old file or the new one, whole."""
    import torch

    with replaced_atomically(path, binary=True) as handle:
        torch.save(obj, handle)


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
