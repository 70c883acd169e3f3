"""The ``metagym`` command: ``metagym list`` and ``metagym demo``.

``metagym demo`` is the README's main job. Until the RL² agent lands it plays one trial of a
random agent on held-out test tasks and writes it as a GIF with the per-episode returns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import metagym
from metagym.registration import family_of


def cmd_list(args: argparse.Namespace) -> int:
    """Print every family: id, trial id, horizon, splits and parameters with bounds."""
    for env_id in metagym.env_ids(trials=False):
        try:
            family = family_of(gym.make(env_id, disable_env_checker=True))
        except ImportError as error:  # an optional extra (e.g. mujoco) is not installed
            print(f"{env_id}  (unavailable: {error})")
            continue
        print(f"{env_id}  (trial: {metagym.trial_id(env_id)}, {family.episodes_per_trial} episodes per trial)")
        print("  " + family.describe().replace("\n", "\n  "))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Play ``--trials`` random-agent trials on test tasks; write a GIF of the first."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        print("metagym demo: writing GIFs needs imageio: pip install 'metagym[video]'", file=sys.stderr)
        return 2
    from metagym.render import caption

    env = gym.make(metagym.trial_id(args.env), render_mode="rgb_array")
    tasks = family_of(env).sample(np.random.default_rng(args.seed), args.trials, split="test")
    env.action_space.seed(args.seed)
    k = env.get_wrapper_attr("episodes_per_trial")
    returns = np.zeros((args.trials, k))
    frames: list[Any] = []
    for t, task in enumerate(tasks):
        env.reset(seed=args.seed + t, options={"task": task})
        episode, running, terminated = 0, 0.0, False
        while not terminated:
            if t == 0:
                lines = [f"random agent  episode {episode + 1}/{k}", f"return {running:+.1f}   goal {task.goal}"]
                frames.append(caption(np.asarray(env.render()), lines))
            _, reward, terminated, _, info = env.step(env.action_space.sample())
            running += float(reward)
            if "inner_return" in info:
                returns[t, episode] = info["inner_return"]
                episode, running = episode + 1, 0.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gif = out / "random_trial.gif"
    imageio.mimsave(gif, frames, duration=1000 / env.metadata.get("render_fps", 8), loop=0)
    print(f"random agent on {args.trials} test tasks of {args.env}: mean return per episode of the trial")
    print("| episode | " + " | ".join(str(i + 1) for i in range(k)) + " |")
    print("|---|" + "---:|" * k)
    print("| return | " + " | ".join(f"{r:+.2f}" for r in returns.mean(axis=0)) + " |")
    print(f"GIF of one trial: {gif}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metagym", description="meta-RL task families for Gymnasium")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every task family").set_defaults(run=cmd_list)
    demo = sub.add_parser("demo", help="play random-agent trials on test tasks and write a GIF")
    demo.add_argument("--env", default="MetaGrid-GridNavi-v0", help="family id (default: %(default)s)")
    demo.add_argument("--trials", type=int, default=50, help="trials to average (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.env not in metagym.env_ids(trials=False):
            parser.error(f"--env: unknown family id {args.env!r}; allowed: {', '.join(metagym.env_ids(trials=False))}")
        if args.trials < 1:
            parser.error(f"--trials: expected an integer >= 1, got {args.trials}")
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
