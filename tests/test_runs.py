"""Run folders are never lost: no silent overwrite, one trainer at a time, --out guarded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from metagym.agents.common.runlog import run_lock  # noqa: E402
from metagym.agents.rl2 import RL2Config, Trainer  # noqa: E402

CLI = [sys.executable, "-m", "metagym.cli"]
TINY = ["--num-envs", "8", "--rollout-steps", "10", "--hidden-size", "8", "--num-minibatches", "2", "--quiet"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    config = RL2Config(env_id="MetaBandit-v0", num_envs=8, rollout_steps=10, hidden_size=8, num_minibatches=2)
    Trainer(config.__class__(**{**config.__dict__, "total_steps": 160}), folder).run(progress=False)
    (folder / "agent.txt").write_text("rl2\n")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_train_into_a_run_without_resume_is_refused_and_changes_nothing(run: Path) -> None:
    before = snapshot(run)
    again = cli("train", "--env", "MetaBandit-v0", "--steps", "160", "--run-dir", str(run), *TINY)
    refused(again, "already holds a run")
    refused(cli("train", "--agent", "maml", "--env", "PointNav2D-v0", "--run-dir", str(run)), "already holds a run")
    assert snapshot(run) == before  # agent.txt too: the first release overwrote it here


def test_overwrite_starts_over(run: Path) -> None:
    args = ["train", "--env", "MetaBandit-v0", "--steps", "80", "--run-dir", str(run), "--overwrite", *TINY]
    subprocess.run([*CLI, *args], check=True, capture_output=True)
    assert (run / "progress.csv").read_text().count("\n") == 2  # header + one update: a fresh log


def test_a_bad_config_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    refused(cli("train", "--run-dir", str(folder), "--learning-rate", "-1"), "--learning-rate: expected a number > 0")
    assert not folder.exists()


def test_one_trainer_per_run_folder(run: Path) -> None:
    with run_lock(run):  # this test process plays the first trainer
        refused(cli("train", "--run-dir", str(run), "--resume", "--quiet"), "being trained by another process")
    assert cli("train", "--run-dir", str(run), "--resume", "--quiet").returncode == 0  # released on exit


def test_resume_reads_the_agent_from_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "maml"
    sizes = ["--meta-batch-size", "2", "--fast-batch-size", "2", "--hidden-size", "8", "--quiet"]
    first = ["train", "--agent", "fomaml", "--env", "PointNav2D-v0", "--steps", "400", "--run-dir", str(folder)]
    subprocess.run([*CLI, *first, *sizes], check=True, capture_output=True)
    result = cli("train", "--run-dir", str(folder), "--resume", "--quiet")  # no --agent: the run says fomaml
    assert result.returncode == 0, result.stderr


def test_evaluate_never_overwrites_files_it_did_not_write(run: Path, tmp_path: Path) -> None:
    log = (run / "progress.csv").read_bytes()
    refused(cli("evaluate", "--run-dir", str(run), "--tasks", "3", "--out", str(run / "progress.json")), "--out")
    assert (run / "progress.csv").read_bytes() == log  # the training log survives
    refused(cli("evaluate", "--run-dir", str(run), "--tasks", "3", "--out", str(tmp_path / "r.csv")), ".json")
    out = tmp_path / "r.json"
    for _ in range(2):  # its own earlier results are replaced
        assert cli("evaluate", "--run-dir", str(run), "--tasks", "3", "--out", str(out)).returncode == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--learning-rate", "inf"], "--learning-rate: expected a finite number"),
        (["--vf-coef", "-1"], "--vf-coef: expected a number >= 0"),
        (["--checkpoint-seconds", "nan"], "--checkpoint-seconds: expected a finite number >= 0"),
        (["--agent", "maml", "--env", "PointNav2D-v0", "--cg-damping", "-1"], "--cg-damping: expected a number >= 0"),
        (["--selected-on", "tuesday"], "--selected-on: expected"),
        (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_written(tmp_path: Path, args: list[str], words: str) -> None:
    folder = tmp_path / "never"
    refused(cli("train", "--run-dir", str(folder), *args), words)
    assert not folder.exists()


def test_resume_cleans_temp_files_of_killed_writes(run: Path) -> None:
    stale = [run / ".checkpoint.pt.abc123", run / ".progress.csv.xyz.tmp"]
    for path in stale:
        path.write_bytes(b"half a write")
    assert cli("train", "--run-dir", str(run), "--resume", "--quiet").returncode == 0
    assert not any(path.exists() for path in stale)


def test_log_rewrite_on_resume_is_atomic(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    from metagym.agents.common.runlog import truncate_log

    log = run / "progress.csv"
    before = log.read_bytes()
    fields = before.decode().splitlines()[0].split(",")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerows", fail)
    with pytest.raises(OSError, match="disk full"):
        truncate_log(log, 1, fields)
    assert log.read_bytes() == before  # the first release lost rows for good here
    assert not list(run.glob(".progress.csv.*"))


def test_a_closed_pipe_ends_quietly() -> None:
    proc = subprocess.Popen([*CLI, "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `metagym list | head -1`
    err = proc.stderr.read().decode()
    proc.wait()
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["no", 1, None])
def test_bool_options_take_bools(value: object) -> None:
    import gymnasium as gym

    with pytest.raises(ValueError, match="observe_position: expected True or False"):
        gym.make("MetaMaze-v0", observe_position=value)
    with pytest.raises(ValueError, match="held_out_goals: expected True or False"):
        gym.make("MetaGrid-GridNavi-v0", held_out_goals=value)


#: Every CLI failure of the audit: exit 2, one line naming the argument or file, nothing changed.
CLI_FAILURES = [
    (["train", "--run-dir", "{file}"], "--run-dir: {file} is a file, not a folder"),
    (["train", "--run-dir", "{file}/sub", *TINY], "--run-dir: cannot create {file}/sub"),
    (["train", "--run-dir", "{run}", "--resume", "--env", "MetaBandit-v0"], "--env: a resumed run keeps its own"),
    (["train", "--run-dir", "{run}", "--resume", "--steps", "80"], "--steps: the run in {run} has trained 160"),
    (["train", "--run-dir", "{run}", "--resume", "--overwrite"], "--overwrite: not with --resume"),
    (["evaluate", "--run-dir", "{run}", "--out", "{file}/r.json"], "--out: {file} is a file, not a folder"),
    (["evaluate", "--run-dir", "{run}", "--out", "{tmp}/r.txt"], "--out: expected a .json path"),
    (["evaluate", "--run-dir", "{run}", "--compare", "{tmp}/nothing"], "is neither a run folder (no checkpoint.pt"),
    (["evaluate", "--run-dir", "{run}", "--compare", "psrl"], "--compare: the baseline psrl does not apply"),
    (["evaluate", "--run-dir", "{run}", "--split", "ood"], "split: 'ood' is not a split"),
    (["evaluate", "--run-dir", "{run}", "--tasks", "0"], "--tasks: expected an integer >= 1"),
    (["render", "--run-dir", "{run}", "--out", "{tmp}/t.avi"], "--out: expected a .gif or .mp4 file"),
    (["render", "--run-dir", "{run}", "--out", "{file}/t.gif"], "--out: {file} is a file, not a folder"),
    (["render", "--run-dir", "{run}", "--task-index", "-1"], "--task-index: expected an integer >= 0"),
    (["train", "--run-dir", "{tmp}/n", "--steps", "ten"], "metagym train: argument --steps: invalid int value: 'ten'"),
    (["train", "--run-dir", "{tmp}/n", "--anneal-lr", "maybe"], "argument --anneal-lr: expected true or false"),
    (["train", "--run-dir", "{tmp}/n", "--hidden-size", "x"], "argument --hidden-size: expected an integer, got 'x'"),
]


@pytest.mark.parametrize(("args", "words"), CLI_FAILURES)
def test_cli_failures_are_one_line_and_change_nothing(run: Path, tmp_path: Path, args: list[str], words: str) -> None:
    names = {"run": str(run), "file": str(tmp_path / "afile"), "tmp": str(tmp_path)}
    (tmp_path / "afile").write_text("a user's file\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}
    refused(cli(*[a.format(**names) for a in args]), words.format(**names))
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_evaluate_compares_a_run_with_classic_baselines_on_the_same_tasks(run: Path, tmp_path: Path) -> None:
    """``--compare gittins thompson``: baselines by name, scored on the run's tasks and trial
    length, in the printed tables and on the plot; the JSON stays the run's."""
    from metagym.agents.classic import baseline_for
    from metagym.evaluation import evaluate_policy, family_for

    out = tmp_path / "cmp" / "results.json"
    done = cli("evaluate", "--run-dir", str(run), "--compare", "gittins", "thompson", "--tasks", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "gittins on 4 tasks" in done.stdout and "thompson on 4 tasks" in done.stdout
    gittins = evaluate_policy(baseline_for("gittins", family_for("MetaBandit-v0"), 10), "MetaBandit-v0", num_tasks=4)
    row = next(line for line in done.stdout.splitlines() if line.startswith("| gittins |"))
    assert f"{gittins['episode_returns']['mean'][0]:.2f}" in row
    assert json.loads(out.read_text())["run_dir"] == str(run) and out.with_suffix(".png").stat().st_size > 1000


def test_a_full_disk_ends_in_one_line_and_keeps_the_checkpoint(run: Path) -> None:
    import resource

    checkpoint = (run / "checkpoint.pt").read_bytes()
    limit = len(checkpoint) // 2  # the next checkpoint cannot be written: a full disk, as `ulimit -f` does

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [*CLI, "train", "--run-dir", str(run), "--resume", "--steps", "800", "--quiet"]
    result = subprocess.run(args, capture_output=True, text=True, preexec_fn=small_files)
    refused(result, "File too large); the run is as its last checkpoint left it")
    assert (run / "checkpoint.pt").read_bytes() == checkpoint
    assert not list(run.glob(".checkpoint.pt.*"))  # the partial write is removed
    assert cli("train", "--run-dir", str(run), "--resume", "--steps", "800", "--quiet").returncode == 0
    assert len((run / "progress.csv").read_text().splitlines()) == 1 + 10  # no row lost or repeated


def test_a_setting_newer_than_the_runs_record_is_not_reported_at_its_default(run: Path) -> None:
    """A run recorded before a setting existed has no entry for it in config.json: no note while
    the checkpoint holds the default, a note when it holds something else."""
    import json

    from metagym.agents.common.trainer import config_note, load_agent

    config = load_agent(run).config
    record = run / "config.json"
    recorded = json.loads(record.read_text())
    record.chmod(0o644)
    record.write_text(json.dumps({k: v for k, v in recorded.items() if k not in ("gamma", "hidden_size")}))
    note = config_note(run, config)  # gamma is at its default (0.99), hidden_size is not (8, not 128)
    assert note is not None and "says hidden_size missing, the checkpoint 8;" in note and "more" not in note


@pytest.mark.parametrize(
    ("key", "value"), [("num_envs", "sixteen"), ("hidden_size", 12.5), ("env_id", 5), ("hidden_size", 64)]
)
def test_an_edited_config_json_is_reported_in_one_line_and_the_checkpoint_used(
    run: Path, tmp_path: Path, key: str, value: object
) -> None:
    import json

    record = run / "config.json"
    assert record.stat().st_mode & 0o222 == 0  # written read-only: a record, not a setting
    config = json.loads(record.read_text())
    record.chmod(0o644)
    record.write_text(json.dumps({**config, key: value}))
    out = ["--tasks", "2", "--out", str(tmp_path / "r.json"), "--quiet"]
    for args in (
        ["evaluate", "--run-dir", str(run), *out],
        ["train", "--resume", "--steps", "240", "--run-dir", str(run), "--quiet"],
    ):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        note = [line for line in result.stderr.splitlines() if "config.json" in line]
        assert len(note) == 1 and f"says {key} {value!r}, the checkpoint {config[key]!r}" in note[0], result.stderr
        assert "the checkpoint's settings are used" in note[0]
    assert json.loads(record.read_text()) == {**config, "total_steps": 240}  # the record again, of the checkpoint


@pytest.mark.parametrize("gap", [0.0, 0.02, 0.3])
def test_ctrl_c_twice_ends_in_one_line_never_a_traceback(run: Path, tmp_path: Path, gap: float) -> None:
    """Two SIGINTs, so close or so far apart that the second lands while training finishes its
    update, while it saves, or while it closes up; and the same during an evaluation."""
    import signal
    import time

    train = ["train", "--env", "MetaBandit-v0", "--steps", "128000000", "--run-dir", str(tmp_path / "long"), "--quiet"]
    evaluate = ["evaluate", "--run-dir", str(run), "--tasks", "1000000", "--out", str(tmp_path / "e.json")]
    for args, started in ((train, tmp_path / "long" / "progress.csv"), (evaluate, None)):
        cli = subprocess.Popen(
            [sys.executable, "-m", "metagym.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (started.exists() if started else time.monotonic() > deadline - 55):
            time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        time.sleep(gap)
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=120)
        assert cli.returncode == 130 and "Traceback" not in err, err
        said = err.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("interrupted" if started else "metagym evaluate: interrupted"), err
    assert (tmp_path / "long" / "checkpoint.pt").exists() or not (tmp_path / "long" / "config.json").exists()
    assert not (tmp_path / "e.json").exists()
