"""``metagym train`` and ``presets``: new and resumed runs, the tuned presets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from metagym.agents.runs import new_run, resumed_run, run_agent, run_config
from metagym.cli.common import (
    DEVICE_HELP,
    CommandError,
    agent_registry,
    agent_spec,
    algorithm_of,
    device_arg,
    given_options,
    say_config_note,
    trainable_agent,
    trained,
)
from metagym.errors import ArgumentError
from metagym.registration import check_family_id

#: ``metagym train`` defaults for a new run (options left unset on ``--resume`` keep the run's own).
TRAIN_DEFAULTS = {"agent": "rl2", "env": "MetaGrid-GridNavi-v0", "steps": 1_000_000, "seed": 0}


def cmd_train(args: argparse.Namespace) -> None:
    run_dir = Path(args.run_dir)
    if args.checkpoint_seconds is not None and not 0 <= args.checkpoint_seconds < float("inf"):  # also nan
        raise CommandError(f"--checkpoint-seconds: expected a finite number >= 0, got {args.checkpoint_seconds}")
    if args.resume:
        trainer = resumed_trainer(args, run_dir)
    else:
        chosen = apply_preset(args)
        check_family_id(args.env, "env")
        if args.steps < 1:
            raise CommandError(f"--steps: expected an integer >= 1, got {args.steps}")
        algorithm_of(args.agent)  # a missing extra is named before anything else
        # Everything is checked and built before anything is written: a failing command leaves the folder as it was.
        config = run_config(args.agent, args.env, args.steps, args.seed, chosen, given_options(args))
        trainer = new_run(config, run_dir, args.overwrite, device=device_arg(args.device))
        if trainer.algorithm.note:
            print(f"note: {trainer.algorithm.note}", file=sys.stderr)
    trained(trainer, run_dir, args.checkpoint_seconds, args.quiet, "continue with --resume")
    print(f"trained {trainer.global_step:,} steps; run folder {run_dir}")


def preset_elsewhere(chosen: Any, env_id: str) -> str:
    """What a preset tuned on one family does on another: its settings are used as given."""
    return (
        f"preset {chosen.name} was tuned on {chosen.env}; its settings (and its {chosen.steps:,} steps, "
        f"unless --steps says) are used on {env_id} as they are, and its expected score does not apply"
    )


def apply_preset(args: argparse.Namespace) -> Any:
    """Fill ``--agent``, ``--env`` and ``--steps`` from ``--preset`` (or the shipped preset for the
    chosen agent and family, whose settings are then the defaults); return the preset used."""
    from metagym.presets import default_for, preset

    chosen = preset(args.preset) if args.preset else None
    if chosen is not None and args.agent is not None and args.agent != chosen.agent:
        raise CommandError(f"--agent: preset {chosen.name} trains {chosen.agent}, got {args.agent}")
    args.agent = args.agent or (chosen.agent if chosen else TRAIN_DEFAULTS["agent"])
    args.env = args.env or (chosen.env if chosen else TRAIN_DEFAULTS["env"])
    if chosen is not None and args.env != chosen.env:
        print(f"note: {preset_elsewhere(chosen, args.env)}", file=sys.stderr)
    if chosen is None and (chosen := default_for(args.agent, args.env)) is not None:
        print(f"settings of preset {chosen.name}, the defaults for {args.agent} on {args.env} (metagym presets)")
    if args.steps is None:
        args.steps = chosen.steps if chosen is not None else TRAIN_DEFAULTS["steps"]
    if args.seed is None:
        args.seed = TRAIN_DEFAULTS["seed"]
    return chosen


def cmd_presets(args: argparse.Namespace) -> None:
    """Print every shipped preset: name, env, agent, steps, expected score, minutes."""
    from metagym.presets import presets

    if args.markdown and args.verbose:
        raise CommandError("--verbose: not with --markdown (the table has no room for how each preset was chosen)")
    rows: list[tuple[str, ...]] = [("preset", "env", "agent", "steps", "expected score", "reference", "minutes")]
    for p in presets().values():
        reference = ", ".join(f"{k} {v:g}" for k, v in p.expected["references"].items())
        rows.append((p.name, p.env, p.agent, f"{p.steps:,}", p.score, reference, f"{p.expected['minutes']:g}"))
    if args.markdown:  # the README's results table is this output
        papers = [p.expected["paper"] for p in presets().values()]
        body = [(f"`{r[0]}`", f"`{r[1]}`", *r[2:], paper) for r, paper in zip(rows[1:], papers, strict=True)]
        rows = [(*rows[0], "paper"), tuple("---" for _ in range(len(rows[0]) + 1)), *body]
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if args.verbose:
        for p in presets().values():
            e = p.expected
            print(f"\n{p.name}: {p.description}\n  {e['metric']}, scored on {e['scored_on']}")
            print(f"  paper: {e['paper']}\n  selected on: {e['selected_on']}\n  measured with: {e['command']}")


def resumed_trainer(args: argparse.Namespace, run_dir: Path) -> Any:
    """The trainer of the run in ``run_dir``, as it was saved; ``--steps`` may extend it."""
    if args.overwrite:
        raise CommandError("--overwrite: not with --resume (one continues the run, the other deletes it)")
    names = ("preset", "agent", "env", "seed", *(o.name for o in args.agent_options))
    fixed = [name for name in names if getattr(args, name) is not None]
    if fixed:
        flag = "--" + fixed[0].replace("_", "-")
        raise CommandError(
            f"{flag}: a resumed run keeps its own settings; only --steps and --checkpoint-seconds may be given"
        )
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps: expected an integer >= 1, got {args.steps}")
    algorithm_of(run_agent(run_dir), "--run-dir")  # the run says which agent trained it
    trainer = resumed_run(run_dir, args.steps, device_arg(args.device))
    say_config_note(run_dir, trainer.saved_config, trainer.config.agent)  # once the checkpoint is known to be good
    return trainer


def _typed(option: Any) -> Any:
    """``option.parse`` for argparse: a bad value is reported as ``argument --flag: <why>``."""

    def parse(text: str) -> Any:
        try:
            return option.parse(text)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _train_options(argv: list[str]) -> tuple[str | None, list[Any]]:
    """For ``metagym train``: the agent it trains (``--agent``, the preset's, the resumed run's,
    or the default) and its config options; (None, []) where that is not known yet (the
    command then names what is wrong)."""
    from metagym.agents.common.settings import options

    scan = argparse.ArgumentParser(add_help=False)
    for flag in ("--agent", "--preset", "--run-dir", "--import"):
        scan.add_argument(flag)
    scan.add_argument("--resume", action="store_true")
    scan.add_argument("command", nargs="?")
    known, _ = scan.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    if known.command != "train":
        return None, []
    if known.agent is not None and not known.resume:  # named before anything else is read, --help included
        trainable_agent(known.agent)
    try:
        if known.resume:
            name = run_agent(known.run_dir) if known.run_dir else None
        elif known.agent:
            name = known.agent
        elif known.preset:
            from metagym.presets import preset

            name = preset(known.preset).agent
        else:
            name = str(TRAIN_DEFAULTS["agent"])
        if name is None:
            return None, []
        spec = agent_spec(name)
        return name, options(algorithm_of(name).Config, spec.kwargs)
    except CommandError:
        if known.agent is not None and not known.resume:  # the agent asked for cannot load: say so, not a flag
            raise
        return None, []
    except (ArgumentError, ImportError):  # the command, once parsed, names what is wrong
        return None, []


def add_parser(sub: Any, agent_options: list[Any] | None = None, agent: str | None = None) -> None:
    """``presets`` and ``train`` (with ``agent``'s config fields, ``agent_options``, as options)."""
    presets_parser = sub.add_parser("presets", help="list the tuned training presets and what they score")
    presets_parser.add_argument("--verbose", action="store_true", help="also where each number came from")
    presets_parser.add_argument("--markdown", action="store_true", help="the table as Markdown (the README's)")
    presets_parser.set_defaults(run=cmd_presets)

    train = sub.add_parser("train", help="meta-train an agent on a task family")
    d = TRAIN_DEFAULTS
    train.add_argument(
        "--preset", help="a tuned setting (metagym presets): agent, env, steps and config; options override it"
    )
    trained_agents = [n for n in agent_registry().agent_names() if agent_registry().agent_spec(n).trained]
    train.add_argument("--agent", help=f"one of {', '.join(trained_agents)} (default: {d['agent']})")
    train.add_argument("--env", help=f"family id (default: {d['env']})")
    train.add_argument(
        "--steps", type=int, help=f"environment steps (default: {d['steps']}); with --resume, extends the run to this"
    )
    train.add_argument("--seed", type=int, help=f"root seed (default: {d['seed']})")
    train.add_argument("--run-dir", required=True, help="folder for config, logs and checkpoints")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir where it stopped")
    train.add_argument(
        "--overwrite", action="store_true", help="start over in a --run-dir that holds a run (deletes its checkpoint)"
    )
    train.add_argument(
        "--checkpoint-seconds",
        type=float,
        help="seconds between checkpoints (default: 120; a resumed run keeps its own)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--device", default="cpu", help=DEVICE_HELP)
    options = list(agent_options or [])
    group = train.add_argument_group(
        f"options of --agent {agent}" if agent else "agent options",
        None if agent else "each agent's config fields are options: metagym train --agent NAME --help lists them",
    )
    for option in options:
        group.add_argument(
            option.flag, dest=option.name, type=_typed(option), default=None, metavar=option.metavar, help=option.help
        )
    train.set_defaults(run=cmd_train, agent_options=options)
