"""Classic adaptive baselines: UCB1, Thompson sampling and the Gittins index for bandits, PSRL
for tabular MDPs.

These are the non-learned references of the RL² paper's tables. They play trials through the
:class:`metagym.policies.Policy` interface and need only numpy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.policies import Policy
from metagym.tasks import Task


class _BanditStats(Policy):
    """Successes and failures per arm, reset at trial start."""

    def __init__(self, arms: int, prior_successes: float = 1.0, prior_failures: float = 1.0) -> None:
        if arms < 1:
            raise ArgumentError("arms", f"expected an integer >= 1, got {arms}")
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

    @classmethod
    def for_family(cls, family: Any, episodes: int) -> Policy | None:
        """This baseline for trials of ``episodes`` pulls of ``family``; None unless it is a
        Bernoulli bandit family (the registry's entry point for the bandit baselines)."""
        from metagym.envs.bandit import BanditFamily

        return cls(family.arms) if isinstance(family, BanditFamily) else None

    def _argmax(self, scores: np.ndarray) -> int:
        best = np.flatnonzero(scores == scores.max())
        return int(best[self.rng.integers(len(best))])  # random tie-break


class UCB1(_BanditStats):
    """UCB1 as in the RL² paper: mean_i + c * sqrt(2 log t / T_i), where t counts every pull
    including the pseudo-statistics (one success and one failure per arm, so T_i >= 2 and no arm
    needs a forced first pull), ties broken at random.

    Args:
        arms: Number of arms.
        c: Exploration scale. The paper tunes it per setting; 0.2 was chosen on the
            ``validation`` split of MetaBandit-v0 (k = 5, n = 10 and n = 100, 1,000 tasks each)
            from {0.05, 0.1, 0.2, 0.3, 0.5, 1} by ``scripts/tune_ucb1.py``, never on ``test``.
    """

    name = "ucb1"
    selected_on = "validation: c = 0.2 by scripts/tune_ucb1.py"

    def __init__(self, arms: int, c: float = 0.2) -> None:
        super().__init__(arms)
        if c < 0:
            raise ArgumentError("c", f"expected a number >= 0, got {c}")
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


@lru_cache(maxsize=16)
def gittins_table(discount: float, depth: int, grid: int = 1000) -> np.ndarray:
    """Gittins indices of Beta(a, b) Bernoulli arms, ``table[a - 1, b - 1]``, for a + b <= depth + 2.

    Calibration against a standard arm paying ``lam`` per step: for each ``lam`` on a grid of
    ``grid`` steps, backward induction over the posterior tree gives the states in which
    pulling beats retiring; a state's index is the largest such ``lam``. Below the table's
    last diagonal (``depth`` more pulls) an arm is valued as retiring or pulling forever at
    its mean.
    """
    if not 0 < discount < 1:
        raise ArgumentError("discount", f"expected a number in (0, 1), got {discount}")
    size = depth + 2  # a and b run over 1..size
    a, b = np.meshgrid(np.arange(1, size + 1), np.arange(1, size + 1), indexing="ij")
    mean = a / (a + b)
    index = np.full((size, size), np.nan)
    diagonals = [np.flatnonzero((a + b).ravel() == total) for total in range(size + 1, 1, -1)]
    for lam in np.linspace(0.0, 1.0, grid + 1)[1:]:
        retire = lam / (1 - discount)
        value = np.maximum(retire, mean / (1 - discount))
        for cells in diagonals[1:]:  # the deepest diagonal keeps the truncation value
            r, c = np.unravel_index(cells, value.shape)
            p = mean[r, c]
            pull = p * (1 + discount * value[r + 1, c]) + (1 - p) * discount * value[r, c + 1]
            value[r, c] = np.maximum(retire, pull)
            better = pull > retire
            index[r[better], c[better]] = lam
    index[(a + b <= size + 1) & np.isnan(index)] = 0.0
    return index


class GittinsIndex(_BanditStats):
    """Pull the arm with the highest Gittins index of its Beta posterior (Beta(1, 1) prior).

    Args:
        arms: Number of arms.
        pulls: Trial length n (the table covers every posterior reachable in n pulls).
        discount: Discount of the index; default 1 - 1/n, a common finite-horizon proxy.
    """

    name = "gittins"

    def __init__(self, arms: int, pulls: int, discount: float | None = None) -> None:
        super().__init__(arms)
        if pulls < 1:
            raise ArgumentError("pulls", f"expected an integer >= 1, got {pulls}")
        self.discount = 1.0 - 1.0 / max(pulls, 2) if discount is None else discount
        self.table = gittins_table(round(self.discount, 6), pulls)

    @classmethod
    def for_family(cls, family: Any, episodes: int) -> Policy | None:
        from metagym.envs.bandit import BanditFamily

        return cls(family.arms, episodes) if isinstance(family, BanditFamily) else None

    def act(self, obs: Any) -> int:
        a = self.successes.astype(int) - 1
        b = self.failures.astype(int) - 1
        return self._argmax(self.table[a, b])


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

    @classmethod
    def for_family(cls, family: Any, episodes: int) -> Policy | None:
        """PSRL for ``family``'s MDPs; None unless it is a tabular MDP family."""
        from metagym.envs.tabular_mdp import TabularMDPFamily

        if not isinstance(family, TabularMDPFamily):
            return None
        return cls(family.states, family.actions, family.horizon)

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


def baseline_for(name: str, family: Any, episodes: int) -> Policy | None:
    """The registered baseline ``name`` (:mod:`metagym.agents.registry`, kind ``baseline``)
    built for trials of ``episodes`` episodes of ``family``; None where it does not apply (the
    bandit baselines need Bernoulli bandits, PSRL a tabular MDP family).

    Examples:
        >>> import gymnasium as gym, metagym
        >>> from metagym.registration import family_of
        >>> baseline_for("gittins", family_of(gym.make("MetaBandit-v0")), 10).name
        'gittins'
        >>> baseline_for("psrl", family_of(gym.make("MetaBandit-v0")), 10) is None
        True
    """
    from metagym.agents.registry import agent_names, agent_spec

    if name not in agent_names("baseline"):
        raise ArgumentError("name", f"unknown baseline {name!r}; allowed: {', '.join(agent_names('baseline'))}")
    policy = agent_spec(name).load()(family, episodes)
    if policy is not None and not isinstance(policy, Policy):
        raise ArgumentTypeError("name", f"baseline {name}'s entry point gave {policy!r}, not a metagym.policies.Policy")
    return policy
