"""``metagym sweep``: train and score every (family, agent, seed), locally or on Ray (:mod:`metagym.agents.sweep`)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from metagym.cli.common import DEVICE_HELP, CommandError, algorithm_of, check_backend_arg, device_arg
from metagym.cli.train import preset_elsewhere
from metagym.registration import check_family_id


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train and evaluate every (env, agent, seed); write the summary (metagym.agents.sweep)."""
    from metagym.agents.sweep import RECURRENT_PPO, Run, SweepFailed, applies, summarize, sweep, sweep_agents, untrained
    from metagym.presets import preset

    check_backend_arg(args.backend)
    for env_id in args.env:
        check_family_id(env_id, "--env")
    if args.preset is not None:
        chosen = preset(args.preset)  # an ArgumentError naming the shipped presets
        for env_id in dict.fromkeys(args.env):
            if env_id != chosen.env:
                print(f"note: {preset_elsewhere(chosen, env_id)}", file=sys.stderr)
    allowed = sweep_agents()
    for agent in args.agents:
        if agent not in allowed:
            raise CommandError(f"--agents: unknown agent {agent!r}; allowed: {', '.join(allowed)}")
        if agent != RECURRENT_PPO and not untrained(agent):
            algorithm_of(agent, "--agents")
        if agent == RECURRENT_PPO and importlib.util.find_spec("sb3_contrib") is None:
            raise CommandError("--agents: recurrentppo needs the agents extra: pip install 'metagym-rl[agents]'")
    steps = sweep_steps(args.steps, args.agents)
    device = device_arg(args.device)
    if args.tasks < 1:
        raise CommandError(f"--tasks: expected an integer >= 1, got {args.tasks}")
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        raise CommandError(f"--seeds: expected distinct integers >= 0, got {args.seeds}")
    runs: list[Run] = []
    for env_id in dict.fromkeys(args.env):
        for agent in dict.fromkeys(args.agents):
            if not applies(agent, env_id):
                print(f"sweep: {agent} does not apply to {env_id}; skipped")
            elif not untrained(agent):
                runs += [
                    Run(env_id, agent, seed, steps.get(agent), args.preset, args.tasks, device) for seed in args.seeds
                ]
            else:  # a classic baseline: nothing to train, one run
                runs.append(Run(env_id, agent, None, None, args.preset, args.tasks))
    if not runs:
        raise CommandError("--agents: none of them applies to any --env; nothing to run")
    out = Path(args.out)
    print(f"sweep: {len(runs)} runs on the {args.backend} backend, in {out}")
    failed = None
    results: list[Any]
    try:
        results = list(sweep(runs, out, args.backend, args.address, progress=True))
    except SweepFailed as error:
        failed, results = error, error.results
    finished = [(run, result) for run, result in zip(runs, results, strict=True) if result is not None]
    if finished:
        summarize([run for run, _ in finished], [result for _, result in finished], out)
        print((out / "summary.md").read_text(), end="")
        print(f"wrote {out / 'summary.md'}, {out / 'summary.csv'} and {out / 'summary.png'}")
    if failed is not None:
        raise CommandError(f"{failed} (the summary covers the others; the same command retries the failed runs)")


def sweep_steps(values: list[str] | None, agents: list[str]) -> dict[str, int]:
    """``--steps N [AGENT=N ...]``: steps for every agent, then per-agent overrides."""
    steps: dict[str, int] = {}
    for value in sorted(values or [], key=lambda v: "=" in v):  # N first, then the overrides
        agent, _, count = value.rpartition("=")
        if agent and agent not in agents:
            raise CommandError(f"--steps: {value!r} names {agent!r}, not one of --agents ({', '.join(agents)})")
        try:
            number = int(count)
        except ValueError:
            number = 0
        if number < 1:
            raise CommandError(f"--steps: expected N or AGENT=N with an integer N >= 1, got {value!r}")
        for name in [agent] if agent else agents:
            steps[name] = number
    return steps


def add_parser(sub: Any) -> None:
    """``sweep``."""
    from metagym.agents.sweep import sweep_agents

    sw = sub.add_parser("sweep", help="train and score every (family, agent, seed), locally or on Ray")
    sw.add_argument("--env", nargs="+", required=True, help="family ids")
    sw.add_argument(
        "--agents",
        nargs="+",
        required=True,
        help=f"agents: {', '.join(sweep_agents())} (recurrentppo: SB3-contrib's; the last ones are untrained)",
    )
    sw.add_argument("--seeds", nargs="+", type=int, required=True, help="training seeds")
    sw.add_argument(
        "--steps",
        nargs="+",
        default=None,
        help="training steps per run, then AGENT=N overrides, e.g. 500000 recurrentppo=30000 (default: the preset's)",
    )
    sw.add_argument("--preset", default=None, help="a shipped preset's settings for every run")
    sw.add_argument("--tasks", type=int, default=200, help="evaluation tasks per run (default: %(default)s)")
    sw.add_argument("--backend", default="local", help="local (one process) or ray (default: %(default)s)")
    sw.add_argument("--address", default=None, help="Ray: an existing cluster's address (default: start Ray here)")
    sw.add_argument("--out", required=True, help="sweep folder: run folders, summary.csv, .md and .png")
    sw.add_argument("--device", default="cpu", help=DEVICE_HELP)
    sw.set_defaults(run=cmd_sweep)
