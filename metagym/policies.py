"""Reference policies and the loop that measures them over trials.

This module depends on no other of metagym's (a task is whatever the env's family takes: a
:class:`metagym.tasks.Task`), so ``metagym.tasks`` can name :class:`Policy` without an import
circle. A :class:`Policy` plays whole trials: :meth:`Policy.reset_trial` is called at trial start
(a task oracle reads the task there; adaptive baselines clear their statistics), then
:meth:`Policy.act` and :meth:`Policy.update` at every step. Every family offers
:class:`RandomPolicy` and its own task oracle (``family.oracle_policy()``); classic adaptive
baselines (UCB1, Thompson sampling, PSRL) live in ``metagym.agents.classic``.

Example:
    >>> import gymnasium as gym, numpy as np, metagym
    >>> env = gym.make("MetaGrid-GridNavi-v0")
    >>> family = env.unwrapped.family
    >>> tasks = family.sample(np.random.default_rng(0), 3, split="train")
    >>> returns = run_trials(env, family.oracle_policy(), tasks, episodes=2, seed=0)
    >>> returns.shape
    (3, 2)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from metagym.errors import ArgumentError


class Policy(ABC):
    """A policy that plays whole trials, possibly adapting from what it sees."""

    #: Name used in results tables and plots.
    name = "policy"

    def reset_trial(self, task: Any, rng: np.random.Generator) -> None:  # noqa: B027 (optional hook)
        """Start a trial on ``task``. Only a task oracle may read ``task``."""

    def reset_episode(self, obs: Any) -> None:  # noqa: B027 (optional hook)
        """Start an inner episode with first observation ``obs``."""

    @abstractmethod
    def act(self, obs: Any) -> Any:
        """The action for observation ``obs``."""

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:  # noqa: B027
        """Learn from one step (``done``: it ended the inner episode)."""


class RandomPolicy(Policy):
    """Uniformly random actions from the action space, seeded at each trial start."""

    name = "random"

    def __init__(self, action_space: gym.Space[Any]) -> None:
        self.action_space = action_space

    def reset_trial(self, task: Any, rng: np.random.Generator) -> None:
        self.action_space.seed(int(rng.integers(2**31)))

    def act(self, obs: Any) -> Any:
        return self.action_space.sample()


def run_trials(
    env: gym.Env[Any, Any],
    policy: Policy,
    tasks: Sequence[Any],
    episodes: int,
    seed: int = 0,
    start: int = 0,
    successes: np.ndarray | None = None,
) -> np.ndarray:
    """Play one trial of ``episodes`` inner episodes per task; return each episode's return.

    Trial ``t`` resets the env with ``seed + start + t`` and the policy with a generator from
    ``[seed, start + t]``, so results depend only on ``seed`` and the trial's index: scoring
    tasks in blocks (``start`` the index of a block's first task) gives the numbers of scoring
    them all at once.

    Args:
        env: A family env (not a trial env).
        policy: The policy to measure.
        tasks: One task per trial.
        episodes: Inner episodes per trial, at least 1.
        seed: Root seed.
        start: Index of the first of ``tasks`` among all the tasks scored with ``seed``.
        successes: Optional (len(tasks), episodes) array, filled with 1 where an episode
            succeeded at some step and 0 where not, for envs that report ``info["success"]``.

    Returns:
        Array (len(tasks), episodes) of undiscounted episode returns.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ArgumentError("episodes", f"expected an integer >= 1, got {episodes!r}")
    returns = np.zeros((len(tasks), episodes))
    for t, task in enumerate(tasks):
        policy.reset_trial(task, np.random.default_rng([seed, start + t]))
        for e in range(episodes):
            if e == 0:
                obs, _ = env.reset(seed=seed + start + t, options={"task": task})
            else:
                obs, _ = env.reset(options={"keep_task": True})
            policy.reset_episode(obs)
            done = False
            while not done:
                action = policy.act(obs)
                next_obs, reward, terminated, truncated, info = env.step(action)
                done = bool(terminated or truncated)
                if successes is not None and "success" in info:
                    successes[t, e] = np.fmax(successes[t, e], float(info["success"]))  # fmax: NaN (unset) loses
                policy.update(obs, action, float(reward), next_obs, done)
                returns[t, e] += float(reward)
                obs = next_obs
    return returns


@runtime_checkable
class Actor(Protocol):
    """A trained agent's acting side, as evaluation and rendering use it (SB3's ``predict``).

    ``config`` is its run's config (``env_id``, ``env_kwargs``, ``episodes_per_trial``, ...);
    ``predict`` maps a batch of observations, the recurrent state (None at the start) and which
    rows start an episode to actions and the next state. A memory agent (RL², the transformer)
    is nothing more; the protocols below add what other kinds offer.
    """

    config: Any

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


@runtime_checkable
class GradientActor(Actor, Protocol):
    """An agent that adapts by gradient steps (MAML, Reptile): scored after each step.

    ``adaptation_scores`` gives the mean episode return per task after 0..``steps`` steps (tasks,
    steps + 1) and beside it the fraction of successful episodes (None where the family reports
    no success); ``adapted_params`` the parameters after each step on one task (``predict`` takes
    them as its state); ``reinitialised`` the same agent from a fresh initialisation (the
    "fine-tuned from scratch" control); ``experience_per_step`` the episodes each step plays.
    """

    @property
    def experience_per_step(self) -> int: ...

    def adaptation_scores(
        self, tasks: list[Any], steps: int, seed: int, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]: ...

    def adapted_params(self, task: Any, steps: int, seed: int) -> list[Any]: ...

    def reinitialised(self, seed: int) -> GradientActor: ...


@runtime_checkable
class BeliefActor(Actor, Protocol):
    """An agent with an explicit belief over the task (VariBAD), which evaluation measures and
    rendering draws: its entropy per trial, and a map of it over the family's cells or plane.

    ``belief_kind`` is ``"goal"`` for a distribution over the goal's cell (``goal_belief``, per
    row; compared with the exact posterior where the family has one), else ``"latent"`` (and
    ``goal_belief`` None); ``reward_map`` decodes row 0's belief over the cells or the plane.
    """

    @property
    def belief_kind(self) -> str: ...

    def belief_entropy(self, state: Any) -> np.ndarray: ...

    def goal_belief(self, state: Any) -> np.ndarray | None: ...

    def reward_map(self, state: Any) -> np.ndarray | None: ...

    def map_cell(self, obs: np.ndarray) -> Any: ...
