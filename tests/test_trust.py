"""Runs you can trust: checkpoints that cannot run code, exact resume however a run stopped."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import metagym  # noqa: E402
from metagym.agents import maml, rl2  # noqa: E402
from metagym.agents.common.checkpoint import load  # noqa: E402
from metagym.agents.common.runlog import Diverged, Interrupted, StopRequest  # noqa: E402
from metagym.snapshot import env_state, restore_env_state  # noqa: E402
from metagym.wrappers import make_trial_vector  # noqa: E402

CLI = [sys.executable, "-m", "metagym.cli"]
RL2_RUN = ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--hidden-size", "8"]
RL2_RUN += ["--num-minibatches", "2"]
MAML_RUN = ["--agent", "maml", "--env", "PointNav2D-v0", "--meta-batch-size", "2", "--fast-batch-size", "2"]
MAML_RUN += ["--hidden-size", "8"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


def rl2_config(**kwargs: object) -> rl2.RL2Config:
    base = {"env_id": "MetaBandit-v0", "num_envs": 8, "rollout_steps": 10, "hidden_size": 8, "num_minibatches": 2}
    return rl2.RL2Config(**{**base, "total_steps": 800, **kwargs})  # type: ignore[arg-type]


# -- the env's state as plain data --------------------------------------------------------------
@pytest.mark.parametrize("env_id", metagym.env_ids(trials=False))
def test_every_family_resumes_exactly_from_plain_data(env_id: str) -> None:
    """A trial vector's state survives a weights_only round trip: the next steps are identical."""
    envs = make_trial_vector(2, env_id, None)
    envs.action_space.seed(0)
    envs.reset(seed=3)
    for _ in range(40):
        envs.step(envs.action_space.sample())
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"metagym-snapshot-{os.getpid()}-{env_id}.pt"
    from metagym.agents.common.checkpoint import save_atomic

    save_atomic({"config": {}, "envs": env_state(envs)}, path)
    state = load(path)
    path.unlink()
    copy = make_trial_vector(2, env_id, None)
    copy.reset(seed=99)  # a different state, overwritten by the restore
    restore_env_state(copy, state["envs"])
    assert copy.get_attr("task") == envs.get_attr("task")  # what users read, not only what steps use
    for _ in range(40):
        action = envs.action_space.sample()
        a, b = envs.step(action), copy.step(action)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    assert copy.get_attr("task") == envs.get_attr("task")


def test_a_foreign_env_state_is_refused_naming_the_field() -> None:
    envs = make_trial_vector(2, "MetaBandit-v0", None)
    envs.reset(seed=0)
    state = env_state(envs)
    other = make_trial_vector(3, "MetaBandit-v0", None)
    other.reset(seed=0)
    with pytest.raises(ValueError, match=r"envs\.\S+: expected"):
        restore_env_state(other, state)
    with pytest.raises(ValueError, match="unknown field 'evil'"):
        restore_env_state(envs, {**state, "evil": 1})


# -- hostile and foreign checkpoints ------------------------------------------------------------
class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def rl2_run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    rl2.Trainer(rl2_config(total_steps=160), folder).run(progress=False)
    (folder / "agent.txt").write_text("rl2\n")
    return folder


def test_checkpoints_load_with_weights_only(rl2_run: Path, tmp_path: Path) -> None:
    state = torch.load(rl2_run / "checkpoint.pt", weights_only=True)
    assert state["update"] == 2 and isinstance(state["envs"], dict)
    trainer = maml.Trainer(maml.MAMLConfig(meta_batch_size=2, fast_batch_size=2, hidden_size=8), tmp_path / "m")
    trainer.run(progress=False, stop_after=1)
    saved = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)
    assert saved["update"] == 1 and saved["agent"] == "maml"


