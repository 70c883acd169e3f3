"""Soak test of exact resume: kill a training run many times at random moments, resume it each
time, and check that it ends bit for bit equal to the same run trained without interruption.

Each interruption is a SIGTERM (the trainer finishes the update in flight, saves, stops) or a
SIGKILL (nothing runs; the last checkpoint stands), chosen at random, sent a random number of
updates into the run and a random fraction of a second into an update. The run is then
resumed with ``metagym train --resume``. At the end the final checkpoints are compared (weights
and optimizer moments, exactly) and so are the logs (every row but ``steps_per_sec``).

    python scripts/soak_resume.py --agent rl2 --kills 30
    python scripts/soak_resume.py --agent maml --kills 30

Prints one line per interruption and a summary: "N interruptions (S SIGTERM, K SIGKILL), N exact
resumes, 0 rows lost". Exits 1 if the runs differ.
"""

from __future__ import annotations

import argparse
import csv
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from metagym.agents.common.checkpoint import load

CLI = [sys.executable, "-m", "metagym.cli", "train"]
RUNS = {
    "rl2": ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--hidden-size", "8",
            "--num-minibatches", "2", "--steps", "40000"],
    "maml": ["--agent", "maml", "--env", "PointNav2D-v0", "--meta-batch-size", "2", "--fast-batch-size", "2",
             "--hidden-size", "8", "--steps", "200000"],
}  # fmt: skip


def rows(run: Path) -> list[dict[str, str]]:
    if not (run / "progress.csv").exists():
        return []
    with (run / "progress.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "steps_per_sec"} for row in csv.DictReader(handle)]


def interrupt_once(command: list[str], run: Path, rng: np.random.Generator) -> str:
    """Start ``command``; after a few new log rows send SIGTERM or SIGKILL. Returns what happened."""
    before = len(rows(run))
    kind = signal.SIGTERM if rng.random() < 0.5 else signal.SIGKILL
    wait_for = before + int(rng.integers(1, 6))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sent = False
    while proc.poll() is None:
        if len(rows(run)) >= wait_for:
            time.sleep(float(rng.uniform(0, 0.3)))
            proc.send_signal(kind)
            sent = True
            break
        time.sleep(0.01)
    _, err = proc.communicate()
    if not sent:
        return "finished before the signal"
    if kind == signal.SIGTERM and proc.returncode not in (130, 0):
        raise SystemExit(f"SIGTERM: exit {proc.returncode}: {err}")
    return f"{kind.name} at row {wait_for}, exit {proc.returncode}"


def compare(straight: Path, split: Path) -> list[str]:
    a, b = load(straight / "checkpoint.pt"), load(split / "checkpoint.pt")
    weights = "network" if "network" in a else "params"
    problems = [f"{weights}.{k} differs" for k, v in a[weights].items() if not torch.equal(v, b[weights][k])]
    for slot, moments in a.get("optimizer", {}).get("state", {}).items():
        for name, value in moments.items():
            if not torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][slot][name])):
                problems.append(f"optimizer.{slot}.{name} differs")
    ra, rb = rows(straight), rows(split)
    if ra != rb:
        problems.append(f"logs differ: {len(ra)} rows straight, {len(rb)} after interruptions")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", choices=sorted(RUNS), default="rl2")
    parser.add_argument("--kills", type=int, default=20, help="interruptions (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the interruption schedule")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        straight, split = Path(tmp) / "straight", Path(tmp) / "split"
        base = [*RUNS[args.agent], "--checkpoint-seconds", "0", "--quiet"]
        subprocess.run([*CLI, *base, "--run-dir", str(straight)], check=True, capture_output=True)
        command = [*CLI, *base, "--run-dir", str(split)]
        counts = {"SIGTERM": 0, "SIGKILL": 0}
        for i in range(args.kills):
            what = interrupt_once(command, split, rng)
            print(f"{i + 1:3d}: {what}")
            for name in counts:
                counts[name] += what.startswith(name)
            if not (split / "checkpoint.pt").exists():
                command = [*CLI, *base, "--run-dir", str(split), "--overwrite"]  # killed before the first save
            else:
                command = [*CLI, "--run-dir", str(split), "--resume", "--quiet"]
        subprocess.run(command, check=True, capture_output=True)
        problems = compare(straight, split)
        total = counts["SIGTERM"] + counts["SIGKILL"]
        lost = len(rows(straight)) - len(rows(split))
        print(
            f"{total} interruptions ({counts['SIGTERM']} SIGTERM, {counts['SIGKILL']} SIGKILL), "
            f"{total if not problems else 0} exact resumes, {max(lost, 0)} rows lost"
        )
        for problem in problems:
            print("  " + problem)
        return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
