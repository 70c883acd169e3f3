"""RL²: GAE, memory across a trial, determinism, exact resume, evaluation, rendering, learning."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import DEPENDENT_BANDITS, dependent_bandit_results  # noqa: E402

from metagym.agents.common.gae import gae  # noqa: E402
from metagym.agents.rl2 import RL2Agent, RL2Config, Trainer  # noqa: E402
from metagym.envs.bandit import BanditTask  # noqa: E402
from metagym.evaluation import evaluate, held_out_tasks, write  # noqa: E402
from metagym.results import table  # noqa: E402

TINY = {"num_envs": 8, "rollout_steps": 10, "hidden_size": 16, "num_minibatches": 2, "update_epochs": 2}


def tiny(**kwargs) -> RL2Config:  # type: ignore[no-untyped-def]
    return RL2Config(**{"env_id": "MetaBandit-v0", "total_steps": 8 * 10 * 4, **TINY, **kwargs})


def params(agent: RL2Agent) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in agent.network.parameters()]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"reward_scale": 0.0}, "reward_scale: expected a number > 0"),
        ({"gamma": 1.5}, "gamma: expected a number in [0, 1]"),
        ({"num_envs": 0}, "num_envs: expected an integer >= 1"),
        ({"actor_gain": 0.0}, "actor_gain: expected a number > 0"),
        ({"env_id": "Nope-v0"}, "env_id: 'Nope-v0' is not a registered Gymnasium id"),
    ],
)
def test_bad_configs_fail_clearly(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError) as info:
        RL2Config(**kwargs).validate()
    assert words in str(info.value)


def test_actor_gain_scales_only_the_actor_heads_initial_weights() -> None:
    """actor_gain sets each action's initial weight norm (0.01, CleanRL's, by default) and changes
    nothing else: every other weight is the default run's."""
    from metagym.agents.rl2 import RL2

    default, sharp = RL2(tiny()), RL2(tiny(actor_gain=1.4))
    a, b = default.agent.network, sharp.agent.network
    assert np.allclose(a.actor.weight.detach().norm(dim=1).numpy(), 0.01)
    assert np.allclose(b.actor.weight.detach().norm(dim=1).numpy(), 1.4)
    assert np.allclose(a.actor.weight.detach().numpy() * 140, b.actor.weight.detach().numpy(), atol=1e-6)
    others = [(n, p) for n, p in a.named_parameters() if n != "actor.weight"]
    assert all(np.array_equal(p.detach().numpy(), b.get_parameter(n).detach().numpy()) for n, p in others)


def test_norm_adv_off_takes_the_advantages_as_they_are() -> None:
    """PPO's policy term on advantages normalised per minibatch (CleanRL's norm_adv, the default)
    or as they are (the RL² reference's standardize_advs 0): with equal log-probabilities the
    term is minus the advantages' mean, 0 once normalised."""
    import torch

    from metagym.agents.common.memory import ppo_loss

    adv = torch.tensor([1.0, 2.0, 6.0])
    zeros, ones = torch.zeros(3), torch.ones(3)
    for norm_adv, expected in ((True, 0.0), (False, -3.0)):
        _, terms = ppo_loss(zeros, zeros, adv, zeros, zeros, ones, tiny(norm_adv=norm_adv))
        assert terms["policy_loss"].item() == pytest.approx(expected, abs=1e-6)


def test_gae_matches_hand_computed_returns() -> None:
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    values = np.array([[0.5], [1.0], [1.5], [2.0]])
    terminals = np.array([[0.0], [1.0], [0.0], [0.0]])
    adv, ret = gae(rewards, values, terminals, np.array([10.0]), gamma=0.9, lam=0.8)
    # By hand: deltas d3 = 4 + 0.9*10 - 2 = 11, d2 = 3 + 0.9*2 - 1.5 = 3.3, d1 = 2 - 1 = 1 (terminal),
    # d0 = 1 + 0.9*1 - 0.5 = 1.4; A3 = 11, A2 = 3.3 + 0.72*11 = 11.22, A1 = 1, A0 = 1.4 + 0.72*1 = 2.12.
    np.testing.assert_allclose(adv[:, 0], [2.12, 1.0, 11.22, 11.0])
    np.testing.assert_allclose(ret, adv + values)
    _, plain = gae(rewards, np.zeros_like(values), terminals, np.zeros(1), gamma=0.5, lam=1.0)
    np.testing.assert_allclose(plain[:, 0], [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4])  # discounted sums, cut at the terminal


