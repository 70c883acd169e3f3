"""Exact Bayes-optimal play of Bernoulli bandit trials, by dynamic programming over posteriors.

The trial is short and finite (n pulls), rewards are 0/1 and the prior is known, so the
Bayes-optimal policy maximises the expected number of successes over the remaining pulls:

- ``uniform`` (independent p_i ~ U[0, 1]): the posterior is one Beta(1 + s_i, 1 + f_i) per arm;
  arms are exchangeable, so a state is the sorted multiset of (s_i, f_i). Tractable for small
  n and k (n = 10, k = 5: about 10^4 states); :func:`tractable` says when.
- ``dependent`` (p_2 = 1 - p_1, p_1 ~ U[0, 1]) and the two-task presets (p_1 from {lo, hi}):
  every pull is evidence about p_1 alone ("p_1 succeeded" = arm 1 paid or arm 2 did not), so a
  state is two counts (a, b) and any n is tractable.
"""

from __future__ import annotations

from functools import cache
from math import comb
from typing import Any

import numpy as np

from metagym.policies import Policy
from metagym.tasks import Task

#: Most states the uniform-prior table may need (an upper bound; see :func:`tractable`).
MAX_STATES = 2_000_000

Counts = tuple[tuple[int, int], ...]


def tractable(prior: str, arms: int, pulls: int) -> bool:
    """Whether exact Bayes-optimal play is cheap for this bandit."""
    if prior != "uniform":
        return True
    return comb(pulls + 2 * arms, 2 * arms) <= MAX_STATES


@cache
def _uniform_value(counts: Counts, remaining: int) -> float:
    """Expected successes in ``remaining`` pulls from posterior ``counts`` (sorted (s, f) pairs)."""
    if remaining == 0:
        return 0.0
    return max(_uniform_q(counts, arm, remaining) for arm in range(len(counts)))


def _uniform_q(counts: Counts, arm: int, remaining: int) -> float:
    s, f = counts[arm]
    p = (s + 1) / (s + f + 2)
    win = _uniform_value(_bump(counts, arm, 1, 0), remaining - 1)
    lose = _uniform_value(_bump(counts, arm, 0, 1), remaining - 1)
    return p * (1.0 + win) + (1.0 - p) * lose


def _bump(counts: Counts, arm: int, ds: int, df: int) -> Counts:
    pairs = list(counts)
    pairs[arm] = (pairs[arm][0] + ds, pairs[arm][1] + df)
    return tuple(sorted(pairs))


def uniform_value(arms: int, pulls: int) -> float:
    """The Bayes-optimal expected trial return of ``arms`` U[0, 1] arms over ``pulls`` pulls."""
    return _uniform_value(((0, 0),) * arms, pulls)


@cache
def _pair_value(pair: tuple[float, float] | None, a: int, b: int, remaining: int) -> float:
    """Expected successes in ``remaining`` pulls after ``a`` pieces of evidence for p_1 high and
    ``b`` for p_1 low (``pair`` None: p_1 ~ U[0, 1]; else p_1 is lo or hi with prior 1/2)."""
    if remaining == 0:
        return 0.0
    return max(_pair_q(pair, a, b, arm, remaining) for arm in (0, 1))


def _p1_mean(pair: tuple[float, float] | None, a: int, b: int) -> float:
    """Posterior mean of p_1 after (a, b)."""
    if pair is None:
        return (a + 1) / (a + b + 2)
    lo, hi = pair
    high = hi**a * lo**b
    low = lo**a * hi**b
    return (high * hi + low * lo) / (high + low)


def _pair_q(pair: tuple[float, float] | None, a: int, b: int, arm: int, remaining: int) -> float:
    m = _p1_mean(pair, a, b)
    up = _pair_value(pair, a + 1, b, remaining - 1)  # the pull was evidence for p_1 high
    down = _pair_value(pair, a, b + 1, remaining - 1)
    if arm == 0:  # arm 1 pays with p_1: a success is evidence for p_1 high
        return m * (1.0 + up) + (1.0 - m) * down
    return (1.0 - m) * (1.0 + down) + m * up  # arm 2 pays with 1 - p_1


class BanditBayesOptimal(Policy):
    """Pulls the arm with the highest Bayes-optimal value for the remaining pulls (ties at random).

    Args:
        arms: Number of arms k.
        pulls: Pulls per trial n.
        pair: None for independent U[0, 1] arms (``dependent=False``) or p_1 ~ U[0, 1]
            (``dependent=True``); (lo, hi) for the two-task presets.
        dependent: Whether p_2 = 1 - p_1.
    """

    name = "bayes_optimal"

    def __init__(self, arms: int, pulls: int, pair: tuple[float, float] | None = None, dependent: bool = False):
        self.arms, self.pulls, self.pair, self.dependent = arms, pulls, pair, dependent or pair is not None
        self.successes = np.zeros(arms, dtype=np.int64)
        self.failures = np.zeros(arms, dtype=np.int64)
        self.rng = np.random.default_rng(0)

    @property
    def value(self) -> float:
        """Expected trial return under the prior (exact)."""
        if self.dependent:
            return _pair_value(self.pair, 0, 0, self.pulls)
        return uniform_value(self.arms, self.pulls)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        self.successes[:] = 0
        self.failures[:] = 0
        self.rng = rng

    def q_values(self) -> np.ndarray:
        """Expected successes over the rest of the trial after pulling each arm now."""
        remaining = self.pulls - int(self.successes.sum() + self.failures.sum())
        if remaining <= 0:
            return np.zeros(self.arms)
        if self.dependent:
            a = int(self.successes[0] + self.failures[1])
            b = int(self.failures[0] + self.successes[1])
            return np.array([_pair_q(self.pair, a, b, arm, remaining) for arm in (0, 1)])
        pairs = [(int(s), int(f)) for s, f in zip(self.successes, self.failures, strict=True)]
        order = sorted(range(self.arms), key=lambda i: pairs[i])
        counts = tuple(pairs[i] for i in order)
        q = np.zeros(self.arms)
        for rank, arm in enumerate(order):
            q[arm] = _uniform_q(counts, rank, remaining)
        return q

    def act(self, obs: Any) -> int:
        q = self.q_values()
        best = np.flatnonzero(q >= q.max() - 1e-12)
        return int(best[self.rng.integers(len(best))])

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        if reward > 0:
            self.successes[int(action)] += 1
        else:
            self.failures[int(action)] += 1
