"""MetaTabularMDP: random tabular MDPs (Duan et al. 2016, RL² section 3.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import STREAM_CONTENT, Streams, box_muller
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    TaskFamily,
    Uniforms,
    draw_in_split,
    hash_splits,
    split_code,
)
from metagym.vector import FamilyVectorEnv

SEEDS = 2**31


@dataclasses.dataclass(frozen=True)
class TabularMDPTask(Task):
    """An MDP, named by the seed that draws its rewards and transitions (see :func:`mdp_of`)."""

    seed: int


def mdps_of(seeds: np.ndarray, states: int, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean rewards (n, S, A) ~ N(1, 1) and transitions (n, S, A, S) ~ Dirichlet(1) of MDPs ``seeds``.

    MDP ``seed`` is drawn from a counter-based stream keyed by (seed, S, A)
    (:class:`metagym.streams.Streams`), so a batch of fresh MDPs is built in a few numpy passes
    and is the same on every machine. A Dirichlet(1) row is a normalised row of Exp(1) draws.
    The passes go over blocks of MDPs that stay in the CPU's cache (a batch of 1,024 MDPs of
    10 states and 5 actions takes half a million draws).
    """
    n = len(seeds)
    seeds = np.asarray(seeds, dtype=np.int64)
    means = np.empty((n, states, actions))
    transitions = np.empty((n, states, actions, states))
    per_block = max(1, (1 << 15) // (states * actions * (states + 2)))
    for start in range(0, n, per_block):
        block = slice(start, min(start + per_block, n))
        rows = np.arange(block.stop - block.start)
        streams = Streams(len(rows))
        streams.seed(rows, seeds[block], (STREAM_CONTENT << 32) | (states << 16) | actions)
        means[block] = 1.0 + streams.normal(rows, states * actions).reshape(-1, states, actions)
        weights = -np.log1p(-streams.random(rows, states * actions * states)).reshape(-1, states, actions, states)
        transitions[block] = weights / weights.sum(axis=-1, keepdims=True)
    return means, transitions


@lru_cache(maxsize=4096)
def mdp_of(seed: int, states: int, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean rewards (S, A) and transitions (S, A, S) of MDP ``seed`` (see :func:`mdps_of`); read-only."""
    means, transitions = (x[0] for x in mdps_of(np.array([seed]), states, actions))
    means.flags.writeable = False
    transitions.flags.writeable = False
    return means, transitions


def solve(means: np.ndarray, transitions: np.ndarray, horizon: int) -> np.ndarray:
    """Finite-horizon value iteration: Q-values (horizon, S, A), step t = 0 first."""
    states, actions = means.shape
    q = np.zeros((horizon, states, actions))
    value = np.zeros(states)
    for t in range(horizon - 1, -1, -1):
        q[t] = means + transitions @ value
        value = q[t].max(axis=1)
    return q


class TabularMDPFamily(TaskFamily[TabularMDPTask]):
    """Random MDPs with ``states`` states and ``actions`` actions; splits by a stable seed hash.

    Args:
        states: Number of states (2 to 100).
        actions: Number of actions (2 to 100).
        episode_length: Steps per episode (the horizon).
        episodes_per_trial: Default trial length n.
    """

    task_type = TabularMDPTask
    splits = ("train", "validation", "test")

    def __init__(self, states: int = 10, actions: int = 5, episode_length: int = 10, episodes_per_trial: int = 10):
        for name, value, low, high in (
            ("states", states, 2, 100),
            ("actions", actions, 2, 100),
            ("episode_length", episode_length, 1, 10_000),
            ("episodes_per_trial", episodes_per_trial, 1, 100_000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ArgumentError(name, f"expected an integer from {low} to {high}, got {value!r}")
        self.states, self.actions = states, actions
        self.episode_length, self.trial_length = episode_length, episodes_per_trial
        self.name = f"MetaTabularMDP[S={states}, A={actions}]"

    def __repr__(self) -> str:
        return f"TabularMDPFamily(states={self.states}, actions={self.actions}, episode_length={self.episode_length})"

    def mdp(self, task: TabularMDPTask) -> tuple[np.ndarray, np.ndarray]:
        """(mean rewards (S, A), transitions (S, A, S)) of ``task``."""
        return mdp_of(task.seed, self.states, self.actions)

    @property
    def params(self) -> tuple[Param, ...]:
        doc = "seed of the MDP: mean rewards ~ N(1, 1) per (s, a), transitions ~ Dirichlet(1) per (s, a)"
        return (Param("seed", "int", doc, low=0, high=SEEDS - 1, default=self.default_task.seed),)

    @property
    def default_task(self) -> TabularMDPTask:
        return TabularMDPTask(next(s for s in range(100) if self._split(s) == "train"))

    @property
    def horizon(self) -> int:
        return self.episode_length

    @property
    def episodes_per_trial(self) -> int:
        return self.trial_length

    def oracle_policy(self) -> Policy:
        return MDPOracle(self)

    @staticmethod
    def _split(seed: int) -> str:
        return SPLIT_CODES[int(hash_splits("tabular", np.array([seed]))[0])]

    def split_of(self, task: TabularMDPTask) -> str:
        self.validate(task)
        return self._split(task.seed)

    def draw_from(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        def seeds(u: np.ndarray) -> np.ndarray:
            return (u[:, 0] * SEEDS).astype(np.int64)

        return {"seed": draw_in_split(uniforms, 1, seeds, lambda s: hash_splits("tabular", s), split_code(split), n)}

    def _check(self, task: TabularMDPTask, argument: str) -> None:
        if isinstance(task.seed, bool) or not isinstance(task.seed, int) or not 0 <= task.seed < SEEDS:
            raise ArgumentError(f"{argument}.seed", f"expected an integer 0 <= seed < {SEEDS}, got {task.seed!r}")


class MDPOracle(Policy):
    """Task oracle: the optimal finite-horizon policy of the true MDP (value iteration)."""

    name = "oracle"

    def __init__(self, family: TabularMDPFamily) -> None:
        self.family = family
        self.q = np.zeros((family.horizon, family.states, family.actions))
        self.t = 0

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, TabularMDPTask)
        self.q = solve(*self.family.mdp(task), self.family.horizon)

    def reset_episode(self, obs: Any) -> None:
        self.t = 0

    def act(self, obs: Any) -> int:
        return int(np.argmax(self.q[min(self.t, len(self.q) - 1), int(obs)]))

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        self.t += 1


class TabularMDPDynamics(BatchedDynamics[TabularMDPTask]):
    """N MDPs; each env draws its reward noise, then its next state, from its own RNG."""

    def __init__(self, family: TabularMDPFamily, num_envs: int) -> None:
        super().__init__(family, num_envs)
        self.observation_space = spaces.Discrete(family.states)
        self.action_space = spaces.Discrete(family.actions)
        n, s, a = self.num_envs, family.states, family.actions
        self.means = np.zeros((n, s, a))
        self.cumulative = np.ones((n, s, a, s))  # cumulative transition probabilities
        self.state = np.zeros(n, dtype=np.int64)
        self.last_reward = np.zeros(n)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        family = self.family
        assert isinstance(family, TabularMDPFamily)
        means, transitions = mdps_of(arrays["seed"], family.states, family.actions)
        for k in range(1, family.states):  # np.cumsum's sums, in S passes (it is slow on short rows)
            transitions[..., k] += transitions[..., k - 1]
        self.means[idx], self.cumulative[idx] = means, transitions

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        self.state[idx] = 0

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        idx, rows = self.active_rows(active)
        # A normal for the reward, then a uniform for the next state: the draws of
        # rngs.normal(idx) then rngs.random(idx), in one call.
        u = rngs.random(rows, 3)
        noise = box_muller(u[:, 0], u[:, 1])
        states, acts = self.means.shape[1:]
        pair = (idx * states + self.state[rows]) * acts + actions[rows]  # (env, s, a), flat
        reward = np.zeros(self.num_envs)
        reward[rows] = self.means.reshape(-1)[pair] + noise
        cumulative = self.cumulative.reshape(-1, states)[pair]  # (len(idx), S)
        nxt = (cumulative < u[:, 2:]).sum(axis=1)
        self.state[rows] = np.minimum(nxt, states - 1)
        self.last_reward[rows] = reward[rows]
        return reward, np.zeros(self.num_envs, dtype=bool)

    def observe(self) -> np.ndarray:
        return self.state.copy()

    def render_frame(self, i: int, size: int = 320) -> np.ndarray:
        import pygame  # lazy

        s = self.means.shape[1]
        surface = pygame.Surface((size, size))
        surface.fill((245, 245, 240))
        centre, radius = size / 2, size / 2 - 30
        angles = 2 * np.pi * np.arange(s) / s - np.pi / 2
        points = [(centre + radius * np.cos(t), centre + radius * np.sin(t)) for t in angles]
        best = self.means[i].max(axis=1)  # the viewer sees each state's best mean reward
        for k, (x, y) in enumerate(points):
            shade = int(np.clip(127 + 60 * (best[k] - 1.0), 0, 255))
            pygame.draw.circle(surface, (255 - shade, shade, 90), (int(x), int(y)), 16)
            if k == self.state[i]:
                pygame.draw.circle(surface, (220, 50, 50), (int(x), int(y)), 20, width=4)
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


class MetaTabularMDPEnv(FamilyEnv[TabularMDPTask]):
    """## Description

    A random tabular MDP, as in Duan et al. 2016 (RL², section 3.2): the hidden task is the
    MDP's mean rewards and transition probabilities. A trial is n episodes on one MDP.

    ## Action Space

    ``Discrete(A)`` (default 5).

    ## Observation Space

    ``Discrete(S)`` (default 10): the current state.

    ## Rewards

    Gaussian with unit variance around the (state, action)'s mean reward.

    ## Starting State

    State 0 in every episode.

    ## Episode End

    Truncated after ``episode_length`` steps (default 10); never terminated.

    ## Task Distribution

    Mean rewards ~ N(1, 1) and transitions ~ Dirichlet(1, ..., 1) per (state, action), drawn
    from the task's seed.

    ## Splits

    ``train`` / ``validation`` / ``test`` by a stable hash of the seed (70/10/20%).

    ## Arguments

    ``states``, ``actions``, ``episode_length``, ``episodes_per_trial`` (default trial length n,
    10), ``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaTabularMDP-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['seed']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    def __init__(
        self,
        states: int = 10,
        actions: int = 5,
        episode_length: int = 10,
        episodes_per_trial: int = 10,
        render_mode: str | None = None,
    ) -> None:
        family = TabularMDPFamily(states, actions, episode_length, episodes_per_trial)
        super().__init__(render_mode, TabularMDPDynamics(family, 1))


class MetaTabularMDPVectorEnv(FamilyVectorEnv[TabularMDPTask]):
    """``num_envs`` tabular MDPs in one call; see :class:`MetaTabularMDPEnv`."""

    def __init__(
        self,
        num_envs: int,
        states: int = 10,
        actions: int = 5,
        episode_length: int = 10,
        episodes_per_trial: int = 10,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ) -> None:
        family = TabularMDPFamily(states, actions, episode_length, episodes_per_trial)
        super().__init__(num_envs, render_mode, autoreset_mode, max_episode_steps, TabularMDPDynamics(family, num_envs))
