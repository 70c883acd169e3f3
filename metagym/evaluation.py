"""The adaptation protocol: how fast an agent does on tasks it has never seen.

Every held-out task gets one full trial, from a fixed seed; the return of every inner episode
is recorded. Results are per-episode-index means with bootstrap 95% intervals, beside the
family's random and task-oracle references on the same tasks, normalised scores and the number
of episodes the agent needs to reach 80% of the oracle.

An agent here is anything with ``predict(obs, state, episode_start, deterministic)`` (SB3's
interface) and a ``config`` naming ``env_id`` and ``episodes_per_trial``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from metagym.policies import RandomPolicy, run_trials
from metagym.registration import family_of
from metagym.tasks import Task
from metagym.wrappers import make_trial_vector

BOOTSTRAP_SAMPLES = 2000


def held_out_tasks(env_id: str, split: str, num_tasks: int, seed: int) -> list[Task]:
    """The ``num_tasks`` tasks of ``split`` that evaluation with ``seed`` uses."""
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"tasks: expected an integer >= 1, got {num_tasks!r}")
    family = family_of(gym.make(env_id, disable_env_checker=True))
    return family.sample(np.random.default_rng(seed), num_tasks, split)


def agent_trials(
    agent: Any, tasks: Sequence[Task], episodes: int, seed: int, deterministic: bool = False
) -> np.ndarray:
    """Returns (len(tasks), episodes) of one trial per task, all trials stepped as one batch."""
    import torch

    torch.manual_seed(seed)
    envs = make_trial_vector(len(tasks), agent.config.env_id, episodes, autoreset_mode="Disabled")
    envs.set_attr("task", list(tasks))
    obs, _ = envs.reset(seed=seed)
    n = len(tasks)
    returns = np.zeros((n, episodes))
    counts = np.zeros(n, dtype=np.int64)
    state, start = None, np.ones(n, dtype=bool)
    while (counts < episodes).any():
        action, state = agent.predict(obs, state, start, deterministic)
        obs, _, _, _, infos = envs.step(action)
        start = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(infos.get("_inner_return", [])):
            if counts[i] < episodes:  # finished trials keep stepping until all are done
                returns[i, counts[i]] = infos["inner_return"][i]
                counts[i] += 1
    envs.close()
    return returns


def reference_trials(env_id: str, tasks: Sequence[Task], episodes: int, seed: int) -> dict[str, np.ndarray]:
    """The random and task-oracle references on the same tasks and seeds."""
    env = gym.make(env_id)
    family = family_of(env)
    return {
        "random": run_trials(env, RandomPolicy(env.action_space), tasks, episodes, seed),
        "oracle": run_trials(env, family.oracle_policy(), tasks, episodes, seed),
    }


def summarize(returns: np.ndarray, seed: int) -> dict[str, list[float]]:
    """Per-episode mean and bootstrap 95% interval over tasks (rows)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, returns.shape[0], size=(BOOTSTRAP_SAMPLES, returns.shape[0]))
    means = returns[picks].mean(axis=1)  # (samples, episodes)
    return {
        "mean": returns.mean(axis=0).tolist(),
        "ci_low": np.percentile(means, 2.5, axis=0).tolist(),
        "ci_high": np.percentile(means, 97.5, axis=0).tolist(),
    }


def evaluate_gradient(
    agent: Any, split: str = "test", num_tasks: int = 40, seed: int = 0, name: str = "agent", steps: int = 3
) -> dict[str, Any]:
    """The protocol for gradient-based agents: return after 0..``steps`` adaptation steps.

    The agent supplies ``adaptation_returns(tasks, steps, seed)`` and ``reinitialised(seed)``
    (the "random initialisation, fine-tuned alike" control); this module imports no agent.
    """
    env_id = agent.config.env_id
    tasks = held_out_tasks(env_id, split, num_tasks, seed)
    returns = agent.adaptation_returns(tasks, steps, seed)
    env = gym.make(env_id)
    singles = reference_trials(env_id, tasks, 1, seed)
    references = {key: np.repeat(value, steps + 1, axis=1) for key, value in singles.items()}
    references["random_init"] = agent.reinitialised(seed + 1).adaptation_returns(tasks, steps, seed)
    results = _results(name, env_id, split, num_tasks, seed, returns, references)
    # Index k of the curves is "after k gradient steps"; reaching 80% of the oracle after k
    # steps means k * fast_batch_size episodes were played to adapt.
    reached = results["episodes_to_80pct_oracle"]
    steps_needed = None if reached is None else reached - 1
    return results | {
        "adaptation_steps": list(range(steps + 1)),
        "env_steps_per_adaptation_step": agent.config.fast_batch_size * family_of(env).horizon,
        "x_axis": "gradient steps",
        "gradient_steps_to_80pct_oracle": steps_needed,
        "episodes_to_80pct_oracle": None if steps_needed is None else steps_needed * agent.config.fast_batch_size,
    }


