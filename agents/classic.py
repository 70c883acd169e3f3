"""Classic adaptive baselines: UCB1 and Thompson sampling for bandits, PSRL for tabular MDPs.

These are the non-learned references of the RL² paper's tables. They play trials through the
:class:`metagym.policies.Policy` interface and need only numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metagym.policies import Policy
from metagym.tasks import Task


class _BanditStats(Policy):
    """Successes and failures per arm, reset at trial start."""

    def __init__(self, arms: int, prior_successes: float = 1.0, prior_failures: float = 1.0) -> None:
        if arms < 1:
            raise ValueError(f"arms: expected an integer >= 1, got {arms}")
        self.arms = arms
        self.prior = (float(prior_successes), float(prior_failures))
        self.successes = np.zeros(arms)
        self.failures = np.zeros(arms)
        self.rng = np.random.default_rng(0)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        self.successes[:] = self.prior[0]
        self.failures[:] = self.prior[1]
        self.rng = rng

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        self.successes[int(action)] += reward
        self.failures[int(action)] += 1.0 - reward

    def _argmax(self, scores: np.ndarray) -> int:
        best = np.flatnonzero(scores == scores.max())
        return int(best[self.rng.integers(len(best))])  # random tie-break


class UCB1(_BanditStats):
    """UCB1 as in the RL² paper: mean_i + c * sqrt(2 log t / T_i), one success and one failure
    of pseudo-statistics per arm, ties broken at random.

    Args:
        arms: Number of arms.
        c: Exploration scale (the paper tunes it per setting; 0.2 is best of
            {0.1, 0.2, 0.3, 0.5, 1} here for k = 5 at both n = 10 and n = 100).
    """

    name = "ucb1"

    def __init__(self, arms: int, c: float = 0.2) -> None:
        super().__init__(arms)
        if c < 0:
            raise ValueError(f"c: expected a number >= 0, got {c}")
        self.c = c

    def act(self, obs: Any) -> int:
        pulls = self.successes + self.failures
        bonus = self.c * np.sqrt(2.0 * np.log(pulls.sum()) / pulls)
        return self._argmax(self.successes / pulls + bonus)


class ThompsonSampling(_BanditStats):
    """Thompson sampling with the true Beta(1, 1) prior (TS in the RL² paper)."""

    name = "thompson"

    def act(self, obs: Any) -> int:
        return self._argmax(self.rng.beta(self.successes, self.failures))


class PSRL(Policy):
    """Posterior sampling for RL (Osband et al. 2013) on a tabular MDP, as in the RL² paper.

    At each episode start it samples an MDP from the posterior (Gaussian mean rewards with the
    true N(1, 1) prior and unit noise; Dirichlet(1) transitions) and follows that MDP's optimal
    finite-horizon policy for the episode.

    Args:
        states: Number of states.
        actions: Number of actions.
        horizon: Steps per episode.
    """

    name = "psrl"

    def __init__(self, states: int, actions: int, horizon: int) -> None:
        self.states, self.actions, self.horizon = states, actions, horizon
        self.rng = np.random.default_rng(0)
        self.reset_trial(Task(), self.rng)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        s, a = self.states, self.actions
        self.rng = rng
        self.visits = np.zeros((s, a))
        self.reward_sums = np.zeros((s, a))
        self.counts = np.zeros((s, a, s))
        self.q = np.zeros((self.horizon, s, a))
        self.t = 0

    def reset_episode(self, obs: Any) -> None:
        from metagym.envs.tabular_mdp import solve

        precision = 1.0 + self.visits  # prior N(1, 1), unit-variance noise
        means = self.rng.normal((1.0 + self.reward_sums) / precision, 1.0 / np.sqrt(precision))
        transitions = np.apply_along_axis(self.rng.dirichlet, -1, 1.0 + self.counts)
        self.q = solve(means, transitions, self.horizon)
        self.t = 0

    def act(self, obs: Any) -> int:
        return int(np.argmax(self.q[min(self.t, self.horizon - 1), int(obs)]))

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        s, a = int(obs), int(action)
        self.visits[s, a] += 1
        self.reward_sums[s, a] += reward
        self.counts[s, a, int(next_obs)] += 1
        self.t += 1
