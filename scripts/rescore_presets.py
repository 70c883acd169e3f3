"""Re-measure shipped presets with their own settings: train, score on test once, compare.

When the code under a preset changes what it samples (a new task stream, a new split rule),
its recorded score no longer comes from the current code. This script runs each preset's own
command (the ``command`` of its ``expected`` block: ``metagym train --preset ...`` then
``metagym evaluate ...``, or ``metagym demo``) in a fresh folder, reads the results, scores
the classic references the preset lists (Gittins, Thompson, UCB1, PSRL) on the same tasks and
seeds, and prints old and new numbers side by side. ``--write`` stores the new score,
interval, references and minutes in the preset file. The settings are not touched: nothing
here is selected on test.

    python scripts/rescore_presets.py rl2-bandit rl2-cartpole --work runs/rescore --write
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from metagym.agents.classic import BASELINES, baseline_for
from metagym.evaluation import family_for
from metagym.policies import Policy, run_trials
from metagym.presets import Preset, presets
from metagym.tasks import Task

PRESET_DIR = Path(__file__).resolve().parent.parent / "metagym" / "presets"
#: Display names of references in preset files -> keys of the results' reference_trial_return.
PROTOCOL_KEYS = {"random": "random", "oracle": "oracle", "Bayes-optimal": "bayes_optimal"}


def classic(name: str, family: Any, pulls: int) -> Policy | None:
    """The classic baseline a preset lists by ``name`` ("Gittins"), built for ``family``; None if unknown."""
    return baseline_for(name.lower(), family, pulls) if name.lower() in BASELINES else None


def run_preset(chosen: Preset, work: Path, evaluate_only: bool = False) -> tuple[dict[str, Any], float | None]:
    """Run the preset's command in ``work``; its results and the training minutes (None when
    ``evaluate_only`` re-scores a run trained before, without training again)."""
    work.mkdir(parents=True, exist_ok=True)
    minutes: float | None = None
    for name in ("results.json", "results.csv", "results.png"):  # the results read below are this call's
        for found in work.rglob(name):
            found.unlink()
    for part in chosen.expected["command"].split("&&"):
        argv = shlex.split(part)
        assert argv[0] == "metagym", f"{chosen.name}: unexpected command {part!r}"
        if evaluate_only and argv[1] == "train":
            continue
        if evaluate_only and argv[1] == "demo":  # the demo's own evaluation, on its run folder
            argv = [
                "metagym",
                "evaluate",
                "--run-dir",
                "runs/demo",
                "--tasks",
                "210",
                "--out",
                "runs/demo/results.json",
            ]
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "metagym.cli", *argv[1:]], cwd=work, check=True)
        if argv[1] in ("train", "demo"):
            minutes = (time.monotonic() - start) / 60
    (found,) = work.rglob("results.json")
    return json.loads(found.read_text()), minutes


def tasks_of(results: dict[str, Any], family: Any) -> list[Task]:
    return [family.task_type.from_dict(fields) for fields in results["tasks"]]


def rescore(chosen: Preset, work: Path, evaluate_only: bool = False) -> dict[str, Any]:
    """New expected numbers for ``chosen``: score, interval, references, minutes."""
    results, minutes = run_preset(chosen, work / chosen.name, evaluate_only)
    new: dict[str, Any] = {"references": {}}
    if minutes is not None:
        new["minutes"] = round(minutes, 1)
    if "adaptation_steps" in results:  # gradient agents: the return after one gradient step
        new["score"] = round(results["episode_returns"]["mean"][1], 2)
    else:
        trial = results["trial_return"]
        new["score"] = round(trial["mean"][0], 2)
        new["interval"] = [round(trial["ci_low"][0], 2), round(trial["ci_high"][0], 2)]
    family = family_for(chosen.env)
    episodes = len(results["episode_returns"]["mean"])
    gradient = "adaptation_steps" in results
    for name in chosen.expected["references"]:
        key = PROTOCOL_KEYS.get(name)
        if gradient and key in results["references"]:  # one episode's return (0 steps)
            value = results["references"][key]["mean"][0]
        elif gradient and name == "0 steps":
            value = results["episode_returns"]["mean"][0]
        elif not gradient and key in results["reference_trial_return"]:
            value = results["reference_trial_return"][key]
        elif (policy := classic(name, family, episodes)) is not None:
            env = gym.make(chosen.env)
            returns = run_trials(env, policy, tasks_of(results, family), episodes, results["seed"])
            value = float(np.mean(returns.sum(axis=1)))
        else:
            print(f"{chosen.name}: reference {name!r} kept as it was (not scored here; see its own script)")
            continue
        new["references"][name] = round(float(value), 2)
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="presets (default: all)")
    parser.add_argument("--work", type=Path, default=Path("runs/rescore"), help="folder for the runs")
    parser.add_argument("--write", action="store_true", help="store the new numbers in the preset files")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="re-score the runs already trained under --work (no training)"
    )
    args = parser.parse_args()
    shipped = presets()
    for name in args.names or list(shipped):
        if name not in shipped:
            parser.error(f"names: unknown preset {name!r}; allowed: {', '.join(shipped)}")
    for name in args.names or list(shipped):
        chosen = shipped[name]
        new = rescore(chosen, args.work, args.evaluate_only)
        old = chosen.expected
        print(
            f"{name}: score {old['score']} -> {new['score']}, interval {old.get('interval')} -> {new.get('interval')}"
        )
        for ref, value in new["references"].items():
            print(f"  {ref}: {old['references'][ref]} -> {value}")
        print(f"  minutes: {old['minutes']} -> {new.get('minutes', '(not trained here)')}")
        if args.write:
            path = PRESET_DIR / f"{name}.json"
            data = json.loads(path.read_text())
            data["expected"].update({k: v for k, v in new.items() if k != "references"})
            data["expected"]["references"].update(new["references"])
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