def test_a_crafted_checkpoint_runs_no_code(rl2_run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    state = torch.load(rl2_run / "checkpoint.pt", weights_only=True)
    torch.save({**state, "envs": _Exploit(marker)}, rl2_run / "checkpoint.pt")
    attempts = [
        ["evaluate", "--run-dir", str(rl2_run), "--tasks", "2", "--out", str(tmp_path / "r.json")],
        ["render", "--run-dir", str(rl2_run), "--out", str(tmp_path / "t.gif")],
        ["train", "--run-dir", str(rl2_run), "--resume", "--quiet"],
    ]
    for args in attempts:
        result = cli(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "pickled objects" in result.stderr and "checkpoint.pt" in result.stderr
    for loader in (rl2.RL2Agent.load, maml.MAMLAgent.load):
        with pytest.raises(ValueError, match="pickled objects"):
            loader(rl2_run)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"config": {"env_id": "os:system"}}, "not a registered Gymnasium id"),
        ({"config": {"env_id": "Nope-v0"}}, "not a registered Gymnasium id"),
        ({"config": {"bogus": 1}}, "unknown fields bogus"),
        ({"network": {"encoder.0.weight": torch.zeros(3, 3)}}, "weights do not fit the network"),
        ({"obs": torch.zeros(2, 2)}, "obs is float32[2, 2], expected float32"),
        ({"update": 1.5}, "'update' has the wrong type"),
        ({"shuffle_rng": "{}"}, "shuffle_rng is not a random generator state"),
        ({"sampler": torch.zeros(3)}, "'sampler' is not a torch generator state"),
        ({"optimizer": {"state": 1}}, "weights do not fit the network"),
        ({"sampler": "state"}, "'sampler' has the wrong type"),
    ],
)
def test_a_checkpoint_that_does_not_fit_gets_one_line(rl2_run: Path, change: dict, words: str) -> None:
    state = torch.load(rl2_run / "checkpoint.pt", weights_only=True)
    for key, value in change.items():
        state[key] = {**state[key], **value} if key == "config" else value
    torch.save(state, rl2_run / "checkpoint.pt")
    result = cli("train", "--run-dir", str(rl2_run), "--resume", "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr and "checkpoint" in result.stderr


def _nan_weights(state: dict) -> dict:
    return {k: v * float("nan") if v.is_floating_point() else v for k, v in state["network"].items()}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"global_step": "many"}, "'global_step' has the wrong type (str)"),
        ({"global_step": -5}, "'global_step' is -5, not a count"),
        ({"global_step": 10**30}, "not a count (0 to 2**53"),
        ({"network": _nan_weights}, "network.encoder.0.weight holds NaN or infinite values"),
    ],
)
def test_a_damaged_checkpoint_is_named_not_the_users_flags(rl2_run: Path, change: dict, words: str) -> None:
    """A damaged step counter was blamed on --steps (or resumed silently when negative), NaN
    weights reached a torch distribution's traceback: each is now one line naming the checkpoint,
    from every command that reads it."""
    state = torch.load(rl2_run / "checkpoint.pt", weights_only=True)
    for key, value in change.items():
        state[key] = value(state) if callable(value) else value
    torch.save(state, rl2_run / "checkpoint.pt")
    attempts = [
        ["train", "--run-dir", str(rl2_run), "--resume", "--quiet", "--steps", "400"],
        ["train", "--run-dir", str(rl2_run), "--resume", "--quiet"],
        ["evaluate", "--run-dir", str(rl2_run), "--tasks", "2", "--out", str(rl2_run.parent / "r.json"), "--quiet"],
    ]
    for args in attempts:
        result = cli(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert words in result.stderr and str(rl2_run / "checkpoint.pt") in result.stderr, result.stderr
        assert "--steps" not in result.stderr


def test_an_edited_agent_txt_is_noted_and_the_checkpoints_agent_is_used(rl2_run: Path, tmp_path: Path) -> None:
    """agent.txt edited to another agent was trusted (an RL² run labelled MAML); the checkpoint's
    own agent wins, with a note as for an edited config.json."""
    (rl2_run / "agent.txt").write_text("maml\n")
    out = tmp_path / "r.json"
    result = cli("evaluate", "--run-dir", str(rl2_run), "--tasks", "2", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"note: {rl2_run / 'agent.txt'} says 'maml', the checkpoint 'rl2'" in result.stderr
    assert import_json(out)["agent"] == "RL²"
    result = cli("train", "--run-dir", str(rl2_run), "--resume", "--steps", "240", "--quiet")
    assert result.returncode == 0 and "the checkpoint 'rl2'" in result.stderr, result.stderr
    assert (rl2_run / "agent.txt").read_text() == "rl2\n"  # the record is rewritten at the next checkpoint


def import_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


# -- stopping: between updates, never inside one; never after an error --------------------------
def test_a_second_signal_stops_at_once_without_saving() -> None:
    request = StopRequest()
    request.handle(signal.SIGTERM, None)
    assert request.requested
    with pytest.raises(Interrupted) as stopped:
        request.handle(signal.SIGINT, None)
    assert not stopped.value.saved


def test_an_error_saves_nothing_and_divergence_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = rl2.Trainer(rl2_config(), tmp_path / "run")
    trainer.run(progress=False, stop_after=2, checkpoint_seconds=0)
    saved = (tmp_path / "run" / "checkpoint.pt").read_bytes()

    def broken(buf: object) -> dict[str, float]:
        raise RuntimeError("a bug in the middle of an update")

    monkeypatch.setattr(trainer.algorithm, "train_on", broken)
    with pytest.raises(RuntimeError):
        trainer.run(progress=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == saved  # the half-done update is not saved
    monkeypatch.setattr(trainer.algorithm, "train_on", lambda buf: {"policy_loss": float("nan")})
    with pytest.raises(Diverged, match=r"diverged at update 3 .*policy_loss.*last good checkpoint"):
        trainer.run(progress=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == saved


# -- resume: --steps extends, the interval carries over -----------------------------------------
def test_resume_extends_to_steps_and_keeps_the_checkpoint_interval(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = cli("train", *RL2_RUN, "--steps", "160", "--checkpoint-seconds", "7", "--run-dir", str(run), "--quiet")
    assert first.returncode == 0, first.stderr
    refused = cli("train", "--run-dir", str(run), "--resume", "--steps", "160", "--quiet")
    assert refused.returncode == 2 and "--steps: the run in" in refused.stderr and "160" in refused.stderr
    assert "--env:" in cli("train", "--run-dir", str(run), "--resume", "--env", "MetaBandit-v0").stderr
    more = cli("train", "--run-dir", str(run), "--resume", "--steps", "400", "--quiet")
    assert more.returncode == 0, more.stderr
    state = load(run / "checkpoint.pt")
    assert state["global_step"] == 400 and state["config"]["total_steps"] == 400
    assert state["checkpoint_seconds"] == 7.0
    assert len((run / "progress.csv").read_text().splitlines()) == 1 + 5


# -- the soak, short: SIGTERM at random moments, resume, end bit for bit ------------------------
def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "steps_per_sec"} for row in csv.DictReader(handle)]


def _interrupted(args: list[str], run: Path, kills: int, seed: int) -> int:
    """Train with ``args``, SIGTERM it ``kills`` times after a random number of new log rows, resume."""
    rng = np.random.default_rng(seed)
    done, command = 0, [*CLI, *args]
    for _ in range(kills):
        before = len(_rows(run)) if (run / "progress.csv").exists() else 0
        wait_for = before + int(rng.integers(1, 4))
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if (run / "progress.csv").exists() and len(_rows(run)) >= wait_for:
                time.sleep(float(rng.uniform(0, 0.2)))  # somewhere inside an update
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.02)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 130:
            assert "interrupted: update" in err, err
            done += 1
        else:
            # 0: the run finished first. -SIGTERM: the signal came after the last update and its
            # save, once the loop had given the default handler back (the end state is checked
            # bit for bit below either way).
            assert proc.returncode in (0, -signal.SIGTERM), err
        command = [*CLI, "train", "--run-dir", str(run), "--resume", "--quiet"]
    final = subprocess.run(command, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    return done


@pytest.mark.parametrize(
    ("agent", "args", "weights"),
    [
        ("rl2", [*RL2_RUN, "--steps", "4000"], "network"),
        ("maml", [*MAML_RUN, "--steps", "8000"], "params"),
    ],
)
def test_sigterm_and_resume_end_bit_for_bit_equal(tmp_path: Path, agent: str, args: list[str], weights: str) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = ["train", *args, "--checkpoint-seconds", "1000", "--quiet"]  # saves only on the signal and at the end
    assert subprocess.run([*CLI, *base, "--run-dir", str(straight)], capture_output=True).returncode == 0
    interrupts = _interrupted([*base, "--run-dir", str(split)], split, kills=3, seed=len(agent))
    assert interrupts >= 1  # at least one signal landed inside training
    a, b = load(straight / "checkpoint.pt"), load(split / "checkpoint.pt")
    for key, value in a[weights].items():
        assert torch.equal(value, b[weights][key]), key
    if "optimizer" in a:
        for slot, moments in a["optimizer"]["state"].items():
            for name, value in moments.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][slot][name]))
    assert _rows(straight) == _rows(split)  # every log row, none lost or repeated
