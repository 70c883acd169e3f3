"""Shared test helpers."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import gymnasium as gym
import numpy as np


def rollout(env: gym.Env, seed: int, steps: int, options: dict | None = None) -> list:
    """Observations, rewards and flags of ``steps`` seeded random steps (resetting at ends)."""
    obs, _ = env.reset(seed=seed, options=options)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        out += [obs, reward, terminated, truncated]
        if terminated or truncated:
            obs, _ = env.reset(options=options)
            out.append(obs)
    return out


def assert_same(a: list, b: list) -> None:
    """Element-wise exact equality of two rollouts."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def assert_trains_deterministically_and_resumes_exactly(config: object, tmp_path: object, updates: int = 4) -> None:
    """Two runs of ``config`` agree; one stopped after half its updates and resumed equals one
    run straight through (every parameter, and progress.csv but for steps/s)."""
    from pathlib import Path

    from metagym.agents.common.trainer import Trainer

    root = Path(str(tmp_path))
    params = lambda t: [p.detach().numpy().copy() for p in t.agent.network.parameters()]  # noqa: E731
    straight = Trainer(config, root / "straight")
    straight.run(progress=False)
    again = Trainer(config, root / "again")
    again.run(progress=False)
    for x, y in zip(params(straight), params(again), strict=True):
        np.testing.assert_array_equal(x, y)
    split = Trainer(config, root / "split")
    split.run(progress=False, stop_after=updates // 2)
    resumed = Trainer.resume(root / "split")
    resumed.run(progress=False)
    assert resumed.update == straight.update == updates
    for x, y in zip(params(straight), params(resumed), strict=True):
        np.testing.assert_array_equal(x, y)
    read = lambda run: (run / "progress.csv").read_text().splitlines()  # noqa: E731
    strip = lambda rows: [r.split(",")[:1] + r.split(",")[3:] for r in rows]  # noqa: E731  (drop steps/s)
    assert strip(read(root / "split")) == strip(read(root / "straight"))


#: The memory agents' fast learning test: two-armed dependent bandits, 10 pulls, 100k steps.
DEPENDENT_BANDITS = {
    "env_id": "MetaBandit-Dependent-v0",
    "episodes_per_trial": 10,
    "total_steps": 100_000,
    "num_envs": 64,
    "rollout_steps": 20,
    "learning_rate": 0.003,
}


def dependent_bandit_results(config: object, tmp_path: object) -> object:
    """Train ``config`` (a memory agent on two-armed dependent bandits, 10 pulls) and score it on
    1,000 test tasks; assert it beats random and adapts (later pulls pay more than the first)."""
    from pathlib import Path

    from metagym.agents.common.trainer import Trainer
    from metagym.evaluation import evaluate

    trainer = Trainer(config, Path(str(tmp_path)) / "run")
    trainer.run(progress=False)
    # The test split's arms lie near p = 0.5 (cells 0.2-0.3, 0.4-0.6, 0.7-0.8): the oracle earns
    # about 1.2 more than random over 10 pulls, and a pull after the first at most 0.13 more.
    result = evaluate(trainer.agent, "test", 1000, seed=0)
    random = result["reference_trial_return"]["random"]
    assert result["trial_return"]["ci_low"][0] > random + 0.4  # clearly above random on held-out tasks
    per_pull = result["episode_returns"]["mean"]
    assert np.mean(per_pull[1:]) > per_pull[0] + 0.04  # it adapts: later pulls pay more (s.e. 0.017)
    return result


def package_modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the installed package (the family and agent modules included): its file
    and whether it is a package's __init__."""
    found = {}
    for top in ("metagym", "metagym.envs", "metagym.agents"):  # folders mapped apart in a checkout
        package = importlib.import_module(top)
        found[top] = (Path(package.__file__ or ""), True)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            spec = importlib.util.find_spec(info.name)
            assert spec is not None and spec.origin is not None
            found[info.name] = (Path(spec.origin), info.ispkg)
    return found
