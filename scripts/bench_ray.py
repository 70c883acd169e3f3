"""How metagym scales on Ray: a sweep's runs per minute and an evaluation's trials per second,
with 1 and 2 Ray workers, beside the local backend.

Sweep: each backend runs the same sweep of small RL² runs (train + evaluate) from scratch in
its own folder. Evaluation (``--evaluate RUN_DIR``): each backend scores the same trained run
on the same tasks, in blocks of ``--tasks-per-block``. Either way the numbers are checked
equal. On a machine with C cores, Ray with C workers should approach C times one worker, less
Ray's start-up and each worker's import of torch (timed from a started Ray: the seconds Ray
takes to start are printed apart).

    python scripts/bench_ray.py                 # 8 runs of 20,000 steps: a few minutes on 2 cores
    python scripts/bench_ray.py --runs 4 --steps 10000
    python scripts/bench_ray.py --evaluate runs/rl2-bandit --tasks 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from metagym.agents.sweep import Run, sweep
from metagym.evaluation import evaluate


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


def bench_evaluation(run_dir: str, tasks: int, per_block: int) -> None:
    from metagym.cli.common import load_agent

    agent = load_agent(run_dir)
    rows, results = [], []
    for backend, workers in (("local", None), ("ray", 1), ("ray", 2)):
        if backend == "ray":
            import ray

            tic = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            print(f"Ray with {workers} worker(s) started in {time.perf_counter() - tic:.1f} s")
        try:
            tic = time.perf_counter()
            results.append(evaluate(agent, num_tasks=tasks, tasks_per_block=per_block, backend=backend))
            seconds = time.perf_counter() - tic
        finally:
            if backend == "ray":
                ray.shutdown()
        name = "local backend (one process)" if workers is None else f"Ray, {workers} worker{'s' * (workers > 1)}"
        rows.append((name, seconds))
        assert results[-1] == results[0], "Ray changed a number"
    print(f"\n{agent.config.env_id}: {tasks:,} tasks in blocks of {per_block} (results checked equal)\n")
    print("| backend | seconds | trials per second | x Ray with 1 worker |\n|---|---:|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {tasks / seconds:.1f} | {rows[1][1] / seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="runs in the sweep (seeds)")
    parser.add_argument("--steps", type=int, default=20_000, help="training steps per run")
    parser.add_argument("--env", default="MetaBandit-v0")
    parser.add_argument("--evaluate", metavar="RUN_DIR", help="time an evaluation of this run instead of a sweep")
    parser.add_argument("--tasks", type=int, default=1000, help="--evaluate: tasks to score")
    parser.add_argument("--tasks-per-block", type=int, default=50, help="--evaluate: tasks per block")
    args = parser.parse_args()
    if args.evaluate:
        bench_evaluation(args.evaluate, args.tasks, args.tasks_per_block)
        return
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
