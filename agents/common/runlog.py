"""What every trainer shares: a CSV log that survives resumes, TensorBoard, stopping between updates, a lock."""

from __future__ import annotations

import csv
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metagym.atomic import replaced_atomically
from metagym.errors import ArgumentError


def truncate_log(path: Path, update: int, fields: list[str], key: str = "update") -> None:
    """Keep only rows up to the checkpoint being resumed (a killed run may have written more).

    The log is rewritten atomically (temp file, then rename): an error or a kill while it is
    rewritten leaves the old log whole, never a partial one.
    """
    if not path.exists():
        return
    with path.open() as handle:
        reader = csv.DictReader(handle)
        if key not in (reader.fieldnames or []) and "iteration" in (reader.fieldnames or []):
            key = "iteration"  # a MAML log of metagym 0.1 (its counter is "update" now)
        rows = [r for r in reader if _whole(r, key) and int(r[key]) <= update]
    if key not in fields:
        rows = [{**r, fields[0]: r[key]} for r in rows]
    with replaced_atomically(path) as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _whole(row: dict[str, Any], key: str) -> bool:
    """A row written whole (a kill in the middle of a write can leave a partial last line)."""
    return None not in row and None not in row.values() and str(row.get(key, "")).isdigit()


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


class Interrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C or SIGTERM.

    ``saved`` says whether the checkpoint holds the last whole update (the first signal: the
    update in flight is finished, saved, then training stops) or whether a second signal stopped
    it at once, leaving the previous checkpoint as it was.
    """

    def __init__(self, saved: bool, update: int) -> None:
        super().__init__()
        self.saved, self.update = saved, update


class StopRequest:
    """Set by the first SIGINT/SIGTERM; the training loop stops at the next update boundary."""

    def __init__(self) -> None:
        self.requested = False
        self.update = 0  # the last whole update, kept current by the loop

    def handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # asked twice: stop now, without saving a half-done update
            raise Interrupted(saved=False, update=self.update)
        self.requested = True


@contextmanager
def stop_between_updates(*closers: Any) -> Iterator[StopRequest]:
    """Run a training loop that Ctrl-C and SIGTERM stop between updates, never inside one.

    The loop checks ``request.requested`` after each whole update; if set, it saves and raises
    :class:`Interrupted`. Nothing is saved when the loop raises anything else: a checkpoint only
    ever holds a consistent state, so a resumed run continues bit for bit. Each closer (progress
    bar, TensorBoard writer; None skipped) is closed however the loop ends.
    """
    request = StopRequest()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request.handle)
    try:
        yield request
    finally:
        for sig in previous:  # a signal while closing up must not replace what the loop raised
            signal.signal(sig, signal.SIG_IGN)
        try:
            for closer in closers:
                if closer is not None:
                    closer.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Diverged(ValueError):
    """A loss or a weight became NaN or infinite: the run stops, its last good checkpoint kept."""


def check_finite(run_dir: Path, update: int, losses: dict[str, float], tensors: Iterable[Any]) -> None:
    """Raise :class:`Diverged` if a loss or a tensor (weights) holds NaN or infinity."""
    import math

    bad = [name for name, value in losses.items() if not math.isfinite(value)]
    if not bad and not all(bool(t.isfinite().all()) for t in tensors):
        bad = ["weights"]
    if bad:
        raise Diverged(
            f"training diverged at update {update} (non-finite {', '.join(bad)}); "
            f"the last good checkpoint in {run_dir} is kept: resume it with a smaller learning rate"
        )


class RunInUse(ArgumentError):
    """Another process is training in the same run folder (a bad ``--run-dir``)."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (``.lock``) for a training session: a second trainer is refused.

    The lock is an advisory ``flock``: the operating system releases it when the process ends,
    however it ends, so a crashed run leaves no stale lock (a killed run's file stays, harmless:
    the next trainer takes it). A session that ends removes the file while still holding it.
    Once it is held, temp files that a killed checkpoint or log write left behind are removed.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): one trainer per folder is on the user
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / ".lock"
    while True:
        handle = lock.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunInUse("run_dir", f"{run_dir} is being trained by another process (pid {holder})") from None
        try:  # the holder before us removes the file as it lets go: hold the file that is at the path
            if os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
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
        lock.unlink(missing_ok=True)  # removed while held, so no other trainer holds this file
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
