"""Frames of a trial, for a GIF, an MP4 or a window: what ``metagym render`` and ``metagym demo`` show.

A memory agent's trial is played on the family's trial env, each frame captioned with the episode,
the returns so far and the hidden task (a belief agent's decoded belief beside it); a gradient
agent's adaptation is one greedy episode before and after each adaptation step.

    frames = trial_frames(agent, task, seed=0)          # e.g. metagym.agents.runs.load_run(run_dir)
    imageio.v2.mimsave("trial.gif", frames, duration=125)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

import metagym
from metagym.policies import Actor, BeliefActor, GradientActor
from metagym.registration import env_kwargs_of


def task_label(task: Any) -> str:
    """A task's non-default fields, compactly (``goal=(4, 2)``), for captions."""
    fields = dataclasses.fields(task)
    shown = [f for f in fields if f.name != "level" and getattr(task, f.name) not in (0, "", None)]
    parts = []
    for f in shown or fields:
        value = getattr(task, f.name)
        if isinstance(value, float):
            value = round(value, 3)
        elif isinstance(value, tuple):
            value = tuple(round(v, 3) if isinstance(v, float) else v for v in value)
        parts.append(f"{f.name}={value}")
    return ", ".join(parts)


def trial_frames(
    agent: Actor, task: Any, seed: int, actions: list[Any] | None = None, title: str | None = None
) -> list[Any]:
    """One trial of ``agent`` on ``task``, as captioned frames (the hidden task shown); with
    ``actions``, the trial those actions play (a scored trial replayed)."""
    import torch

    from metagym.render import caption

    torch.manual_seed(seed)
    trial_env = metagym.trial_id(agent.config.env_id)
    config = agent.config
    env = gym.make(
        trial_env, render_mode="rgb_array", episodes_per_trial=config.episodes_per_trial, **env_kwargs_of(config)
    )
    k = env.get_wrapper_attr("episodes_per_trial")
    obs, _ = env.reset(seed=seed, options={"task": task})
    state, start, episode, running, total = None, np.ones(1, dtype=bool), 0, 0.0, 0.0
    frames: list[Any] = []
    terminated = False
    believer = agent if isinstance(agent, BeliefActor) else None  # an explicit belief to show (VariBAD)
    while not terminated:
        if actions is None or believer is not None:  # a replay still runs the agent to follow its belief
            action, state = agent.predict(obs[None], state, start)
        step = action[0] if actions is None else actions[len(frames)]
        lines = [
            f"{title or agent.config.env_id}   episode {episode + 1}/{k}",
            f"return {running:+.2f}   trial so far {total:+.2f}",
            f"hidden task: {task_label(task)}",
        ]
        frame = np.asarray(env.render())
        if believer is not None:
            frame = belief_beside(believer, state, obs, frame)
        frames.append(caption(frame, lines, size=15))
        start = np.zeros(1, dtype=bool)
        obs, reward, terminated, _, info = env.step(step)
        running, total = running + float(reward), total + float(reward)
        if "inner_return" in info:
            episode, running = episode + 1, 0.0
    return frames


def belief_beside(agent: BeliefActor, state: Any, obs: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """``frame`` with the agent's decoded belief beside it (after this step's observation): the
    probability of the goal (or of reward) per cell on a grid, the reward field (lowest to highest) in the plane;
    the agent's place circled."""
    from metagym.render import beside, heat_panel

    values = agent.reward_map(state)
    if values is None:
        return frame
    cells = values.size <= 100  # a grid's cells carry their numbers; a field's points are too small
    title = "belief: p(reward)" if cells else "belief: decoded reward"
    if agent.belief_kind == "goal":  # a distribution over the goal's cell
        title = "belief: p(goal here)"
    return beside(frame, heat_panel(values, frame.shape[0], agent.map_cell(obs), title, labels=cells))


def adaptation_frames(agent: GradientActor, task: Any, seed: int, steps: int = 3) -> list[Any]:
    """One greedy episode on ``task`` before and after each of ``steps`` adaptation steps, as frames."""
    from metagym.render import caption

    env = gym.make(agent.config.env_id, render_mode="rgb_array", **env_kwargs_of(agent.config))
    frames = []
    for k, params in enumerate(agent.adapted_params(task, steps, seed)):
        obs, _ = env.reset(seed=seed + k, options={"task": task})
        done, running = False, 0.0
        while not done:
            lines = [
                f"{agent.config.env_id}   after {k} gradient step(s)",
                f"return {running:+.2f}",
                f"hidden task: {task_label(task)}",
            ]
            frames.append(caption(np.asarray(env.render()), lines, size=15))
            action, _ = agent.predict(obs[None], params, None, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            running += float(reward)
            done = terminated or truncated
    return frames
