"""What metagym's Meta-World vector env costs against Meta-World's own, measured in the same run.

    MUJOCO_GL=egl python scripts/bench_metaworld.py --num-envs 10 --steps 1000

Steps ``num_envs`` ML1 Reach envs with random actions (the same per step for every env kind),
through metagym's ``gymnasium.make_vec("MetaWorld-ML1-Reach-v0", num_envs=N)`` (async and sync)
and Meta-World's ``gymnasium.make_vec("Meta-World/ML1-train", env_name="reach-v3",
vector_strategy=...)``, and prints env steps per second (the best of ``repeats`` interleaved measurements) and the
ratio to Meta-World's own.
Timings on a shared machine are noisy: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import metagym  # noqa: F401  (registers the ids)


def timed(make: Callable[[], Any], steps: int, seed: int = 0) -> float:
    """Env steps per second of ``steps`` vector steps (after a reset and one warm-up step)."""
    envs = make()
    try:
        if "metagym" not in type(envs).__module__:  # Meta-World's own draws a task only when told to
            envs.call("toggle_sample_tasks_on_reset", True)
        envs.reset(seed=seed)
        rng = np.random.default_rng(seed)
        actions = rng.uniform(-1, 1, size=(steps + 1, envs.num_envs, 4)).astype(np.float32)
        envs.step(actions[0])
        start = time.perf_counter()
        for a in actions[1:]:
            envs.step(a)
        return steps * envs.num_envs / (time.perf_counter() - start)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=10, help="a divisor of 50 (Meta-World shares its tasks out)")
    parser.add_argument("--steps", type=int, default=1000, help="vector steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved measurements of each; the best counts")
    args = parser.parse_args()
    import metaworld  # noqa: F401  (registers Meta-World's own ids)

    n = args.num_envs
    kinds: dict[str, Callable[[], Any]] = {}
    for mode in ("async", "sync"):
        kinds[f"Meta-World's own ({mode})"] = lambda mode=mode: gym.make_vec(
            "Meta-World/ML1-train", env_name="reach-v3", vector_strategy=mode, meta_batch_size=n, seed=0
        )
        kinds[f"metagym ({mode})"] = lambda mode=mode: gym.make_vec(
            "MetaWorld-ML1-Reach-v0", num_envs=n, vectorization=mode, autoreset_mode="SameStep"
        )
    speeds = dict.fromkeys(kinds, 0.0)
    for _ in range(args.repeats):  # interleaved, so a busy spell of the machine hits every kind alike
        for name, make in kinds.items():
            speeds[name] = max(speeds[name], timed(make, args.steps))
    print(f"| ML1 Reach, {n} envs, {args.steps} vector steps | env steps/s | / Meta-World's own, same mode |")
    print("|---|---:|---:|")
    for name, speed in speeds.items():
        mode = name.rsplit("(", 1)[1].rstrip(")")
        peer = speeds[f"Meta-World's own ({mode})"]
        print(f"| {name} | {speed:,.0f} | {speed / peer:.2f} |")


if __name__ == "__main__":
    main()
