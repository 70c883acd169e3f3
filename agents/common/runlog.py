"""Run logs every trainer shares: a CSV that survives resumes, TensorBoard, SIGTERM as Ctrl-C."""

from __future__ import annotations

import csv
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def truncate_log(path: Path, update: int, fields: list[str], key: str = "update") -> None:
    """Keep only rows up to the checkpoint being resumed (a killed run may have written more)."""
    rows = []
    if path.exists():
        with path.open() as handle:
            rows = [r for r in csv.DictReader(handle) if int(r[key]) <= update]
    path.unlink(missing_ok=True)
    for row in rows:
        append_log(path, row, fields)


def append_log(path: Path, row: dict[str, Any], fields: list[str]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            out.writeheader()
        out.writerow(row)


def tensorboard(run_dir: Path, step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV log is always written
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=step or None)


@contextmanager
def saved_on_exit(save: Callable[[], None], *closers: Any) -> Iterator[None]:
    """Run a training loop that saves however it ends: normally, on Ctrl-C, or on SIGTERM.

    SIGTERM is turned into KeyboardInterrupt for the duration; after ``save`` runs, each closer
    (progress bar, TensorBoard writer; None skipped) is closed and an interrupt is re-raised.
    """
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        save()
        for closer in closers:
            if closer is not None:
                closer.close()
