"""MAML, first-order MAML, Reptile: the inner step, second-order terms, TRPO, baseline, runs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from metagym.agents.common.policy_gradient import Batch, discounted_returns, linear_baseline  # noqa: E402
from metagym.agents.maml import MAML, MAMLAgent, MAMLConfig, Sampler, Trainer  # noqa: E402
from metagym.evaluation import evaluate  # noqa: E402

TINY = {"meta_batch_size": 3, "fast_batch_size": 4, "hidden_size": 16, "total_steps": 4000}


def tiny(**kwargs) -> MAMLConfig:  # type: ignore[no-untyped-def]
    return MAMLConfig(**{**TINY, **kwargs})


def one_task_batch(agent: MAMLAgent, seed: int = 0) -> tuple[object, Batch]:
    trainer_tasks = MAML(agent.config).family.sample(np.random.default_rng(seed), 1)
    batch = Sampler(agent, 1, seed).sample(trainer_tasks, [agent.params])
    return trainer_tasks[0], batch.task(0)


def test_inner_step_equals_one_sgd_step_on_a_deep_copy() -> None:
    trainer = MAML(tiny())
    agent = trainer.agent
    _, batch = one_task_batch(agent)
    adapted = agent.adapt(batch)
    module = copy.deepcopy(agent.policy)
    with torch.no_grad():
        for name, value in module.named_parameters():
            value.copy_(agent.params[name])
    optimizer = torch.optim.SGD(module.parameters(), lr=agent.config.inner_lr)
    loss = agent.inner_loss(dict(module.named_parameters()), batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for name, value in module.named_parameters():
        torch.testing.assert_close(adapted[name], value.detach())


def test_second_order_terms_are_non_zero_and_first_order_drops_them() -> None:
    agent = MAML(tiny()).agent
    _, train = one_task_batch(agent, 0)
    _, valid = one_task_batch(agent, 1)

    def outer_grads(first_order: bool) -> tuple[list, list]:  # type: ignore[type-arg]
        theta = {k: v.detach().clone().requires_grad_(True) for k, v in agent.params.items()}
        adapted = agent.adapt(train, theta, first_order=first_order)
        loss = agent.inner_loss(adapted, valid)
        through = torch.autograd.grad(loss, list(theta.values()), retain_graph=True)
        at_adapted = torch.autograd.grad(loss, list(adapted.values()))
        return list(through), list(at_adapted)

    fo_through, fo_at = outer_grads(first_order=True)
    so_through, _ = outer_grads(first_order=False)
    for a, b in zip(fo_through, fo_at, strict=True):  # first order: d theta' / d theta is the identity
        torch.testing.assert_close(a, b)
    difference = sum(float((a - b).abs().sum()) for a, b in zip(so_through, fo_through, strict=True))
    assert difference > 1e-6  # second order adds the Hessian term


def test_trpo_step_satisfies_its_kl_bound() -> None:
    trainer = MAML(tiny(max_kl=0.005))
    before = {k: v.clone() for k, v in trainer.agent.params.items()}
    stats = trainer.meta_step()
    assert 0.0 <= stats["kl"] <= 0.005
    moved = any(not torch.equal(before[k], v) for k, v in trainer.agent.params.items())
    assert moved == (stats["step_fraction"] > 0)


def test_linear_baseline_fits_a_known_return() -> None:
    steps, episodes = 30, 5
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.uniform(-1, 1, size=(steps, episodes, 2)), dtype=torch.float32)
    t = (torch.arange(steps, dtype=torch.float32) / 100.0)[:, None]
    target = 2.0 * obs[..., 0] - obs[..., 1] ** 2 + 3.0 * t - 1.0  # in the span of the features
    batch = Batch(obs, torch.zeros(steps, episodes, 2), torch.zeros(steps, episodes), torch.ones(steps, episodes))
    torch.testing.assert_close(linear_baseline(batch, target), target, atol=1e-3, rtol=1e-3)
    rewards = torch.ones(3, 1)
    np.testing.assert_allclose(discounted_returns(rewards, torch.ones(3, 1), 0.5)[:, 0].numpy(), [1.75, 1.5, 1.0])


@pytest.mark.parametrize("variant", ["maml", "fomaml", "reptile", "pretrained"])
def test_every_variant_trains_deterministically(tmp_path: Path, variant: str) -> None:
    config = tiny(variant=variant, total_steps=100_000)  # stop_after bounds the run
    a, b = Trainer(config, tmp_path / "a"), Trainer(config, tmp_path / "b")
    a.run(progress=False, stop_after=2)
    b.run(progress=False, stop_after=2)
    assert a.update == 2 and a.global_step > 0
    for key in a.agent.params:
        torch.testing.assert_close(a.agent.params[key], b.agent.params[key], rtol=0, atol=0)
    assert (tmp_path / "a" / "progress.csv").read_text().count("\n") == 3


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    straight = Trainer(tiny(), tmp_path / "straight")
    straight.run(progress=False, stop_after=3)
    split = Trainer(tiny(), tmp_path / "split")
    split.run(progress=False, stop_after=1)
    resumed = Trainer.resume(tmp_path / "split")
    resumed.run(progress=False, stop_after=2)
    for key in straight.agent.params:
        torch.testing.assert_close(straight.agent.params[key], resumed.agent.params[key], rtol=0, atol=0)


def test_gradient_evaluation_schema_and_controls(tmp_path: Path) -> None:
    trainer = Trainer(tiny(), tmp_path / "run")
    trainer.run(progress=False, stop_after=1)
    result = evaluate(trainer.agent, "test", 4, seed=0, name="tiny")
    assert result["adaptation_steps"] == [0, 1, 2, 3] and result["x_axis"] == "gradient steps"
    assert result["env_steps_per_adaptation_step"] == 40 * 100  # the MAML code's 40 episodes per step
    assert result["episodes_per_adaptation_step"] == 40 and result["experience_episodes"] == [0, 40, 80, 120]
    assert set(result["references"]) == {"random", "oracle", "random_init"}
    assert all(len(v["mean"]) == 4 for v in result["references"].values())
    assert len(result["episode_returns"]["mean"]) == 4


def test_cli_trains_evaluates_and_renders_maml(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")
    run, base = tmp_path / "nav", [sys.executable, "-m", "metagym.cli"]
    train = [*base, "train", "--agent", "fomaml", "--env", "PointNav2D-v0", "--steps", "3000", "--run-dir", str(run)]
    subprocess.run([*train, "--meta-batch-size", "2", "--fast-batch-size", "3", "--quiet"], check=True)
    assert json.loads((run / "config.json").read_text())["variant"] == "fomaml"
    out = tmp_path / "results.json"
    subprocess.run([*base, "evaluate", "--run-dir", str(run), "--tasks", "3", "--out", str(out)], check=True)
    scored = json.loads(out.read_text())
    assert scored["adaptation_steps"] == [0, 1, 2, 3]
    # PointNav reports success: its rate after each adaptation step, the agent's and the references'
    # (the oracle reaches every goal; a random walk from the origin reaches none).
    assert len(scored["episode_success"]["mean"]) == 4
    assert all(0.0 <= v <= 1.0 for v in scored["episode_success"]["mean"])
    assert scored["reference_success"]["oracle"]["mean"] == [1.0] * 4
    assert scored["reference_success"]["random"]["mean"] == [0.0] * 4
    assert "random_init" in scored["reference_success"]
    tuned = [*base, "evaluate", "--run-dir", str(run), "--tasks", "3", "--out", str(out), "--inner-lr"]
    subprocess.run([*tuned, "0.05"], check=True)  # a control's fine-tuning step, chosen on validation
    assert json.loads(out.read_text())["inner_lr"] == 0.05
    bad = subprocess.run([*tuned, "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--inner-lr: expected a number > 0" in bad.stderr
    gif = tmp_path / "adapt.gif"
    subprocess.run([*base, "render", "--run-dir", str(run), "--out", str(gif)], check=True)
    assert len(imageio.mimread(gif)) >= 4  # an episode before and after each of 3 steps


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"variant": "maml2"}, "variant: expected one of"),
        ({"inner_lr": -1.0}, "inner_lr: expected a number > 0"),
        ({"meta_batch_size": 0}, "meta_batch_size: expected an integer >= 1"),
        ({"env_id": "Nope-v0"}, "env_id: 'Nope-v0' is not a registered Gymnasium id"),
    ],
)
def test_bad_configs_fail_clearly(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError) as info:
        MAMLConfig(**kwargs).validate()
    assert words in str(info.value)


@pytest.mark.parametrize("env_id", ["MetaBandit-v0", "MetaGrid-GridNavi-v0"])
def test_maml_runs_on_discrete_families(tmp_path: Path, env_id: str) -> None:
    trainer = Trainer(tiny(env_id=env_id), tmp_path / "run")
    trainer.run(progress=False, stop_after=2)
    assert "log_std" not in trainer.agent.params and trainer.update == 2
    result = evaluate(trainer.agent, None, 3, seed=0)
    assert len(result["episode_returns"]["mean"]) == 4


def test_reptile_defaults_to_five_inner_steps_and_refuses_one(tmp_path: Path) -> None:
    assert MAMLConfig(variant="reptile").inner_steps == 5 and MAMLConfig(variant="maml").inner_steps == 1
    with pytest.raises(ValueError, match=r"inner_steps: Reptile with 1 inner step is a joint-training"):
        MAMLConfig(variant="reptile", inner_steps=1).validate()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "metagym.cli",
            "train",
            "--agent",
            "reptile",
            "--inner-steps",
            "1",
            "--run-dir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--inner-steps: Reptile" in result.stderr
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_reptile_update_is_not_the_joint_training_step() -> None:
    """With one inner step Reptile's update is exactly the joint (multi-task SGD) step on the first
    batch; with the default five it is not."""
    trainer = MAML(tiny(variant="reptile", inner_steps=5))
    agent, batches = trainer.agent, []
    collect = trainer._collect

    def recording(tasks, params):  # type: ignore[no-untyped-def]
        batches.append(collect(tasks, params))
        return batches[-1]

    trainer._collect = recording  # type: ignore[method-assign]
    before = {k: v.clone() for k, v in agent.params.items()}
    trainer.meta_step()
    first, n, c = batches[0], trainer.config.meta_batch_size, trainer.config
    joint = {k: torch.zeros_like(v) for k, v in before.items()}
    for i in range(n):  # the joint step: the mean over tasks of one inner step on the first batch
        adapted = agent.adapt(first.task(i), before)
        for k in joint:
            joint[k] += (adapted[k] - before[k]) / n
    joint = {k: before[k] + c.reptile_lr * joint[k] for k in joint}
    gap = sum(float((agent.params[k] - joint[k]).abs().sum()) for k in joint)
    moved = sum(float((agent.params[k] - before[k]).abs().sum()) for k in joint)
    assert len(batches) == 5 and moved > 0 and gap > 0.05 * moved


def test_point_nav_policy_acts_in_unit_box_as_the_reference_code() -> None:
    agent = MAML(tiny()).agent
    assert agent.config.inner_lr == 0.5 and agent.normalized
    np.testing.assert_allclose(agent.to_env(np.array([[-1.0, 1.0], [0.5, 3.0]])), [[-0.1, 0.1], [0.05, 0.1]])
    # At initialisation (std 1 in unit actions) about a third of sampled actions saturate, not 90%.
    _, batch = one_task_batch(agent)
    raw = batch.actions[batch.mask.bool()]
    clipped = float((raw.abs() > 1.0).float().mean())
    assert 0.2 < clipped < 0.45
    raw_units = MAMLAgent(MAMLConfig(**{**TINY, "normalize_actions": False}), *spaces_of("PointNav2D-v0"))
    assert not raw_units.normalized


def spaces_of(env_id: str) -> tuple:  # type: ignore[type-arg]
    import gymnasium as gym

    env = gym.make(env_id)
    return env.observation_space, env.action_space


def test_deterministic_gradient_evaluation_scores_greedy_episodes(tmp_path: Path) -> None:
    trainer = Trainer(tiny(eval_batch_size=3), tmp_path / "run")
    sampled = evaluate(trainer.agent, "test", 3, seed=0)
    greedy = evaluate(trainer.agent, "test", 3, seed=0, deterministic=True)
    assert sampled["actions"] == "sampled" and greedy["actions"] == "greedy"
    assert sampled["episode_returns"]["mean"] != greedy["episode_returns"]["mean"]


def test_linear_baseline_survives_identical_straight_line_episodes() -> None:
    """A policy that saturates runs every episode along one line: the ridge system is singular in
    float32 at every scale tried, and the fit falls back to least squares instead of crashing."""
    steps, episodes = 100, 40
    t = torch.arange(1, steps + 1, dtype=torch.float32)[:, None, None].expand(steps, episodes, 1)
    obs = torch.cat([0.099 * t, -0.099 * t], dim=-1)  # full speed, away from a goal, in every episode
    rewards = -(obs**2).sum(-1).sqrt()
    batch = Batch(obs, torch.ones(steps, episodes, 2), rewards, torch.ones(steps, episodes))
    returns = discounted_returns(rewards, batch.mask, 0.99)
    fitted = linear_baseline(batch, returns)
    assert torch.isfinite(fitted).all()
    assert float((fitted - returns).abs().max()) < 0.05 * float(returns.abs().max())


def test_a_meta_batch_with_no_gradient_takes_no_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every pull of every task pays the same: the advantages and the meta-gradient are zero, and
    TRPO's conjugate gradient is 0 / 0. The update is skipped (it used to crash with NaN logits)."""
    from metagym.envs.bandit import BanditTask

    trainer = MAML(tiny(env_id="MetaBandit-v0"))
    tasks = [BanditTask(probs=(0.0,) * 5)] * trainer.config.meta_batch_size
    params = [trainer.agent.params] * len(tasks)
    batch = trainer._collect(tasks, params)
    before = {k: v.clone() for k, v in trainer.agent.params.items()}
    adapted = [trainer.agent.adapt(batch.task(i), params[i]) for i in range(len(tasks))]
    stats = trainer.trpo([[batch.task(i)] for i in range(len(tasks))], trainer._collect(tasks, adapted))
    assert stats["step_fraction"] == 0.0
    for name, value in trainer.agent.params.items():
        assert torch.equal(value, before[name])
