"""Reference policies on our families beside the papers' numbers (REFERENCES.md).

python scripts/reference_numbers.py            # 1000 trials per row, a few minutes
python scripts/reference_numbers.py --trials 200
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import metagym  # noqa: F401  (registers the ids)
from metagym.agents.classic import PSRL, UCB1, GittinsIndex, ThompsonSampling
from metagym.policies import Policy, RandomPolicy, run_trials
from metagym.registration import family_of


class StandStill(Policy):
    name = "stand still"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(2, dtype=np.float32)


def measure(env_id: str, make_policy, episodes: int, trials: int, seed: int) -> tuple[str, float, float]:  # type: ignore[no-untyped-def]
    env = gym.make(env_id)
    fam = family_of(env)
    policy = make_policy(env)
    tasks = fam.sample(np.random.default_rng(seed), trials, "test" if "test" in fam.splits else "train")
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
    random = lambda env: RandomPolicy(env.action_space)  # noqa: E731
    oracle = lambda env: family_of(env).oracle_policy()  # noqa: E731
    rows = [
        ("MetaBandit-v0", 10, random, 5.0),
        ("MetaBandit-v0", 10, lambda env: ThompsonSampling(5), 5.7),
        ("MetaBandit-v0", 10, lambda env: UCB1(5), 6.7),
        ("MetaBandit-v0", 10, lambda env: GittinsIndex(5, 10), 6.6),
        ("MetaBandit-v0", 10, oracle, None),
        ("MetaBandit-v0", 100, random, 49.9),
        ("MetaBandit-v0", 100, lambda env: ThompsonSampling(5), 74.7),
        ("MetaBandit-v0", 100, lambda env: UCB1(5), 78.0),
        ("MetaBandit-v0", 100, lambda env: GittinsIndex(5, 100), 78.3),
        ("MetaBandit-v0", 100, oracle, None),
        ("MetaTabularMDP-v0", 10, random, 100.1),
        ("MetaTabularMDP-v0", 10, lambda env: PSRL(10, 5, 10), 138.1),
        ("MetaTabularMDP-v0", 10, oracle, None),
        ("PointNav2D-v0", 1, lambda env: StandStill(), -38.3),
        ("PointNav2D-v0", 1, random, None),
        ("PointNav2D-v0", 1, oracle, -0.51),
    ]
    for env_id in ("MetaCartPole-v0", "MetaPendulum-v0", "MetaMountainCar-v0", "MetaAcrobot-v0", "MetaMaze-v0"):
        rows += [(env_id, 1, random, None), (env_id, 1, oracle, None)]
    # The MuJoCo oracles plan with the model (seconds per episode): fewer trials.
    for env_id, paper_oracle in (("HalfCheetahVel-v0", -54.5), ("HalfCheetahDir-v0", 442.7), ("AntDir-v0", None)):
        rows += [(env_id, 1, random, None), (env_id, 1, oracle, paper_oracle)]
    print(f"test tasks (train tasks where a family has no test split), seed {args.seed}\n")
    print("| env | episodes per trial | policy | trials | trial return (mean ± s.e.) | paper |")
    print("|---|---:|---|---:|---:|---:|")
    for env_id, episodes, make, paper in rows:
        trials = min(args.trials, args.mujoco_trials) if gym.spec(env_id).vector_entry_point is None else args.trials
        name, mean, se = measure(env_id, make, episodes, trials, args.seed)
        shown = "" if paper is None else f"{paper}"
        print(f"| {env_id} | {episodes} | {name} | {trials} | {mean:.2f} ± {se:.2f} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
