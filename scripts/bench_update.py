"""RL² training speed, this code against another checkout's, in one run: env steps/s with updates.

Each preset is trained for a few updates by this checkout's ``metagym`` and by the baseline's
(``--baseline-python``: the Python of a venv where an older metagym is installed), alternately,
``--rounds`` times, each run in its own process and folder. A run's speed is the median
``steps_per_sec`` of its ``progress.csv`` rows after the first (the first pays for imports and
warm-up); the ratio is this code's median over the baseline's. Each side trains the preset as
*its* version ships it (settings and all), which is what a user of either version gets.

    python -m venv /tmp/old && /tmp/old/bin/pip install torch==2.13.0 "metagym-rl[agents] @ git+<old>"
    python scripts/bench_update.py --baseline-python /tmp/old/bin/python --preset rl2-tabular
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def preset_batch(python: str, name: str) -> tuple[int, dict[str, object]]:
    """(steps per update, config) of preset ``name`` as ``python``'s metagym ships it."""
    code = (
        "import dataclasses, json, sys\n"
        "from metagym.presets import preset\n"
        "from metagym.agents.rl2 import RL2Config\n"
        "p = preset(sys.argv[1])\n"
        "fields = {f.name for f in dataclasses.fields(RL2Config)}\n"
        "c = RL2Config(**{k: v for k, v in p.config.items() if k in fields}, env_id=p.env)\n"
        "print(json.dumps([c.num_envs * c.rollout_steps, dataclasses.asdict(c)]))\n"
    )
    out = subprocess.run([python, "-c", code, name], capture_output=True, text=True, check=True).stdout
    batch, config = json.loads(out)
    return int(batch), config


def speed(python: str, name: str, updates: int) -> float:
    """Median steps/s of ``updates`` updates of preset ``name`` trained by ``python``'s metagym."""
    batch, _ = preset_batch(python, name)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        cmd = [python, "-m", "metagym.cli", "train", "--preset", name, "--steps", str(batch * updates)]
        subprocess.run([*cmd, "--run-dir", str(run), "--quiet"], check=True, capture_output=True, cwd=folder)
        with open(run / "progress.csv") as handle:
            rows = list(csv.DictReader(handle))
    return statistics.median(float(row["steps_per_sec"]) for row in rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-python", required=True, help="Python of a venv with the baseline metagym")
    parser.add_argument("--preset", nargs="+", default=["rl2-tabular"], help="RL² presets to train")
    parser.add_argument("--updates", type=int, default=8, help="updates per run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two (default: %(default)s)")
    args = parser.parse_args()
    if args.updates < 2:
        parser.error(f"--updates: expected at least 2 (the first is not timed), got {args.updates}")
    if args.rounds < 1:
        parser.error(f"--rounds: expected an integer >= 1, got {args.rounds}")
    print("| preset | baseline steps/s | this code steps/s | ratio | settings that differ |\n|---|---:|---:|---:|---|")
    for name in args.preset:
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(speed(args.baseline_python, name, args.updates))
            ours.append(speed(sys.executable, name, args.updates))
        old, new = preset_batch(args.baseline_python, name)[1], preset_batch(sys.executable, name)[1]
        differ = ", ".join(f"{k} {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v) or "none"
        a, b = statistics.median(theirs), statistics.median(ours)
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x | {differ} |", flush=True)


if __name__ == "__main__":
    main()
