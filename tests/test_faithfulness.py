"""Our families against the papers' numbers (REFERENCES.md), over many seeded tasks.

Tolerances are about three standard errors of the mean at the task counts used here.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from metagym.agents.classic import PSRL, UCB1, GittinsIndex, ThompsonSampling
from metagym.policies import Policy, RandomPolicy, run_trials
from metagym.registration import family_of


def trial_returns(env_id: str, policy_for, tasks: int, episodes: int, **kwargs) -> np.ndarray:  # type: ignore[no-untyped-def]
    env = gym.make(env_id, **kwargs)
    fam = family_of(env)
    sampled = fam.sample(np.random.default_rng(0), tasks, "train") + fam.sample(
        np.random.default_rng(1), tasks // 4, "test"
    )
    return run_trials(env, policy_for(env), sampled, episodes, seed=0).sum(axis=1)


@pytest.mark.parametrize(
    ("pulls", "tasks", "expected", "tolerance"),
    [(10, 2000, 5.0, 0.15), (100, 400, 49.9, 1.5)],
)
def test_bandit_random_matches_rl2_table(pulls: int, tasks: int, expected: float, tolerance: float) -> None:
    returns = trial_returns("MetaBandit-v0", lambda env: RandomPolicy(env.action_space), tasks, pulls)
    assert returns.mean() == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize(
    ("policy", "pulls", "tasks", "expected", "tolerance"),
    [
        ("thompson", 10, 2000, 5.7, 0.25),
        ("ucb1", 10, 2000, 6.7, 0.25),
        ("gittins", 10, 2000, 6.6, 0.25),
        ("thompson", 100, 400, 74.7, 2.5),
        ("ucb1", 100, 400, 78.0, 2.5),
    ],
)
def test_bandit_baselines_near_rl2_table(
    policy: str, pulls: int, tasks: int, expected: float, tolerance: float
) -> None:
    make = {
        "thompson": lambda env: ThompsonSampling(5),
        "ucb1": lambda env: UCB1(5),
        "gittins": lambda env: GittinsIndex(5, pulls),
    }[policy]
    assert trial_returns("MetaBandit-v0", make, tasks, pulls).mean() == pytest.approx(expected, abs=tolerance)


def test_tabular_mdp_random_and_psrl_match_rl2_table() -> None:
    random = trial_returns("MetaTabularMDP-v0", lambda env: RandomPolicy(env.action_space), 400, 10)
    assert random.mean() == pytest.approx(100.1, abs=4.0)
    psrl = trial_returns("MetaTabularMDP-v0", lambda env: PSRL(10, 5, 10), 200, 10)
    assert psrl.mean() == pytest.approx(138.1, abs=6.0)


class StandStill(Policy):
    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(2, dtype=np.float32)


def test_point_nav_standing_still_and_oracle() -> None:
    still = trial_returns("PointNav2D-v0", lambda env: StandStill(), 1600, 1)
    assert still.mean() == pytest.approx(-38.3, abs=1.0)
    oracle = trial_returns("PointNav2D-v0", lambda env: family_of(env).oracle_policy(), 800, 1)
    assert oracle.mean() == pytest.approx(-0.51, abs=0.05)
