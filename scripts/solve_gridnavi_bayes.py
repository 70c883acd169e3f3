"""Solve GridNavi's Bayes-optimal search plans exactly and write them as package data.

GridNavi's 4-episode trial needs 27 million dynamic-programming states (about 6 minutes and
6 GB here), too slow for evaluation time, so the plans ship in
``envs/data/bayes_plans.json`` and this script makes them (trials of 1 to 4 episodes, the
21-goal prior).

    python scripts/solve_gridnavi_bayes.py            # about 12 minutes, 6 GB of memory
    python scripts/solve_gridnavi_bayes.py --episodes 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from metagym.envs.grid_bayes import SearchPlan
from metagym.envs.metagrid import GridFamily
from metagym.envs.metagrid_levels import named_layout

OUT = Path(__file__).resolve().parents[1] / "envs" / "data" / "bayes_plans.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[1, 2, 3, 4], help="trial lengths to solve")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    family = GridFamily("gridnavi")
    layout = named_layout("gridnavi")
    goals = [t.goal for t in family.task_set("train") or ()]
    plans = []
    for k in args.episodes:
        tic = time.perf_counter()
        plan = SearchPlan(layout, goals, family.horizon, k, family.goal_terminates)
        print(
            f"{k} episodes: expected trial return {plan.value:.4f}, {plan.states:,} states, "
            f"{time.perf_counter() - tic:.0f} s",
            flush=True,
        )
        plans.append(
            {
                "level": "gridnavi",
                "candidates": [list(g) for g in goals],
                "horizon": family.horizon,
                "episodes": k,
                "terminates": family.goal_terminates,
                "value": plan.value,
                "actions": plan.actions,
            }
        )
    note = "Made by scripts/solve_gridnavi_bayes.py: exact Bayes-optimal search plans (see envs/grid_bayes.py)."
    args.out.write_text(json.dumps({"note": note, "plans": plans}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
