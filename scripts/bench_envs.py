"""Steps per second of MetaGrid, single and batched, beside Minigrid and SyncVectorEnv; with
``--fresh``, every batched family and trial id with tasks pinned and with a fresh task at every
reset (the meta-RL case), beside Gymnasium's own numpy CartPole vector env.

All peers are measured in the same run, so the ratios hold even though absolute timings on a
shared machine are noisy. Random actions (seeded); episodes reset as they end.

    python scripts/bench_envs.py            # about a minute
    python scripts/bench_envs.py --seconds 1 --env MetaGrid-GridNavi-v0
    python scripts/bench_envs.py --fresh --seconds 2     # every id, N=1024: a few minutes
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import metagym
from metagym.registration import family_of


def timed(step_batch: Callable[[], int], seconds: float) -> float:
    """Call ``step_batch`` (which returns how many env steps it took) for ``seconds``."""
    step_batch()  # warm up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += step_batch()
    return steps / (time.perf_counter() - start)


def single(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, 1000).tolist()

    def run() -> int:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return len(actions)

    return timed(run, seconds)


def vector(envs: gym.vector.VectorEnv, seconds: float) -> float:
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = np.stack([envs.action_space.sample() for _ in range(64)])

    def run() -> int:
        for a in actions:
            envs.step(a)
        return actions.size

    return timed(run, seconds)


def batched(env_id: str, num_envs: int, seconds: float) -> float:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    family = envs.get_attr("family")[0]
    envs.set_attr("task", family.sample(np.random.default_rng(0), num_envs, split="train"))
    return vector(envs, seconds)


def fresh_rows(num_envs: int, seconds: float) -> None:
    """Every id with a batched vector env, tasks pinned and drawn afresh at each reset (trial
    ids: at each trial), against Gymnasium's numpy CartPole-v1 vector env in the same run."""
    cartpole = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    peer = vector(cartpole, seconds)
    print(f"Gymnasium CartPole-v1 vector env, N={num_envs}: {peer:,.0f} steps/s\n")
    print(f"| id (N={num_envs}) | pinned tasks, steps/s | fresh task per reset, steps/s | fresh, x CartPole vector |")
    print("|---|---:|---:|---:|")
    for env_id in metagym.env_ids():
        spec = gym.spec(env_id)
        family_id = spec.kwargs.get("env_id", env_id)  # a trial id's family
        if gym.spec(family_id).vector_entry_point is None:  # MuJoCo: Gymnasium's SyncVectorEnv
            continue
        make = lambda i=env_id: gym.make_vec(i, num_envs=num_envs, vectorization_mode="vector_entry_point")  # noqa: E731
        fresh = vector(make(), seconds)
        pinned_envs = make()
        family = family_of(gym.make(family_id, disable_env_checker=True))
        pinned_envs.set_attr("task", family.sample(np.random.default_rng(0), num_envs, split="train"))
        pinned = vector(pinned_envs, seconds)
        print(f"| {env_id} | {pinned:,.0f} | {fresh:,.0f} | {fresh / peer:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="MetaGrid-v0", help="metagym id to measure")
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096], help="batch sizes")
    parser.add_argument("--fresh", action="store_true", help="the meta-RL table: every id, fresh tasks vs pinned")
    parser.add_argument("--num-envs", type=int, default=1024, help="batch size of the --fresh table")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error(f"--seconds: expected a positive number, got {args.seconds}")
    if args.fresh:
        fresh_rows(args.num_envs, args.seconds)
        return

    import minigrid  # noqa: F401  (registers MiniGrid ids; in the dev extra)

    rows: list[tuple[str, float]] = []
    minigrid_sps = single("MiniGrid-Empty-8x8-v0", args.seconds)
    rows.append(("Minigrid MiniGrid-Empty-8x8-v0, single env", minigrid_sps))
    rows.append((f"{args.env}, single env", single(args.env, args.seconds)))
    sync_n = 64
    sync = gym.make_vec(args.env, num_envs=sync_n, vectorization_mode="sync")
    rows.append((f"{args.env}, Gymnasium SyncVectorEnv N={sync_n}", vector(sync, args.seconds)))
    for n in args.sizes:
        rows.append((f"{args.env}, batched N={n}", batched(args.env, n, args.seconds)))

    print("| what | steps/s | x Minigrid |\n|---|---:|---:|")
    for name, sps in rows:
        print(f"| {name} | {sps:,.0f} | {sps / minigrid_sps:,.1f} |")


if __name__ == "__main__":
    main()
