"""A full disk loses nothing: a failed write is one line naming the file, exit 2, and the run is
left as its last good checkpoint describes it (config, log and checkpoint agree, no lock left).

On a real small filesystem (a tmpfs the test mounts, where the machine allows it) and, always,
with ENOSPC injected at every writer: checkpoint, config, progress log, results, GIF.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from metagym.cli import main  # noqa: E402

CLI = [sys.executable, "-m", "metagym.cli"]
TINY = ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--num-minibatches", "2"]
TINY += ["--hidden-size", "8", "--quiet"]
FULL = "No space left on device"


def run_files(run: Path) -> dict[str, bytes]:
    """Every file of a run folder, by name (the folder as a user would find it)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at ``tmp_path/disk`` (skipped where the test may not mount one)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-ENOSPC tests cover the writers")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` so that about ``leave`` bytes stay free; the filler's path."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.truncate(0)
        size = stats.f_bavail * stats.f_frsize - leave
        handle.write(b"\0" * max(size, 0))
    return filler


def test_resume_on_a_full_disk_keeps_the_run_as_its_checkpoint_says(small_disk: Path) -> None:
    run = small_disk / "run"
    assert cli("train", *TINY, "--steps", "160", "--run-dir", str(run)).returncode == 0
    before = run_files(run)
    filler = fill(small_disk, leave=len(before["checkpoint.pt"]) // 3)  # rows fit, a checkpoint does not
    result = cli("train", "--resume", "--steps", "8000", "--checkpoint-seconds", "0", "--run-dir", str(run), "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert str(run / "checkpoint.pt") in result.stderr and FULL in result.stderr, result.stderr
    after = run_files(run)
    for name in ("checkpoint.pt", "config.json", "progress.csv", "agent.txt"):
        assert after[name] == before[name], name  # config still says 160 steps; no row beyond the checkpoint
    assert not (run / ".lock").exists() and not list(run.glob(".*.tmp"))
    filler.unlink()
    assert cli("train", "--resume", "--steps", "400", "--run-dir", str(run), "--quiet").returncode == 0
    assert len((run / "progress.csv").read_text().splitlines()) == 1 + 5


def test_a_first_run_on_a_full_disk_leaves_no_half_run(small_disk: Path) -> None:
    fill(small_disk, leave=2048)
    run = small_disk / "new"
    result = cli("train", *TINY, "--steps", "160", "--run-dir", str(run))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and FULL in result.stderr, result.stderr
    assert not run.exists() or run_files(run) == {}, run_files(run)  # no config or log without a checkpoint


def test_evaluate_and_render_on_a_full_disk_name_out(small_disk: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", *TINY, "--steps", "160", "--run-dir", str(run)).returncode == 0
    fill(small_disk, leave=4096)
    out = small_disk / "results.json"
    result = cli("evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(out), "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--out: cannot write" in result.stderr and FULL in result.stderr, result.stderr
    gif = small_disk / "trial.gif"
    result = cli("render", "--run-dir", str(run), "--out", str(gif))
    assert result.returncode == 2 and "--out: cannot write" in result.stderr and FULL in result.stderr
    assert not gif.exists() and not list(small_disk.glob(".*.tmp*"))


def _full(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "the file")


#: Where each writer is replaced by one that finds the disk full.
WRITERS = {
    "checkpoint": "metagym.agents.common.trainer.Trainer.save",
    "config": "metagym.agents.common.trainer.Trainer._write_record",
    "progress": "metagym.agents.common.trainer.append_log",
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_enospc_at_each_training_writer_changes_nothing(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "160", "--run-dir", str(run)]) == 0
    before = {name: data for name, data in run_files(run).items() if not name.startswith("tensorboard")}
    monkeypatch.setattr(WRITERS[writer], _full)
    capsys.readouterr()
    resume = ["train", "--resume", "--steps", "800", "--checkpoint-seconds", "0", "--run-dir", str(run), "--quiet"]
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and FULL in err, err
    after = {name: data for name, data in run_files(run).items() if not name.startswith("tensorboard")}
    assert after == before and not (run / ".lock").exists()
    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(WRITERS[writer], _full)
    assert main(["train", *TINY, "--steps", "160", "--run-dir", str(fresh)]) == 2
    assert not fresh.exists() or run_files(fresh) == {}


@pytest.mark.parametrize("writer", ["results", "gif"])
def test_enospc_at_each_output_writer_names_out(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "160", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    if writer == "results":
        monkeypatch.setattr("metagym.results.replaced_atomically", _full)
        argv = ["evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(tmp_path / "r.json"), "--quiet"]
    else:
        monkeypatch.setattr("imageio.v2.mimsave", _full)
        argv = ["render", "--run-dir", str(run), "--out", str(tmp_path / "t.gif")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out: cannot write" in err and FULL in err, err
    assert not list(tmp_path.glob("r.*")) and not list(tmp_path.glob("t.gif"))


def test_a_full_disk_keeps_the_old_video_and_plot_and_names_the_file_that_failed(
    small_disk: Path, tmp_path: Path
) -> None:
    """Over a good MP4, a render on a full disk once left an unreadable 4 KB stub and reported
    success; an evaluation whose PNG did not fit left it at 0 bytes and blamed the JSON. Now each
    failed write names its own file and the old one stays as it was."""
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    run = tmp_path / "run"
    assert cli("train", *TINY, "--steps", "160", "--run-dir", str(run)).returncode == 0
    video = small_disk / "trial.mp4"
    assert cli("render", "--run-dir", str(run), "--out", str(video)).returncode == 0
    out = small_disk / "e.json"
    assert cli("evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(out), "--quiet").returncode == 0
    good = {path: path.read_bytes() for path in (video, out.with_suffix(".png"))}
    assert len(imageio.mimread(video)) == 10  # 10 pulls of one trial
    for leave in (4096, 0):  # room for a stub of a video (ffmpeg then reported success), and none
        filler = fill(small_disk, leave=leave)
        result = cli("render", "--run-dir", str(run), "--out", str(video))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert f"--out: cannot write {video}" in result.stderr and FULL in result.stderr, result.stderr
        assert video.read_bytes() == good[video]
        filler.unlink()
    fill(small_disk, leave=24 * 1024)  # the JSON and CSV fit, the PNG does not
    result = cli("evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(out), "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot write {out.with_suffix('.png')}" in result.stderr and FULL in result.stderr, result.stderr
    assert {path: path.read_bytes() for path in good} == good
    assert not list(small_disk.glob(".*.tmp*"))
