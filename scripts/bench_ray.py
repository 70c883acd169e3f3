"""How a sweep scales on Ray: runs per minute with 1 and 2 Ray workers, beside the local backend.

Each backend runs the same sweep of small RL² runs (train + evaluate) from scratch in its own
folder; the numbers are checked equal. On a machine with C cores, Ray with C workers should
approach C times one worker, less Ray's start-up and each worker's import of torch.

    python scripts/bench_ray.py                 # 8 runs of 20,000 steps: a few minutes on 2 cores
    python scripts/bench_ray.py --runs 4 --steps 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from metagym.sweep import Run, sweep


def timed(runs: list[Run], out: Path, backend: str, workers: int | None = None) -> tuple[float, list]:
    start = time.perf_counter()
    if backend == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            results = sweep(runs, out, backend="ray")
        finally:
            ray.shutdown()
    else:
        results = sweep(runs, out)
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="runs in the sweep (seeds)")
    parser.add_argument("--steps", type=int, default=20_000, help="training steps per run")
    parser.add_argument("--env", default="MetaBandit-v0")
    args = parser.parse_args()
    runs = [Run(args.env, "rl2", seed, args.steps, None, 100) for seed in range(args.runs)]
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    rows = []
    local_seconds, local = timed(runs, root / "local", "local")
    rows.append(("local backend (one process)", local_seconds))
    for workers in (1, 2):
        seconds, found = timed(runs, root / f"ray-{workers}", "ray", workers)
        assert [r["trial_return"] for r in found] == [r["trial_return"] for r in local], "Ray changed a number"
        rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}", seconds))
    print(f"{args.runs} runs of {args.steps:,} steps on {args.env} (+ evaluation on 100 tasks each)\n")
    print("| backend | seconds | runs per minute | x Ray with 1 worker |\n|---|---:|---:|---:|")
    one = rows[1][1]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {60 * args.runs / seconds:.1f} | {one / seconds:.2f} |")


if __name__ == "__main__":
    main()