def test_hidden_state_persists_within_a_trial_and_resets_between() -> None:
    trainer = Trainer(tiny(), "/tmp/unused")
    agent = trainer.agent
    obs = trainer.algorithm.obs[:2]
    _, h1 = agent.predict(obs, None, np.ones(2, dtype=bool))
    _, h2 = agent.predict(obs, h1, np.zeros(2, dtype=bool))
    _, h_reset = agent.predict(obs, h2, np.ones(2, dtype=bool))
    assert not np.allclose(h1, h2)  # memory carries on within the trial
    np.testing.assert_allclose(h_reset, h1, atol=1e-6)  # a new trial starts from scratch
    # unroll: a start in the middle of a sequence equals starting a fresh sequence there
    net = agent.network
    seq = torch.as_tensor(np.stack([trainer.algorithm.obs[:2]] * 4))
    starts = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    features, _ = net.unroll(seq, torch.zeros(2, 16), starts)
    fresh, _ = net.unroll(seq[2:], torch.zeros(2, 16), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(features[2:, 0], fresh[:, 0])


def test_seeded_training_is_deterministic(tmp_path: Path) -> None:
    a, b = Trainer(tiny(), tmp_path / "a"), Trainer(tiny(), tmp_path / "b")
    a.run(progress=False)
    b.run(progress=False)
    for x, y in zip(params(a.agent), params(b.agent), strict=True):
        np.testing.assert_array_equal(x, y)
    c = Trainer(tiny(seed=1), tmp_path / "c")
    c.run(progress=False)
    assert any(not np.array_equal(x, y) for x, y in zip(params(a.agent), params(c.agent), strict=True))


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    straight = Trainer(tiny(), tmp_path / "straight")
    straight.run(progress=False)
    split = Trainer(tiny(), tmp_path / "split")
    split.run(progress=False, stop_after=2)
    assert split.update == 2
    resumed = Trainer.resume(tmp_path / "split")
    resumed.run(progress=False)
    assert resumed.update == straight.update == 4
    for x, y in zip(params(straight.agent), params(resumed.agent), strict=True):
        np.testing.assert_array_equal(x, y)
    rows = (tmp_path / "split" / "progress.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header and one row per update, none lost or repeated


def test_killed_run_loses_at_most_the_work_since_the_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "metagym.cli", "train", "--env", "MetaBandit-v0", "--steps", "400000"]
    cmd += ["--run-dir", str(run), "--checkpoint-seconds", "0", "--quiet", "--num-envs", "8", "--rollout-steps", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (run / "progress.csv").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logged = len((run / "progress.csv").read_text().splitlines()) - 1
    saved = Trainer.resume(run)
    assert 1 <= saved.update <= logged  # checkpointed every update: at most the update in flight is lost
    assert logged - saved.update <= 1
    saved.run(progress=False, stop_after=1)
    assert saved.update == Trainer.resume(run).update


def test_evaluate_writes_the_schema(tmp_path: Path) -> None:
    trainer = Trainer(tiny(), tmp_path / "run")
    trainer.run(progress=False)
    result = evaluate(trainer.agent, "test", 12, seed=3, name="tiny")
    paths = write(result, tmp_path / "out" / "results.json")
    data = json.loads(paths[0].read_text())
    k = data["episodes_per_trial"]
    assert k == 10 and data["num_tasks"] == 12 and data["split"] == "test" and data["env"] == "MetaBandit-v0"
    for block in (data["episode_returns"], data["references"]["random"], data["references"]["oracle"]):
        assert set(block) == {"mean", "ci_low", "ci_high"} and all(len(v) == k for v in block.values())
        assert all(lo <= m <= hi for lo, m, hi in zip(block["ci_low"], block["mean"], block["ci_high"], strict=True))
    assert len(data["normalized_score"]) == k and "episodes_to_80pct_oracle" in data
    # What was measured: the tasks in order, the distribution, the action mode, the selection split.
    assert [BanditTask.from_dict(t) for t in data["tasks"]] == held_out_tasks("MetaBandit-v0", "test", 12, 3)
    assert data["distribution"] == "test" and data["actions"] == "sampled" and data["selection_split"] is None
    assert set(data["references"]) == {"random", "oracle", "bayes_optimal"}  # exact DP for n = 10, k = 5
    assert paths[1].read_text().startswith("index,experience_episodes,mean,ci_low") and paths[2].stat().st_size > 1000
    assert paths[0].stat().st_mode & 0o777 == paths[2].stat().st_mode & 0o777  # the JSON is not left 0600
    assert evaluate(trainer.agent, "test", 12, seed=3, name="tiny") == result  # seeded
    greedy = evaluate(trainer.agent, "test", 12, seed=3, name="tiny", deterministic=True)
    assert greedy["actions"] == "greedy" and greedy["episode_returns"] != result["episode_returns"]
    assert "| bayes_optimal |" in table(result) and "| oracle |" in table(result)


def test_cli_train_evaluate_render(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")
    run = tmp_path / "grid"
    base = [sys.executable, "-m", "metagym.cli"]
    train = [*base, "train", "--env", "MetaGrid-GridNavi-v0", "--steps", "2000", "--run-dir", str(run), "--quiet"]
    subprocess.run([*train, "--num-envs", "8", "--rollout-steps", "30", "--hidden-size", "16"], check=True)
    assert json.loads((run / "config.json").read_text())["hidden_size"] == 16
    out = tmp_path / "eval" / "results.json"
    subprocess.run([*base, "evaluate", "--run-dir", str(run), "--tasks", "5", "--out", str(out)], check=True)
    assert json.loads(out.read_text())["episodes_per_trial"] == 4
    gif = tmp_path / "trial.gif"
    subprocess.run([*base, "render", "--run-dir", str(run), "--task-index", "2", "--out", str(gif)], check=True)
    assert len(imageio.mimread(gif)) == 4 * 15


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--env", "Nope-v0", "--run-dir", "{tmp}/x"], "--env: 'Nope-v0' is not a registered Gymnasium id"),
        (["train", "--agent", "dqn", "--run-dir", "{tmp}/x"], "--agent: unknown agent 'dqn'"),
        (["train", "--steps", "-5", "--run-dir", "{tmp}/x"], "--steps: expected an integer >= 1, got -5"),
        (["train", "--resume", "--run-dir", "{tmp}/missing"], "--run-dir: no checkpoint.pt in"),
        (["evaluate", "--run-dir", "{tmp}/missing"], "--run-dir: no checkpoint.pt in"),
        (["evaluate", "--run-dir", "{tmp}/corrupt"], "is not a readable checkpoint"),
        (
            ["train", "--num-envs", "6", "--num-minibatches", "4", "--run-dir", "{tmp}/x"],
            "--num-minibatches: must divide",
        ),
        (["train", "--agent", "maml", "--num-envs", "6", "--run-dir", "{tmp}/x"], "--num-envs: not an option of"),
    ],
)
def test_bad_arguments_give_one_clear_line(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run([sys.executable, "-m", "metagym.cli", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_rl2_learns_bandits_beyond_random(tmp_path: Path) -> None:
    """A fast learning test: two-armed dependent bandits, 10 pulls, about 15 s of training."""
    config = RL2Config(**DEPENDENT_BANDITS)
    dependent_bandit_results(config, tmp_path)


def test_sb3_contrib_recurrent_ppo_trains_on_a_trial_env_unchanged() -> None:
    sb3_contrib = pytest.importorskip("sb3_contrib")
    import gymnasium as gym

    import metagym  # noqa: F401

    env = gym.make("MetaGrid-Trial-v0", episodes_per_trial=2)
    model = sb3_contrib.RecurrentPPO("MlpLstmPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=0)
    action, state = model.predict(obs, state=None, episode_start=np.ones(1, dtype=bool))
    assert env.action_space.contains(int(action)) and state is not None


def test_compare_across_agent_kinds_on_one_plot(tmp_path: Path) -> None:
    """RL² (per episode) and MAML (per gradient step) on one plot, x = episodes of experience."""
    base = [sys.executable, "-m", "metagym.cli"]
    rl2, maml = tmp_path / "rl2", tmp_path / "maml"
    common = ["--env", "PointNav2D-v0", "--steps", "2000", "--quiet"]
    subprocess.run(
        [*base, "train", "--run-dir", str(rl2), *common, "--num-envs", "4", "--rollout-steps", "50"], check=True
    )
    sizes = ["--meta-batch-size", "2", "--fast-batch-size", "2", "--eval-batch-size", "2"]
    subprocess.run([*base, "train", "--agent", "fomaml", "--run-dir", str(maml), *common, *sizes], check=True)
    out = tmp_path / "both.json"
    done = subprocess.run(
        [*base, "evaluate", "--run-dir", str(rl2), "--compare", str(maml), "--tasks", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "RL² on 3 tasks" in done.stdout and "FO-MAML on 3 tasks" in done.stdout  # legends name the agent
    assert out.with_suffix(".png").stat().st_size > 1000
    assert json.loads(out.read_text())["agent"] == "RL²"


def test_normalized_rewards_follow_vecnormalizes_rule_and_resume_exactly(tmp_path: Path) -> None:
    """normalize_rewards divides PPO's rewards by the running std of each sub-env's discounted
    return (reset at trial ends), clipped to 10, the moments merged batch by batch; by hand here."""
    config = dataclasses.replace(tiny(), normalize_rewards=True)
    learner = Trainer(config, tmp_path / "hand").algorithm
    rng = np.random.default_rng(0)
    ret, values = np.zeros(config.num_envs), []
    for step in range(5):
        reward = rng.normal(size=config.num_envs)
        ended = np.arange(config.num_envs) % 3 == step % 3
        ret = ret * config.gamma + reward
        ret[ended] = 0.0
        values.append(ret.copy())
        pooled = np.concatenate(values)  # merging batch moments gives the pooled variance (plus the prior's weight)
        expected = np.clip(reward / np.sqrt(pooled.var() + 1e-8), -10, 10)
        np.testing.assert_allclose(learner.normalized(reward, ended), expected, rtol=1e-4)
    straight = Trainer(config, tmp_path / "straight")
    straight.run(progress=False)
    split = Trainer(config, tmp_path / "split")
    split.run(progress=False, stop_after=2)
    resumed = Trainer.resume(tmp_path / "split")
    np.testing.assert_array_equal(resumed.algorithm.return_moments, split.algorithm.return_moments)
    resumed.run(progress=False)
    for x, y in zip(params(straight.agent), params(resumed.agent), strict=True):
        np.testing.assert_array_equal(x, y)
    assert straight.algorithm.return_moments[2] > 1  # it counted the returns it saw
