"""Sweep a preset's settings on the ``validation`` split and write a table of what was tried.

Each point of the grid trains the preset with some options changed (``metagym train --preset
NAME --OPTION VALUE ...``) and scores the run on validation tasks (``metagym evaluate --split
validation``). Test tasks are never touched here: pick on this table, then score ``test`` once
with the chosen setting. Runs already scored are skipped, so an interrupted sweep picks up where
it stopped when started again with the same ``--out``.

    python scripts/sweep_preset.py rl2-tabular --steps 4000000 --jobs 2 \
        --grid ent-coef=0.01,0.03 gae-lambda=0.3,0.9 --out runs/sweep-tabular
    python scripts/sweep_preset.py --base "--env MetaMaze-v0" --steps 12000000 \
        --grid learning-rate=1e-3,2e-3 --out runs/sweep-maze

writes ``runs/sweep-tabular/<point>/`` (a run folder each) and ``runs/sweep-tabular/table.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["ent-coef=0.01,0.03"]`` -> ``[("ent-coef", ["0.01", "0.03"])]``."""
    grid = []
    for item in items:
        option, sep, values = item.partition("=")
        if not sep or not option or not values:
            raise SystemExit(f"--grid: expected OPTION=V1,V2,..., got {item!r}")
        grid.append((option.removeprefix("--"), values.split(",")))
    return grid


def point_name(point: dict[str, str]) -> str:
    return "_".join(f"{k}={v}" for k, v in point.items()) or "preset"


def run_point(args: argparse.Namespace, point: dict[str, str]) -> dict:
    """Train and score one point (or read its earlier score), return its table row."""
    folder = args.out / point_name(point)
    scored = folder / "validation.json"
    options = [x for k, v in point.items() for x in (f"--{k}", v)]
    if not scored.exists():
        train = ["metagym", "train", "--run-dir", str(folder), "--quiet", *args.base.split()]
        train += ["--preset", args.preset] if args.preset else []
        train += ["--seed", str(args.seed)]
        train += ["--steps", str(args.steps)] if args.steps else []
        start = time.perf_counter()
        done = folder / "checkpoint.pt"
        if done.exists():  # a run stopped mid-way: finish it
            train = ["metagym", "train", "--run-dir", str(folder), "--resume", "--quiet"]
            options = []
        subprocess.run([*train, *options], check=True, stdout=subprocess.DEVNULL)
        (folder / "sweep_minutes.txt").write_text(f"{(time.perf_counter() - start) / 60:.1f}\n")
        evaluate = ["metagym", "evaluate", "--run-dir", str(folder), "--split", "validation"]
        evaluate += ["--tasks", str(args.tasks), "--out", str(scored)]
        subprocess.run(evaluate, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(scored.read_text())
    minutes = folder / "sweep_minutes.txt"
    trial = result["trial_return"]
    return {
        **point,
        "validation": trial["mean"][-1],
        "low": trial["ci_low"][-1],
        "high": trial["ci_high"][-1],
        "minutes": minutes.read_text().strip() if minutes.exists() else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset", nargs="?", help="the preset to start from (metagym presets); or none and --base")
    parser.add_argument("--base", default="", help="train options every run shares, e.g. '--env MetaMaze-v0'")
    parser.add_argument("--grid", nargs="*", default=[], help="OPTION=V1,V2,... (train's options, without --)")
    parser.add_argument("--steps", type=int, default=0, help="steps per run (default: the preset's)")
    parser.add_argument("--tasks", type=int, default=1000, help="validation tasks per run (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="root seed of every run (default: 0)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one torch thread each)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and table.md")
    args = parser.parse_args()
    if not args.preset and not args.base:
        raise SystemExit("give a preset to start from, or --base with the train options")
    if args.jobs < 1:
        raise SystemExit(f"--jobs: must be >= 1, got {args.jobs}")
    grid = parse_grid(args.grid)
    keys = [k for k, _ in grid]
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in grid))]
    args.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda p: run_point(args, p), points))
    rows.sort(key=lambda r: -r["validation"])
    lines = [
        f"Sweep of `{args.preset or args.base}` on validation ({args.tasks} tasks, seed {args.seed}, "
        f"{args.steps or 'preset'} steps); `python {shlex.join(sys.argv)}`",
        "",
        "| " + " | ".join([*keys, "validation trial return", "95% interval", "train minutes"]) + " |",
        "|" + "---|" * len(keys) + "---:|---|---:|",
    ]
    for r in rows:
        cells = [r[k] for k in keys] + [f"{r['validation']:.2f}", f"[{r['low']:.2f}, {r['high']:.2f}]", r["minutes"]]
        lines.append("| " + " | ".join(cells) + " |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
