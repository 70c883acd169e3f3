"""Generalised advantage estimation (Schulman et al. 2016) as a pure function."""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminals: np.ndarray,
    last_value: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of a rollout, arrays shaped (T, N) (time, env).

    Args:
        rewards: ``rewards[t]``, received for the step taken from state t.
        values: ``values[t]``, the value estimate of state t.
        terminals: ``terminals[t]`` is 1 where step t ended its episode (no bootstrap past
            it). A truncated step is not terminal: add ``gamma * V(final state)`` to its
            reward and mark it terminal, which is what :mod:`metagym.agents.rl2` does.
        last_value: (N,) value of the state after the last step.
        gamma: Discount.
        lam: GAE's lambda.

    Returns:
        ``(advantages, returns)``, with ``returns = advantages + values``.

    Example:
        >>> adv, ret = gae(np.array([[1.0], [1.0]]), np.zeros((2, 1)), np.array([[0.0], [1.0]]),
        ...                np.zeros(1), gamma=0.5, lam=1.0)
        >>> ret[:, 0].tolist()
        [1.5, 1.0]
    """
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    next_value = np.asarray(last_value, dtype=np.float64)
    for t in range(steps - 1, -1, -1):
        keep = 1.0 - terminals[t]
        delta = rewards[t] + gamma * next_value * keep - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values
