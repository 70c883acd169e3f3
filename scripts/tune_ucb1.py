"""Choose UCB1's exploration scale c on the validation split (never on test).

The RL² paper tunes c per setting; this script does the same for MetaBandit-v0 (k = 5) at
n = 10 and n = 100 pulls, on ``validation`` tasks, and prints the score of every candidate. The
chosen c is UCB1's default in ``metagym.agents.classic``; the README scores it once on ``test``.

    python scripts/tune_ucb1.py                 # about a minute
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import metagym  # noqa: F401  (registers the ids)
from metagym.agents.classic import UCB1
from metagym.evaluation import held_out_tasks
from metagym.policies import run_trials

CANDIDATES = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="validation tasks per setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env = gym.make("MetaBandit-v0")
    tasks = held_out_tasks("MetaBandit-v0", "validation", args.trials, args.seed)
    totals = {c: 0.0 for c in CANDIDATES}
    print(f"UCB1 on {args.trials} validation tasks of MetaBandit-v0 (k = 5), mean trial return\n")
    print("| c | n = 10 | n = 100 |\n|---:|---:|---:|")
    for c in CANDIDATES:
        scores = []
        for pulls in (10, 100):
            mean = float(run_trials(env, UCB1(5, c=c), tasks, pulls, args.seed).sum(axis=1).mean())
            scores.append(mean)
            totals[c] += mean / pulls  # per-pull reward, so both settings weigh the same
        print(f"| {c} | {scores[0]:.3f} | {scores[1]:.2f} |", flush=True)
    best = max(CANDIDATES, key=lambda c: totals[c])
    print(f"\nbest c on validation (mean reward per pull over both settings): {best}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
