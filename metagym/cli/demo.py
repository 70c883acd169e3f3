"""``metagym demo``: the main job: meta-train RL² on GridNavi, evaluate on fresh trials, plot, GIF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from metagym.agents.runs import new_run, run_config
from metagym.cli.common import CommandError, algorithm_of, trained
from metagym.cli.render import save_video, video_writer
from metagym.registration import env_kwargs_of
from metagym.replay import trial_frames

#: What ``metagym demo`` adds to its run folder.
DEMO_FILES = ("results.json", "results.csv", "results.png", "trial.gif")


def cmd_demo(args: argparse.Namespace) -> None:
    """Meta-train RL² on GridNavi, evaluate on held-out tasks, plot, render a GIF."""
    from metagym.evaluation import evaluate
    from metagym.presets import preset
    from metagym.results import table, write

    demo = preset("rl2-gridnavi")
    algorithm_of(demo.agent)
    out = Path(args.out)
    steps = demo.steps if args.steps is None else args.steps
    if steps < 1:
        raise CommandError(f"--steps: expected an integer >= 1, got {steps}")
    config = run_config(demo.agent, demo.env, steps, args.seed, demo)
    imageio = video_writer()
    trainer = new_run(config, out, args.overwrite, DEMO_FILES)
    print(f"1/3 meta-training RL² on {demo.env} for {steps:,} steps, preset {demo.name} (run folder {out})")
    trained(trainer, out, None, args.quiet, f"continue with metagym train --run-dir {out} --resume")
    print("2/3 evaluating on 210 fresh trials from GridNavi's prior (each of the 21 goals 10 times, as VariBAD)")
    result = evaluate(trainer.agent, "train", 210, args.seed, name="RL²")
    paths = write(result, out / "results.json")
    print(table(result))
    print("3/3 rendering one adaptation trial")
    from metagym.evaluation import held_out_tasks

    task = held_out_tasks(config.env_id, "train", 1, args.seed, env_kwargs_of(config))[0]
    gif = out / "trial.gif"
    save_video(imageio, gif, trial_frames(trainer.agent, task, args.seed), "--out")
    print("results: " + ", ".join(str(p) for p in paths) + f"\nGIF of one trial: {gif}")


def add_parser(sub: Any) -> None:
    """``demo``."""
    demo = sub.add_parser("demo", help="the main job: meta-train, evaluate, plot, GIF")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the rl2-gridnavi preset's)")
    demo.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--overwrite", action="store_true", help="start over in an --out folder that holds a run")
    demo.set_defaults(run=cmd_demo, renamed={"run_dir": "out"})