def evaluate(
    agent: Any, split: str = "test", num_tasks: int = 200, seed: int = 0, name: str = "agent"
) -> dict[str, Any]:
    """Run the protocol and return the results dictionary (see :func:`write`)."""
    if hasattr(agent, "adapt"):
        return evaluate_gradient(agent, split, num_tasks, seed, name)
    env_id, episodes = agent.config.env_id, agent.config.episodes_per_trial
    if episodes is None:
        episodes = family_of(gym.make(env_id, disable_env_checker=True)).episodes_per_trial
    tasks = held_out_tasks(env_id, split, num_tasks, seed)
    returns = agent_trials(agent, tasks, episodes, seed)
    references = reference_trials(env_id, tasks, episodes, seed)
    return _results(name, env_id, split, num_tasks, seed, returns, references)


def _results(
    name: str, env_id: str, split: str, num_tasks: int, seed: int, returns: np.ndarray, references: dict[str, Any]
) -> dict[str, Any]:
    episodes = returns.shape[1]
    agent_mean, random_mean, oracle_mean = (
        returns.mean(axis=0),
        references["random"].mean(axis=0),
        references["oracle"].mean(axis=0),
    )
    span = oracle_mean - random_mean
    normalized = np.where(np.abs(span) > 1e-12, (agent_mean - random_mean) / np.where(span == 0, 1, span), np.nan)
    reached = np.flatnonzero(normalized >= 0.8)
    return {
        "agent": name,
        "env": env_id,
        "split": split,
        "num_tasks": num_tasks,
        "episodes_per_trial": episodes,
        "seed": seed,
        "episode_returns": summarize(returns, seed),
        "trial_return": summarize(returns.sum(axis=1, keepdims=True), seed),
        "references": {key: summarize(value, seed) for key, value in references.items()},
        "reference_trial_return": {key: float(value.sum(axis=1).mean()) for key, value in references.items()},
        "normalized_score": [None if np.isnan(v) else float(v) for v in normalized],
        "episodes_to_80pct_oracle": int(reached[0]) + 1 if len(reached) else None,
    }


def write(results: dict[str, Any], out: str | Path, compare: Sequence[dict[str, Any]] = ()) -> list[Path]:
    """Write ``out`` (JSON), and beside it a CSV and a PNG plot; return the three paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = out.with_suffix(".csv")
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "mean", "ci_low", "ci_high", "random", "oracle", "normalized_score"])
        ep, refs = results["episode_returns"], results["references"]
        for k in range(results["episodes_per_trial"]):
            agent = [ep["mean"][k], ep["ci_low"][k], ep["ci_high"][k]]
            references = [refs["random"]["mean"][k], refs["oracle"]["mean"][k]]
            writer.writerow([k + 1, *agent, *references, results["normalized_score"][k]])
    figure = out.with_suffix(".png")
    plot([results, *compare], figure)
    return [out, table, figure]


def plot(results: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Return per episode index with 95% bands: every run, and the first run's references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = results[0]
    gradient = first.get("x_axis") == "gradient steps"
    x = np.asarray(first["adaptation_steps"]) if gradient else np.arange(1, first["episodes_per_trial"] + 1)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    styles = (
        ("oracle", "tab:green", "task oracle"),
        ("random", "tab:gray", "random policy"),
        ("random_init", "tab:brown", "random initialisation, fine-tuned"),
    )
    for key, style, label in ((k, s, n) for k, s, n in styles if k in first["references"]):
        ref = first["references"][key]
        ax.plot(x, ref["mean"], "--", color=style, label=label)
        ax.fill_between(x, ref["ci_low"], ref["ci_high"], color=style, alpha=0.15)
    for run in results:
        ep = run["episode_returns"]
        ax.plot(x, ep["mean"], "o-", label=run["agent"])
        ax.fill_between(x, ep["ci_low"], ep["ci_high"], alpha=0.25)
    if gradient:
        ax.set_xlabel("gradient steps of adaptation (each on fresh episodes)")
    else:
        ax.set_xlabel("episode within the trial")
    ax.set_ylabel("mean return")
    ax.set_title(f"{first['env']}: {first['num_tasks']} {first['split']} tasks")
    ax.set_xticks(x if len(x) <= 20 else x[:: max(1, len(x) // 10)])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
