"""Shared test helpers."""

from __future__ import annotations

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
