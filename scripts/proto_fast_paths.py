"""A prototype of fresh tasks at compiled speed, kept so that the numbers the design
notes quote ("Where numpy stops, and why there are no compiled kernels") can be re-measured;
it is not metagym code, and numba is not a dependency of metagym.

A fused numba kernel per step (``pip install numba`` first) for a batched bandit trial and a
tabular-MDP trial. Each does the trial step's work in one compiled loop over 1,024 envs:
SplitMix64 draws from each env's key and counter, reward, next state, trial bookkeeping, a
fresh bandit task at trial end, and the trial observation written in place. The Gymnasium API
around it is left out. Measured as a ratio to Gymnasium's CartPole-v1 vector env in the same
process:

    python scripts/proto_fast_paths.py

(An earlier ``predrawn`` prototype, tasks drawn ahead in blocks, became metagym's own: each
sub-env's next task is drawn ahead, ``FamilyVectorEnv._draw``.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

N = 1024


def steps_per_second(step: Callable[[], None], seconds: float = 1.0) -> float:
    step()  # warm up (and compile)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            step()
        calls += 50
    return N * calls / (time.perf_counter() - start)


def stepper(envs: Any) -> Callable[[], None]:
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = np.stack([envs.action_space.sample() for _ in range(64)])
    count = [0]

    def step() -> None:
        count[0] += 1
        envs.step(actions[count[0] % 64])

    return step


def cartpole() -> float:
    return steps_per_second(stepper(gym.make_vec("CartPole-v1", num_envs=N, vectorization_mode="vector_entry_point")))


def numba_kernels() -> None:
    import numba as nb

    gamma, m1, m2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)

    @nb.njit(inline="always")
    def uniform(key: Any, counter: Any) -> float:
        z = key + (counter + np.uint64(1)) * gamma
        z = (z ^ (z >> np.uint64(30))) * m1
        z = (z ^ (z >> np.uint64(27))) * m2
        z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)

    @nb.njit
    def bandit(actions, probs, keys, counters, task_keys, task_counters, episode, k_episodes, obs, reward):  # type: ignore[no-untyped-def]
        n, arms = probs.shape
        for i in range(n):
            a = actions[i]
            r = 1.0 if uniform(keys[i], counters[i]) < probs[i, a] else 0.0
            counters[i] += np.uint64(1)
            episode[i] += 1
            over = episode[i] >= k_episodes
            if over:  # a fresh task: the arms' probabilities from the task stream
                for j in range(arms):
                    probs[i, j] = uniform(task_keys[i], task_counters[i])
                    task_counters[i] += np.uint64(1)
                episode[i] = 0
            for j in range(arms):
                obs[i, j] = 0.0
            if not over:
                obs[i, a] = 1.0
            obs[i, arms] = 0.0 if over else r
            obs[i, arms + 1] = 1.0
            obs[i, arms + 2] = episode[i] / k_episodes
            reward[i] = r

    @nb.njit
    def tabular(actions, state, means, cumulative, keys, counters, steps, episode, horizon, k_episodes, obs, reward):  # type: ignore[no-untyped-def]
        n, states, acts = means.shape
        for i in range(n):
            s, a = state[i], actions[i]
            u1, u2 = uniform(keys[i], counters[i]), uniform(keys[i], counters[i] + np.uint64(1))
            u3 = uniform(keys[i], counters[i] + np.uint64(2))
            counters[i] += np.uint64(3)
            r = means[i, s, a] + np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
            nxt = 0
            while nxt < states - 1 and cumulative[i, s, a, nxt] < u3:
                nxt += 1
            steps[i] += 1
            done = steps[i] >= horizon
            if done:
                steps[i], nxt = 0, 0
                episode[i] = (episode[i] + 1) % k_episodes
            state[i] = nxt
            for j in range(states + acts + 3):
                obs[i, j] = 0.0
            obs[i, nxt], obs[i, states + a], obs[i, states + acts] = 1.0, 1.0, r
            obs[i, states + acts + 1] = 1.0 if done else 0.0
            obs[i, states + acts + 2] = episode[i] / k_episodes
            reward[i] = r

    rng = np.random.default_rng(0)
    arms, states, acts = 5, 10, 5
    actions = rng.integers(0, arms, (64, N))
    keys = rng.integers(0, 2**63, N).astype(np.uint64)
    probs, reward = rng.random((N, arms)), np.zeros(N)
    b_state = [np.zeros(N, np.uint64), keys ^ np.uint64(12345), np.zeros(N, np.uint64), np.zeros(N, np.int64)]
    b_obs = np.zeros((N, arms + 3))
    means = rng.normal(1.0, 1.0, (N, states, acts))
    cumulative = np.cumsum(rng.dirichlet(np.ones(states), (N, states, acts)), axis=-1)
    t_state = [np.zeros(N, np.int64), np.zeros(N, np.uint64), np.zeros(N, np.int64), np.zeros(N, np.int64)]
    t_obs = np.zeros((N, states + acts + 3))
    count = [0]

    def bandit_step() -> None:
        count[0] += 1
        counters, task_keys, task_counters, episode = b_state
        bandit(actions[count[0] % 64], probs, keys, counters, task_keys, task_counters, episode, 10, b_obs, reward)

    def tabular_step() -> None:
        count[0] += 1
        state, counters, steps, episode = t_state
        tabular(actions[count[0] % 64], state, means, cumulative, keys, counters, steps, episode, 10, 10, t_obs, reward)

    for _ in range(2):
        peer = cartpole()
        b, t = steps_per_second(bandit_step) / peer, steps_per_second(tabular_step) / peer
        print(f"CartPole vector {peer:,.0f} steps/s; fused bandit trial step {b:.1f}x, tabular trial step {t:.1f}x")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    numba_kernels()


if __name__ == "__main__":
    main()
