"""Reference policies on our families beside the papers' numbers (REFERENCES.md).

python scripts/reference_numbers.py            # 1000 trials per row, a few minutes
python scripts/reference_numbers.py --trials 200

Every row is scored on ``test`` tasks, or on the prior where a family has no held-out tasks.
The ``paper`` column holds only numbers measured in the same setting: the MuJoCo families run
Gymnasium's v5 models (dt 0.05, finite-difference velocity, 17-dim cheetah observation, the
convention of PEARL and pytorch-maml-rl), not rllab's models that the MAML paper's numbers come
from, so those rows have no paper number. PointNav2D's "stand still" value -38.3 is the
analytic mean distance of a U[-0.5, 0.5]^2 goal times 100 steps, not a paper number
(``analytic`` column).
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np

import metagym  # noqa: F401  (registers the ids)
from metagym.agents.classic import PSRL, UCB1, GittinsIndex, ThompsonSampling
from metagym.evaluation import held_out_tasks
from metagym.policies import Policy, RandomPolicy, run_trials
from metagym.registration import family_of


class StandStill(Policy):
    name = "stand still"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(2, dtype=np.float32)


def measure(env_id: str, make_policy, episodes: int, trials: int, seed: int) -> tuple[str, float, float]:  # type: ignore[no-untyped-def]
    env = gym.make(env_id)
    policy = make_policy(env)
    tasks = held_out_tasks(env_id, None, trials, seed)  # test, or the prior (finite sets in strata)
    returns = run_trials(env, policy, tasks, episodes, seed=seed).sum(axis=1)
    return policy.name, float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(trials))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials (test tasks) per row")
    parser.add_argument("--mujoco-trials", type=int, default=20, help="trials per MuJoCo row (planning is slow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.trials < 2:
        parser.error(f"--trials: expected an integer >= 2, got {args.trials}")
    print(f"test tasks (the prior where a family has no held-out tasks), seed {args.seed}\n")
    print("| env | episodes per trial | policy | trials | trial return (mean ± s.e.) | paper | analytic |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for env_id, episodes, make, paper, analytic in rows():
        trials = min(args.trials, args.mujoco_trials) if gym.spec(env_id).vector_entry_point is None else args.trials
        name, mean, se = measure(env_id, make, episodes, trials, args.seed)
        shown = ["" if v is None else f"{v}" for v in (paper, analytic)]
        print(
            f"| {env_id} | {episodes} | {name} | {trials} | {mean:.2f} ± {se:.2f} | {shown[0]} | {shown[1]} |",
            flush=True,
        )


#: The MuJoCo ids: Gymnasium v5 models, a different simulator from the MAML paper's rllab models.
MUJOCO_IDS = ("HalfCheetahVel-v0", "HalfCheetahDir-v0", "AntDir-v0")


def rows() -> list[tuple[str, int, Any, float | None, float | None]]:
    """(env id, episodes per trial, policy maker, paper number, analytic number) per row."""
    random = lambda env: RandomPolicy(env.action_space)  # noqa: E731
    oracle = lambda env: family_of(env).oracle_policy()  # noqa: E731
    table = [
        ("MetaBandit-v0", 10, random, 5.0, None),
        ("MetaBandit-v0", 10, lambda env: ThompsonSampling(5), 5.7, None),
        ("MetaBandit-v0", 10, lambda env: UCB1(5), 6.7, None),
        ("MetaBandit-v0", 10, lambda env: GittinsIndex(5, 10), 6.6, None),
        ("MetaBandit-v0", 10, lambda env: family_of(env).bayes_optimal_policy("test", 10), None, None),
        ("MetaBandit-v0", 10, oracle, None, None),
        ("MetaBandit-v0", 100, random, 49.9, None),
        ("MetaBandit-v0", 100, lambda env: ThompsonSampling(5), 74.7, None),
        ("MetaBandit-v0", 100, lambda env: UCB1(5), 78.0, None),
        ("MetaBandit-v0", 100, lambda env: GittinsIndex(5, 100), 78.3, None),
        ("MetaBandit-v0", 100, oracle, None, None),
        ("MetaTabularMDP-v0", 10, random, 100.1, None),
        ("MetaTabularMDP-v0", 10, lambda env: PSRL(10, 5, 10), 138.1, None),
        ("MetaTabularMDP-v0", 10, oracle, None, None),
        ("PointNav2D-v0", 1, lambda env: StandStill(), None, -38.3),
        ("PointNav2D-v0", 1, random, None, None),
        ("PointNav2D-v0", 1, oracle, None, None),
    ]
    for env_id in ("MetaCartPole-v0", "MetaPendulum-v0", "MetaMountainCar-v0", "MetaAcrobot-v0", "MetaMaze-v0"):
        table += [(env_id, 1, random, None, None), (env_id, 1, oracle, None, None)]
    # The MuJoCo oracles plan with the model (seconds per episode): fewer trials. No paper column:
    # the papers' numbers come from rllab's models, another simulator (see the docstring).
    for env_id in MUJOCO_IDS:
        table += [(env_id, 1, random, None, None), (env_id, 1, oracle, None, None)]
    return table


if __name__ == "__main__":
    main()
