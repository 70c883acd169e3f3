"""Draw one picture per family for the docs' catalogue (docs/families.md).

Each family id (asked of metagym, not listed here) is reset with seed 0 on a ``train`` task,
stepped a few random actions from a seeded action space, and its ``rgb_array`` frame is written
to ``docs/images/families/<id>.png``. Families whose extra is missing (MuJoCo) are skipped with
a note.

    MUJOCO_GL=egl SDL_VIDEODRIVER=dummy python scripts/family_pictures.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio

import metagym


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs" / "images" / "families")
    parser.add_argument("--steps", type=int, default=6, help="random steps before the picture")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id in metagym.env_ids(trials=False):
        try:
            env = gym.make(env_id, render_mode="rgb_array")
        except ImportError as error:
            print(f"{env_id}: skipped ({error})")
            continue
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(args.steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
        frame = env.render()
        path = args.out / f"{env_id}.png"
        iio.imwrite(path, frame)
        print(f"{env_id}: {frame.shape[1]}x{frame.shape[0]} -> {path}")
        env.close()


if __name__ == "__main__":
    main()
