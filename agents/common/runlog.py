"""Run logs every trainer shares: a CSV that survives resumes, TensorBoard, SIGTERM as Ctrl-C."""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metagym.atomic import replaced_atomically


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def truncate_log(path: Path, update: int, fields: list[str], key: str = "update") -> None:
    """Keep only rows up to the checkpoint being resumed (a killed run may have written more).

    The log is rewritten atomically (temp file, then rename): an error or a kill while it is
    rewritten leaves the old log whole, never a partial one.
    """
    if not path.exists():
        return
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r[key]) <= update]
    with replaced_atomically(path) as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


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


class RunInUse(ValueError):
    """Another process is training in the same run folder (a bad ``--run-dir``)."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (``.lock``) for a training session: a second trainer is refused.

    The lock is an advisory ``flock``: the operating system releases it when the process ends,
    however it ends, so a crashed run leaves no stale lock (the file itself stays, harmless).
    Once it is held, temp files that a killed checkpoint or log write left behind are removed.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): one trainer per folder is on the user
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = (run_dir / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunInUse(f"--run-dir: {run_dir} is being trained by another process (pid {holder})") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        for stale in run_dir.glob(".*.tmp"):  # left by a write that a kill interrupted; no writer now
            stale.unlink(missing_ok=True)
        for stale in run_dir.glob(".checkpoint.pt.*"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
