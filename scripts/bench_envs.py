"""Steps per second of MetaGrid, single and batched, beside Minigrid and SyncVectorEnv; with
``--fresh``, every batched family and trial id with tasks pinned and with a fresh task at every
reset (the meta-RL case), beside Gymnasium's own numpy CartPole vector env.

All peers are measured in the same run, so the ratios hold even though absolute timings on a
shared machine are noisy. Random actions (seeded); episodes reset as they end.

    python scripts/bench_envs.py            # about a minute
    python scripts/bench_envs.py --seconds 1 --env MetaGrid-GridNavi-v0
    python scripts/bench_envs.py --fresh --seconds 2     # every id, N=1024: a few minutes
    python scripts/bench_envs.py --fresh --xland-python /path/to/venv-with-xminigrid/bin/python

XLand-MiniGrid (JAX) is an optional peer of the ``--fresh`` table: measured when ``xminigrid``
imports here, or with the interpreter given by ``--xland-python`` (its JAX needs no change to
this environment), on CPU, in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
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
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(1000)]

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


#: XLand-MiniGrid's own loop: N envs under jax.vmap, auto-reset (a new layout each reset),
#: random actions, 100 steps per jitted call. Prints steps/s as JSON.
XLAND = """
import json, sys, time, jax, xminigrid
from xminigrid.wrappers import GymAutoResetWrapper
n, seconds = int(sys.argv[1]), float(sys.argv[2])
env, params = xminigrid.make("MiniGrid-FourRooms")
env = GymAutoResetWrapper(env)
state = jax.vmap(env.reset, in_axes=(None, 0))(params, jax.random.split(jax.random.key(0), n))
@jax.jit
def roll(state, key):
    def body(state, k):
        actions = jax.random.randint(k, (n,), 0, env.num_actions(params))
        return jax.vmap(env.step, in_axes=(None, 0, 0))(params, state, actions), None
    return jax.lax.scan(body, state, jax.random.split(key, 100))[0]
state = jax.block_until_ready(roll(state, jax.random.key(1)))
calls, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    state = jax.block_until_ready(roll(state, jax.random.key(calls + 2)))
    calls += 1
print(json.dumps({"steps_per_second": calls * 100 * n / (time.perf_counter() - start), "jax": jax.__version__}))
"""


def xland(python: str | None, num_envs: int, seconds: float) -> dict[str, float] | None:
    """XLand-MiniGrid's steps/s with ``python`` (default: this interpreter, if it has xminigrid)."""
    if python is None:
        if importlib.util.find_spec("xminigrid") is None:
            return None
        python = sys.executable
    done = subprocess.run(
        [python, "-c", XLAND, str(num_envs), str(seconds)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


#: metagym's classic-control variants and the Gymnasium env each one is with its default task.
SINGLE_PEERS = {
    "MetaCartPole-v0": "CartPole-v1",
    "MetaPendulum-v0": "Pendulum-v1",
    "MetaMountainCar-v0": "MountainCar-v0",
    "MetaAcrobot-v0": "Acrobot-v1",
}


def fresh_rows(num_envs: int, seconds: float, xland_python: str | None = None) -> None:
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
        family = family_of(gym.make(family_id, disable_env_checker=True))
        if getattr(family, "variant_fields", ()):  # a level bank: built once per process, not timed
            print(f"({env_id}: level bank of train layouts built in {family.bank.build('train'):.1f} s)")
        fresh = vector(make(), seconds)
        pinned_envs = make()
        pinned_envs.set_attr("task", family.sample(np.random.default_rng(0), num_envs, split="train"))
        pinned = vector(pinned_envs, seconds)
        print(f"| {env_id} | {pinned:,.0f} | {fresh:,.0f} | {fresh / peer:.2f} |", flush=True)
    found = xland(xland_python, num_envs, seconds)
    if found is not None:
        sps = found["steps_per_second"]
        name = f"XLand-MiniGrid MiniGrid-FourRooms (JAX {found['jax']}, CPU), auto-reset"
        print(f"| {name} | | {sps:,.0f} | {sps / peer:.2f} |")
    print("\n| single env (a fresh task per reset) | steps/s | Gymnasium's env, steps/s | ratio |")
    print("|---|---:|---:|---:|")
    for ours, theirs in SINGLE_PEERS.items():
        mine, reference = single(ours, seconds), single(theirs, seconds)
        print(f"| {ours} vs {theirs} | {mine:,.0f} | {reference:,.0f} | {mine / reference:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="MetaGrid-v0", help="metagym id to measure")
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096], help="batch sizes")
    parser.add_argument("--fresh", action="store_true", help="the meta-RL table: every id, fresh tasks vs pinned")
    parser.add_argument("--num-envs", type=int, default=1024, help="batch size of the --fresh table")
    parser.add_argument("--xland-python", default=None, help="a Python with xminigrid, for the XLand-MiniGrid row")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error(f"--seconds: expected a positive number, got {args.seconds}")
    if args.fresh:
        fresh_rows(args.num_envs, args.seconds, args.xland_python)
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
