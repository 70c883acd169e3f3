"""Two prototypes for issue 11 (fresh tasks at numpy speed), kept so that their numbers can be
re-measured; neither is metagym code.

``predrawn``: what the batched envs would gain if each sub-env's next tasks were drawn ahead in
blocks. ``FamilyVectorEnv._draw`` is replaced by a look-up into a per-env buffer of 16 tasks,
refilled for every sub-env by one ``draw_arrays`` call when any sub-env runs out. The tasks
come from made-up streams, so only the speed means anything.

``numba``: a fused kernel per step (``pip install numba`` first) for a batched bandit trial and
a tabular-MDP trial. Each does the trial step's work in one compiled loop over 1,024 envs:
SplitMix64 draws from each env's key and counter, reward, next state, trial bookkeeping, a
fresh bandit task at trial end, and the trial observation written in place. The Gymnasium API
around it is left out.

Both are measured as ratios to Gymnasium's CartPole-v1 vector env in the same process:

    python scripts/proto_fast_paths.py predrawn MetaCartPole-v0 MetaGrid-v0 MetaBandit-Trial-v0
    python scripts/proto_fast_paths.py numba
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

N = 1024
BLOCK = 16


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


def predraw(inner: Any) -> None:
    """Replace ``inner._draw`` by look-ups into per-env blocks of pre-drawn tasks."""
    from metagym.streams import Streams

    refills = [0]

    def refill() -> None:
        streams = Streams(N * BLOCK)
        streams.seed(np.arange(N * BLOCK), np.arange(N * BLOCK) + 10_000 * refills[0], 2)
        refills[0] += 1
        arrays = inner.family.draw_arrays(streams, np.arange(N * BLOCK), "train")
        inner._buffer = {key: np.asarray(c).reshape(N, BLOCK, *np.shape(c)[1:]) for key, c in arrays.items()}
        inner._next = np.zeros(N, dtype=np.int64)

    def draw(idx: np.ndarray) -> None:
        if (inner._next[idx] >= BLOCK).any():
            refill()
        arrays = {key: column[idx, inner._next[idx]] for key, column in inner._buffer.items()}
        inner._next[idx] += 1
        for key, column in arrays.items():
            inner._task_rows[key][idx] = column
        for i in idx.tolist():
            inner._task_objs[i] = None
        inner._dyn.set_task_arrays(idx, arrays)

    refill()
    inner._draw = draw


def predrawn(env_ids: list[str]) -> None:
    import metagym
    from metagym.registration import family_of
    from metagym.vector import FamilyVectorEnv

    for env_id in ("MetaGrid-v0", "MetaMaze-v0"):  # level banks, built before timing as bench_envs does
        family_of(gym.make(env_id, disable_env_checker=True)).bank.build("train")
    peer = cartpole()
    print(f"Gymnasium CartPole-v1 vector env, N={N}: {peer:,.0f} steps/s (metagym {metagym.__version__})\n")
    print("| id | fresh tasks now | pre-drawn in blocks of 16 |\n|---|---:|---:|")
    for env_id in env_ids:
        rates = []
        for patched in (False, True):
            envs = gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")
            inner = envs
            while not isinstance(inner, FamilyVectorEnv):
                inner = inner.env
            if patched:
                predraw(inner)
            rates.append(steps_per_second(stepper(envs)) / peer)
        print(f"| {env_id} | {rates[0]:.2f} | {rates[1]:.2f} |")


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    pre = sub.add_parser("predrawn", help="batched envs with tasks pre-drawn in blocks")
    pre.add_argument("env_ids", nargs="+")
    sub.add_parser("numba", help="fused numba kernels for bandit and tabular trial steps")
    args = parser.parse_args()
    predrawn(args.env_ids) if args.what == "predrawn" else numba_kernels()


if __name__ == "__main__":
    main()
