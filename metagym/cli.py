"""The ``metagym`` command: list, train, evaluate, render, demo.

Agents are imported only by the commands that need them, so ``metagym list`` stays light.
Every bad argument ends the command with one line naming it and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np

import metagym
from metagym.backends import BACKENDS
from metagym.errors import error_line
from metagym.evaluation import TASKS_PER_BLOCK
from metagym.registration import check_family_id, env_kwargs_of, family_of
from metagym.runs import new_run, resumed_run, run_agent, run_config


class CommandError(Exception):
    """A bad argument: printed as one line, exit status 2."""


def _registry() -> Any:
    """metagym.agents.registry (torch-free), or a CommandError if the package lacks it."""
    from metagym.agents import registry

    return registry


def agent_spec(name: str, flag: str = "--agent") -> Any:
    try:
        return _registry().agent_spec(name, flag)
    except ValueError as error:
        raise CommandError(str(error)) from None


def algorithm_of(name: str, flag: str = "--agent") -> Any:
    """The Algorithm class of trained agent ``name``; a CommandError naming a missing extra."""
    from metagym.agents.common.trainer import algorithm_class

    spec = agent_spec(name, flag)
    try:
        return algorithm_class(spec)
    except ImportError as error:
        raise CommandError(f"{flag}: {error}") from None


def trainable_agent(name: str, flag: str = "--agent") -> str:
    """``name`` if it is a registered agent that trains; else a CommandError naming ``flag`` and
    the agents that do (an untrained baseline says where it is scored instead)."""
    registry = _registry()
    trained = [n for n in registry.agent_names() if registry.agent_spec(n).kind != "baseline"]
    if name in trained:
        return name
    if name in registry.agent_names():
        raise CommandError(
            f"{flag}: {name} is an untrained baseline, there is nothing to train (metagym evaluate --compare "
            f"{name} scores it beside a run); trainable agents: {', '.join(trained)}"
        )
    raise CommandError(f"{flag}: unknown agent {name!r}; trainable agents: {', '.join(trained)}")


def title_of(name: str) -> str:
    """How an agent is named in tables and plot legends (its registered title)."""
    return _registry().agent_spec(name).title if name in _registry().agent_names() else name


#: Ids registered before ``--import`` ran (what is registered after is the user's).
_BEFORE_IMPORTS: set[str] = set()


def user_env_ids() -> list[str]:
    """Family ids that ``--import``ed modules registered (their trial ids left out)."""
    return [i for i in gym.registry if i not in _BEFORE_IMPORTS and "-Trial-" not in i]


def cmd_list(args: argparse.Namespace) -> None:
    """Print every family (metagym's and those ``--import`` registered), then every agent."""
    for env_id in [*metagym.env_ids(trials=False), *user_env_ids()]:
        try:
            family = family_of(gym.make(env_id, disable_env_checker=True))
        except (ImportError, gym.error.DependencyNotInstalled) as error:  # an extra, or OpenGL, is missing
            print(f"{env_id}  (unavailable: {error})")
            continue
        except TypeError:  # a user's id that is not a metagym family
            continue
        except Exception as error:  # a user's family that fails to build is listed, not fatal
            if env_id not in user_env_ids():
                raise
            print(f"{env_id}  (unavailable: making it raised {error_line(error)})")
            continue
        print(f"{env_id}  (trial: {metagym.trial_id(env_id)}, {family.episodes_per_trial} episodes per trial)")
        print("  " + family.describe().replace("\n", "\n  "))
    core = set(metagym.env_ids(trials=False))
    metaworld = [i for i in metagym.env_ids(trials=False, metaworld=True) if i not in core]
    print(
        f"\nMeta-World (the metaworld extra; each id builds its benchmark's tasks when made, each has a -Trial- id):"
        f"\n  {', '.join(metaworld)}"
    )
    registry = _registry()
    print("\nagents (metagym train --agent NAME; NAME --help lists its options):")
    for name in registry.agent_names():
        spec = registry.agent_spec(name)
        print(f"  {name:<12} {spec.kind:<9} {spec.title}  ({spec.entry_point})")


#: What ``metagym demo`` adds to its run folder.
DEMO_FILES = ("results.json", "results.csv", "results.png", "trial.gif")


#: ``--device``'s help (train, evaluate, render, sweep).
DEVICE_HELP = "cpu, cuda, or auto (cuda where torch sees a GPU); any run loads on any device (default: %(default)s)"

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
        check_family_id(args.env, "--env")
        if args.steps < 1:
            raise CommandError(f"--steps: expected an integer >= 1, got {args.steps}")
        algorithm_of(args.agent)  # a missing extra is named before anything else
        # Everything is checked and built before anything is written: a failing command leaves the folder as it was.
        try:
            config = run_config(args.agent, args.env, args.steps, args.seed, chosen, given_options(args), "--agent")
        except ValueError as error:
            raise CommandError(as_flag(str(error))) from None
        trainer = new_run(config, run_dir, args.overwrite, "--run-dir", device=device_arg(args.device))
        if trainer.algorithm.note:
            print(f"note: {trainer.algorithm.note}", file=sys.stderr)
    trained(trainer, run_dir, args.checkpoint_seconds, args.quiet, "continue with --resume")
    print(f"trained {trainer.global_step:,} steps; run folder {run_dir}")


def as_flag(message: str) -> str:
    """A config error (``seed: ...``) as the option that sets it (``--seed: ...``)."""
    name, colon, rest = message.partition(":")
    flags = {"env_id": "--env", "total_steps": "--steps", "env": "--env", "steps": "--steps"}
    if colon and name.isidentifier():
        return f"{flags.get(name, '--' + name.replace('_', '-'))}:{rest}"
    return message


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The agent's config options given on the command line."""
    return {o.name: getattr(args, o.name) for o in args.agent_options if getattr(args, o.name) is not None}


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train and evaluate every (env, agent, seed); write the summary (metagym.sweep)."""
    from metagym.presets import preset
    from metagym.sweep import RECURRENT_PPO, Run, SweepFailed, applies, summarize, sweep, sweep_agents, untrained

    check_backend_arg(args.backend)
    for env_id in args.env:
        check_family_id(env_id, "--env")
    if args.preset is not None:
        chosen = preset(args.preset)  # a ValueError naming the shipped presets
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
    try:
        trainer = resumed_run(run_dir, args.steps, device_arg(args.device))
    except ValueError as error:
        raise CommandError(str(error).replace("steps: ", "--steps: ", 1)) from None
    say_config_note(run_dir, trainer.saved_config, trainer.config.agent)  # once the checkpoint is known to be good
    return trainer


def trained(trainer: Any, run_dir: Path, checkpoint_seconds: float | None, quiet: bool, hint: str) -> None:
    """Run ``trainer``; an interrupt or a full disk ends the command with one line, not a traceback."""
    from metagym.agents.common.runlog import Interrupted

    try:
        trainer.run(checkpoint_seconds=checkpoint_seconds, progress=not quiet)
    except Interrupted as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving: another Ctrl-C may not cut the message short
        if stop.saved:
            print(f"\ninterrupted: update {stop.update} saved in {run_dir}; {hint}", file=sys.stderr)
        else:
            print(f"\ninterrupted twice: stopped at once; the last checkpoint in {run_dir} is kept", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as error:  # disk full, folder removed or made read-only under the run
        where = error.filename or run_dir
        reason = error.strerror or error
        kept = "the run is as its last checkpoint left it" if (run_dir / "checkpoint.pt").exists() else "no run is left"
        raise CommandError(f"--run-dir: cannot write {where} ({reason}); {kept}") from None


def load_agent(run_dir: str, device: str = "cpu") -> Any:
    from metagym.runs import load_run

    algorithm_of(run_agent(run_dir), "--run-dir")  # a missing extra, named
    agent = load_run(run_dir, device_arg(device))
    say_config_note(Path(run_dir), agent.config, agent.config.agent)
    return agent


def say_config_note(run_dir: Path, saved: Any, agent: str) -> None:
    """Print, in one line each, where a run's config.json or agent.txt disagrees with its
    checkpoint (its config ``saved``, its agent's name ``agent``)."""
    from metagym.agents.common.trainer import agent_note, config_note

    for note in (agent_note(run_dir, agent), config_note(run_dir, saved)):
        if note:
            print(f"note: {note}", file=sys.stderr)


def device_arg(device: str) -> str:
    """``--device``, resolved to ``cpu`` or ``cuda``; a CommandError naming it otherwise."""
    from metagym.agents.common.trainer import resolve_device

    try:
        return resolve_device(device)
    except ValueError as error:
        raise CommandError(f"--{error}") from None


def agent_names(runs: list[str]) -> list[str]:
    """Legend names: the agent (``RL²``, ``MAML``), with the run folder where two runs share one."""
    kinds = [title_of(run_agent(run)) for run in runs]
    pairs = zip(kinds, runs, strict=True)
    return [kind if kinds.count(kind) == 1 else f"{kind} ({Path(run).name})" for kind, run in pairs]


def gradient(agent: Any) -> bool:
    """Whether ``agent`` adapts by gradient steps (its declared ``kind``)."""
    return getattr(agent, "kind", "memory") == "gradient"


def _with_inner_lr(agent: Any, inner_lr: float) -> Any:
    """The gradient agent with fine-tuning step ``inner_lr`` (evaluation only; the run is unchanged)."""
    agent.config = dataclasses.replace(agent.config, inner_lr=inner_lr)
    return agent


def _ours(path: Path) -> bool:
    """Whether ``path`` is an evaluation output metagym wrote (so replacing it loses nothing else)."""
    json_path = path.with_suffix(".json")
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return False
    if not (isinstance(data, dict) and {"episode_returns", "references", "experience_episodes"} <= set(data)):
        return False
    if path.suffix == ".csv":
        with path.open() as handle:
            return handle.readline().startswith("index,experience_episodes,")
    return True


def check_folder_of(out: Path, flag: str) -> None:
    """Refuse an output path under a file (a missing folder is created when the output is written)."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CommandError(f"{flag}: {parent} is a file, not a folder; nothing was written")
            return


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


def check_backend_arg(backend: str) -> None:
    """Refuse a ``--backend`` that is not one of metagym's backends."""
    if backend not in BACKENDS:
        raise CommandError(f"--backend: {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")


def check_out(out: Path) -> None:
    """Refuse an ``--out`` whose JSON, CSV or PNG would replace a file evaluate did not write."""
    check_folder_of(out, "--out")
    if out.suffix.lower() != ".json":
        raise CommandError(f"--out: expected a .json path (a .csv and a .png go beside it), got {str(out)!r}")
    for path in (out, out.with_suffix(".csv"), out.with_suffix(".png")):
        if path.exists() and not (path.is_file() and _ours(path)):
            raise CommandError(f"--out: {path} exists and is not a metagym evaluation output; nothing was written")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from metagym.agents.classic import baseline_for
    from metagym.evaluation import evaluate, evaluate_policy, family_for
    from metagym.results import table, write

    if args.tasks < 1:
        raise CommandError(f"--tasks: expected an integer >= 1, got {args.tasks}")
    if args.tasks_per_block < 1:
        raise CommandError(f"--tasks-per-block: expected an integer >= 1, got {args.tasks_per_block}")
    if args.seed < 0:
        raise CommandError(f"--seed: expected an integer >= 0, got {args.seed}")
    check_backend_arg(args.backend)
    check_out(Path(args.out))
    from metagym.agents.registry import agent_names as registered

    baselines = registered("baseline")
    runs, compared = [args.run_dir], []  # compared: classic baselines by name, scored on the same tasks
    for item in args.compare:
        if (Path(item) / "checkpoint.pt").is_file():
            runs.append(item)
        elif item in baselines:
            compared.append(item)
        else:
            raise CommandError(
                f"--compare: {item!r} is neither a run folder (no checkpoint.pt in it) nor a baseline "
                f"({', '.join(baselines)})"
            )
    agents = [load_agent(run, args.device) for run in runs]  # every run loads before any is evaluated
    if args.inner_lr is not None:
        if not args.inner_lr > 0:  # also refuses nan
            raise CommandError(f"--inner-lr: expected a number > 0, got {args.inner_lr}")
        for run, agent in zip(runs, agents, strict=True):
            if not gradient(agent):
                raise CommandError(f"--inner-lr: {run} holds a memory agent, which takes no gradient steps")
        agents = [_with_inner_lr(agent, args.inner_lr) for agent in agents]
    env_id, env_kwargs = agents[0].config.env_id, env_kwargs_of(agents[0].config)
    for run, agent in zip(runs[1:], agents[1:], strict=True):  # one plot, one family env
        if (agent.config.env_id, env_kwargs_of(agent.config)) != (env_id, env_kwargs):
            raise CommandError(
                f"--compare: {run} trains on {agent.config.env_id} {env_kwargs_of(agent.config)}, "
                f"{args.run_dir} on {env_id} {env_kwargs}; runs compared must share the family env"
            )
    family = family_for(env_id, env_kwargs)
    if args.split is not None:
        family.check_split(args.split)
    # Baselines play trials as long as the first run's (e.g. 100-pull bandits).
    trials = getattr(agents[0].config, "episodes_per_trial", None) or family.episodes_per_trial
    policies = [baseline_for(name, family, trials) for name in compared]
    for name, policy in zip(compared, policies, strict=True):
        if policy is None:
            raise CommandError(f"--compare: the baseline {name} does not apply to {env_id}")
    results = []
    how = {"backend": args.backend, "address": args.address, "tasks_per_block": args.tasks_per_block}
    for run, agent, name in zip(runs, agents, agent_names(runs), strict=True):
        results.append(
            evaluate(agent, args.split, args.tasks, args.seed, name, args.deterministic, progress=not args.quiet, **how)
        )
        results[-1] = dataclasses.replace(results[-1], run_dir=str(run))
    for policy in policies:
        assert policy is not None
        results.append(
            evaluate_policy(policy, env_id, args.split, args.tasks, args.seed, trials, env_kwargs=env_kwargs, **how)
        )
    if results[0]["task_sampling"].get("remainder"):
        how = results[0]["task_sampling"]
        print(
            f"note: {args.tasks} tasks are not a multiple of the {how['distinct_tasks']} tasks of the split: "
            f"each task {how['repeats']} times, plus {how['remainder']} drawn without replacement",
            file=sys.stderr,
        )
    try:
        paths = write(results[0], args.out, compare=results[1:])
    except OSError as error:
        where = error.filename or args.out
        raise CommandError(f"--out: cannot write {where} ({error.strerror or error})") from None
    for result in results:
        print(table(result))
    print("wrote " + ", ".join(str(p) for p in paths))


def cmd_render(args: argparse.Namespace) -> None:
    from metagym.evaluation import family_for, held_out_tasks
    from metagym.render import Window

    agent = load_agent(args.run_dir, args.device)
    if args.results is not None:  # the results say which trial: a seed or split beside them would be ignored
        for flag, value in (("--seed", args.seed), ("--split", args.split)):
            if value is not None:
                raise CommandError(f"{flag}: not with --results (the results say how their trials were drawn)")
    args.seed = 0 if args.seed is None else args.seed
    if args.seed < 0:
        raise CommandError(f"--seed: expected an integer >= 0, got {args.seed}")
    if args.task_index < 0:
        raise CommandError(f"--task-index: expected an integer >= 0, got {args.task_index}")
    if not args.human and Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        raise CommandError(f"--out: expected a .gif or .mp4 file, got {args.out!r}")
    if not args.human:
        check_folder_of(Path(args.out), "--out")
    if args.every is not None and args.every < 1:
        raise CommandError(f"--every: expected an integer >= 1, got {args.every}")
    if args.results is not None:
        frames = replayed(agent, Path(args.results), args.task_index, args.run_dir)
    else:
        config = agent.config
        task = held_out_tasks(config.env_id, args.split, args.task_index + 1, args.seed, env_kwargs_of(config))[
            args.task_index
        ]
        frames = play_adaptation(agent, task, args.seed) if gradient(agent) else play_trial(agent, task, args.seed)
    # Long episodes (Meta-World's 500 steps, CartPole's) show at most about 100 frames each.
    every = args.every or -(-family_for(agent.config.env_id, env_kwargs_of(agent.config)).horizon // 100)
    frames = frames[::every]
    if args.human:
        window = Window("metagym render", 8)
        for frame in frames:
            window.show(frame)
        window.close()
        return
    out = Path(args.out)
    save_video(video_writer(), out, frames, "--out")
    print(f"wrote {out} ({len(frames)} frames{f', every {every} steps' if every > 1 else ''})")


def save_video(imageio: Any, out: Path, frames: list[Any], flag: str) -> None:
    """Write ``frames`` as a GIF or MP4 (by suffix) so that ``out`` is replaced whole or not at
    all: a GIF is encoded in memory, then written atomically; an MP4 (ffmpeg writes a file) goes
    to a temp file beside ``out`` that is renamed over it. A full disk ends in one line naming ``flag``."""
    import io

    from metagym.atomic import replaced_atomically

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp{out.suffix}")
    try:
        if out.suffix.lower() == ".gif":
            buffer = io.BytesIO()
            imageio.mimsave(buffer, frames, format="GIF", duration=125, loop=0)
            with replaced_atomically(out, binary=True) as handle:
                handle.write(buffer.getbuffer())
        else:
            # Even sides (H.264's 4:2:0) and no rescaling to 16-pixel blocks (imageio's default warns and blurs).
            # ffmpeg's log stays quiet: its failure is reported here, in one line.
            imageio.mimsave(temp, [pad_even(f) for f in frames], fps=8, macro_block_size=2, ffmpeg_log_level="quiet")
            # ffmpeg can stop on a full disk without an error reaching imageio: a video that
            # does not read back whole, every frame, never replaces ``out``.
            written = video_frames(imageio, temp)
            if written != len(frames):
                raise OSError(errno.ENOSPC, f"the video written reads back {written} of {len(frames)} frames")
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, out)
    except OSError as error:  # ffmpeg's own errors carry its whole log: its first line says enough
        reason = str(error.strerror or error).strip().splitlines()[0]
        if out.suffix.lower() != ".gif" and shutil.disk_usage(out.parent).free < 1 << 20:
            reason = f"the video encoder stopped: {os.strerror(errno.ENOSPC)}"  # ffmpeg's pipe broke on a full disk
        raise CommandError(f"{flag}: cannot write {out} ({reason}); nothing was replaced") from None
    finally:
        temp.unlink(missing_ok=True)


def video_frames(imageio: Any, path: Path) -> int:
    """How many frames the video at ``path`` holds, as read back; 0 where it cannot be read."""
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            return sum(1 for _ in reader)
        finally:
            reader.close()
    except Exception:
        return 0


def replayed(agent: Any, path: Path, index: int, run_dir: str) -> list[Any]:
    """Frames of the trial that the evaluation in ``path`` scored as task ``index``, of the run in
    ``run_dir`` (results of another run folder are refused)."""
    from metagym.evaluation import scored_trial

    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"--results: cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
    if not isinstance(results, dict) or not {"tasks", "seed", "tasks_per_block", "num_tasks"} <= set(results):
        raise CommandError(f"--results: {path} is not the JSON of a metagym evaluation")
    scored = results.get("run_dir")
    if scored is not None and Path(str(scored)).resolve() != Path(run_dir).resolve():
        raise CommandError(f"--results: they score the run in {scored}, not {run_dir} (evaluate this run to render it)")
    try:
        task, seed, actions, recorded = scored_trial(agent, results, index)
    except ValueError as error:
        message = str(error).replace("task_index: ", "--task-index: ").replace("results: ", "--results: ")
        raise CommandError(message) from None
    score = f": scored {sum(recorded):+.2f}" if recorded else ""
    return play_trial(agent, task, seed, actions, title=f"task {index} of {path.name}{score}")


def video_writer() -> Any:
    """imageio's v2 API, or a CommandError saying which extra provides it."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise CommandError("writing GIF/MP4 needs the video extra: pip install 'metagym-rl[video]'") from None
    return imageio


def pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame to even sides (video encoders need them)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def short(task: Any) -> str:
    """A task's non-default fields, compactly (``goal=(4, 2)``), for captions."""
    fields = dataclasses.fields(task)
    shown = [f for f in fields if f.name != "level" and getattr(task, f.name) not in (0, "", None)]
    parts = []
    for f in shown or fields:
        value = getattr(task, f.name)
        if isinstance(value, float):
            value = round(value, 3)
        elif isinstance(value, tuple):
            value = tuple(round(v, 3) if isinstance(v, float) else v for v in value)
        parts.append(f"{f.name}={value}")
    return ", ".join(parts)


def play_trial(
    agent: Any, task: Any, seed: int, actions: list[Any] | None = None, title: str | None = None
) -> list[Any]:
    """One trial of ``agent`` on ``task``, as captioned frames (the hidden task shown); with
    ``actions``, the trial those actions play (a scored trial replayed)."""
    import torch

    from metagym.render import caption

    torch.manual_seed(seed)
    trial_env = metagym.trial_id(agent.config.env_id)
    config = agent.config
    env = gym.make(
        trial_env, render_mode="rgb_array", episodes_per_trial=config.episodes_per_trial, **env_kwargs_of(config)
    )
    k = env.get_wrapper_attr("episodes_per_trial")
    obs, _ = env.reset(seed=seed, options={"task": task})
    state, start, episode, running, total = None, np.ones(1, dtype=bool), 0, 0.0, 0.0
    frames: list[Any] = []
    terminated = False
    believes = callable(getattr(agent, "reward_map", None))  # an explicit belief to show (VariBAD)
    while not terminated:
        if actions is None or believes:  # a replay still runs the agent to follow its belief
            action, state = agent.predict(obs[None], state, start)
        step = action[0] if actions is None else actions[len(frames)]
        lines = [
            f"{title or agent.config.env_id}   episode {episode + 1}/{k}",
            f"return {running:+.2f}   trial so far {total:+.2f}",
            f"hidden task: {short(task)}",
        ]
        frame = np.asarray(env.render())
        if believes:
            frame = belief_beside(agent, state, obs, frame)
        frames.append(caption(frame, lines, size=15))
        start = np.zeros(1, dtype=bool)
        obs, reward, terminated, _, info = env.step(step)
        running, total = running + float(reward), total + float(reward)
        if "inner_return" in info:
            episode, running = episode + 1, 0.0
    return frames


def belief_beside(agent: Any, state: Any, obs: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """``frame`` with the agent's decoded belief beside it (after this step's observation): the
    probability of the goal (or of reward) per cell on a grid, the reward field (lowest to highest) in the plane;
    the agent's place circled."""
    from metagym.render import beside, heat_panel

    values = agent.reward_map(state)
    if values is None:
        return frame
    cells = values.size <= 100  # a grid's cells carry their numbers; a field's points are too small
    title = "belief: p(reward)" if cells else "belief: decoded reward"
    if getattr(agent, "belief_kind", None) == "goal":  # a distribution over the goal's cell
        title = "belief: p(goal here)"
    return beside(frame, heat_panel(values, frame.shape[0], agent.map_cell(obs), title, labels=cells))


def play_adaptation(agent: Any, task: Any, seed: int, steps: int = 3) -> list[Any]:
    """One greedy episode on ``task`` before and after each of ``steps`` adaptation steps, as frames."""
    from metagym.render import caption

    env = gym.make(agent.config.env_id, render_mode="rgb_array", **env_kwargs_of(agent.config))
    frames = []
    for k, params in enumerate(agent.adapted_params(task, steps, seed)):
        obs, _ = env.reset(seed=seed + k, options={"task": task})
        done, running = False, 0.0
        while not done:
            lines = [
                f"{agent.config.env_id}   after {k} gradient step(s)",
                f"return {running:+.2f}",
                f"hidden task: {short(task)}",
            ]
            frames.append(caption(np.asarray(env.render()), lines, size=15))
            action, _ = agent.predict(obs[None], params, None, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            running += float(reward)
            done = terminated or truncated
    return frames


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
    try:
        config = run_config(demo.agent, demo.env, steps, args.seed, demo)
    except ValueError as error:
        raise CommandError(as_flag(str(error))) from None
    imageio = video_writer()
    trainer = new_run(config, out, args.overwrite, "--out", DEMO_FILES)
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
    save_video(imageio, gif, play_trial(trainer.agent, task, args.seed), "--out")
    print("results: " + ", ".join(str(p) for p in paths) + f"\nGIF of one trial: {gif}")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line naming it (``metagym train: argument --steps:
    invalid int value: 'ten'``), exit status 2, like every other refusal; ``--help`` shows usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser(agent_options: list[Any] | None = None, agent: str | None = None) -> argparse.ArgumentParser:
    """The command's parser; ``metagym train`` takes ``agent_options`` (the fields of ``agent``'s
    config, :func:`metagym.agents.common.settings.options`) besides its own."""
    from metagym.sweep import sweep_agents

    parser = OneLineParser(prog="metagym", description="meta-RL task families, agents and evaluation")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): your own code that registers families with gymnasium.register",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="with --import: print a failing module's whole traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every task family").set_defaults(run=cmd_list)
    presets_parser = sub.add_parser("presets", help="list the tuned training presets and what they score")
    presets_parser.add_argument("--verbose", action="store_true", help="also where each number came from")
    presets_parser.add_argument("--markdown", action="store_true", help="the table as Markdown (the README's)")
    presets_parser.set_defaults(run=cmd_presets)

    train = sub.add_parser("train", help="meta-train an agent on a task family")
    d = TRAIN_DEFAULTS
    train.add_argument(
        "--preset", help="a tuned setting (metagym presets): agent, env, steps and config; options override it"
    )
    trained_agents = [n for n in _registry().agent_names() if _registry().agent_spec(n).trained]
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

    ev = sub.add_parser("evaluate", help="measure adaptation on held-out tasks")
    ev.add_argument("--run-dir", required=True, help="a trained run")
    ev.add_argument(
        "--split",
        default=None,
        help="train, validation, test or ood (default: test where the family holds tasks out, else train: its prior)",
    )
    ev.add_argument("--tasks", type=int, default=200, help="tasks, one trial each (default: %(default)s)")
    ev.add_argument("--deterministic", action="store_true", help="greedy actions (default: sampled)")
    ev.add_argument(
        "--inner-lr",
        type=float,
        default=None,
        help="gradient agents: fine-tuning step size for this evaluation, e.g. a control's, chosen on "
        "validation (default: the run's inner_lr)",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of tasks and trials (default: %(default)s)")
    ev.add_argument("--out", default="results.json", help="JSON path; a .csv and a .png go beside it")
    ev.add_argument(
        "--compare",
        nargs="*",
        default=[],
        help="more run folders, or classic baselines by name (e.g. psrl, gittins), to score on the same tasks "
        "and put on the same plot",
    )
    ev.add_argument("--backend", default="local", help="local or ray: same numbers (default: %(default)s)")
    ev.add_argument("--address", default=None, help="Ray: an existing cluster's address (default: start Ray here)")
    ev.add_argument(
        "--tasks-per-block",
        type=int,
        default=TASKS_PER_BLOCK,
        help="tasks per batch and per Ray task; the numbers depend on it (default: %(default)s)",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.add_argument("--device", default="cpu", help=DEVICE_HELP)
    ev.set_defaults(run=cmd_evaluate)

    render = sub.add_parser("render", help="render one adaptation trial to a GIF/MP4 or a window")
    render.add_argument("--run-dir", required=True, help="a trained run")
    render.add_argument("--task-index", type=int, default=0, help="which held-out task (default: %(default)s)")
    render.add_argument("--split", default=None, help="split of the task (default: as for evaluate)")
    render.add_argument("--seed", type=int, default=None, help="seed, as for evaluate (default: 0)")
    render.add_argument("--out", default="trial.gif", help="a .gif or .mp4 path (default: %(default)s)")
    render.add_argument("--human", action="store_true", help="show it live in a pygame window instead")
    render.add_argument(
        "--every",
        type=int,
        default=None,
        help="keep every k-th frame (default: 1 up to 100-step episodes, else horizon/100 rounded up)",
    )
    render.add_argument(
        "--results",
        default=None,
        help="an evaluation's JSON: replay the very trial it scored as --task-index (same task, seed, action noise)",
    )
    render.add_argument("--device", default="cpu", help=DEVICE_HELP)
    render.set_defaults(run=cmd_render)

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

    demo = sub.add_parser("demo", help="the main job: meta-train, evaluate, plot, GIF")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the rl2-gridnavi preset's)")
    demo.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--overwrite", action="store_true", help="start over in an --out folder that holds a run")
    demo.set_defaults(run=cmd_demo)
    return parser


def _typed(option: Any) -> Any:
    """``option.parse`` for argparse: a bad value is reported as ``argument --flag: <why>``."""

    def parse(text: str) -> Any:
        try:
            return option.parse(text)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _import_modules(argv: list[str]) -> None:
    """Import every ``--import MODULE`` (before the parser is built: they may register agents)."""
    scan = argparse.ArgumentParser(add_help=False)
    scan.add_argument("--import", dest="imports", action="append", default=[])
    scan.add_argument("--traceback", action="store_true")
    known = scan.parse_known_args(argv)[0]
    _BEFORE_IMPORTS.update(gym.registry)
    for module in known.imports:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is not None and module.startswith(error.name):  # the module itself is not there
                raise CommandError(f"--import: cannot import {module!r} ({error})") from None
            raise CommandError(failed_import(module, error, known.traceback)) from None
        except (Exception, SystemExit) as error:  # the user's module raised, has a syntax error, or exited
            raise CommandError(failed_import(module, error, known.traceback)) from None


def failed_import(module: str, error: BaseException, traceback: bool) -> str:
    """One line naming ``module`` and what it raised (its whole traceback first, on stderr, with
    ``--traceback``)."""
    import traceback as tb

    if traceback:
        tb.print_exception(error, file=sys.stderr)
    what = error_line(error)
    if isinstance(error, SyntaxError) and error.filename:
        what = f"SyntaxError in {error.filename}, line {error.lineno}: {error.msg}"
    if isinstance(error, SystemExit):
        what = f"it called sys.exit({error.code!r})"
    hint = "" if traceback else "; metagym --traceback --import ... shows where"
    return f"--import: {module!r} failed while importing ({what}){hint}"


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
    except (ValueError, ImportError):
        return None, []


def _refuse_unknown(unknown: list[str], args: argparse.Namespace, agent: str | None) -> None:
    """One line for an option the command does not take (an agent's option names the agent)."""
    flag = next((a.split("=")[0] for a in unknown if a.startswith("-")), unknown[0])
    if args.command == "train" and agent is not None:
        hint = f"metagym train --agent {agent} --help lists its options"
        raise CommandError(f"{flag}: not an option of --agent {agent} ({hint})")
    raise CommandError(f"{flag}: not an option of metagym {args.command} (metagym {args.command} --help)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    background: list[BaseException | None] = []  # e.g. TensorBoard's writer thread on a full disk
    hook = threading.excepthook
    threading.excepthook = lambda failed: background.append(failed.exc_value)
    values = {i + 1 for i, a in enumerate(argv) if a == "--import"}  # MODULE after --import
    command = next((a for i, a in enumerate(argv) if not a.startswith("-") and i not in values), "")
    try:
        _import_modules(argv)
        agent, agent_options = _train_options(argv)
        args, unknown = build_parser(agent_options, agent).parse_known_args(argv)
        command = args.command
        if unknown:
            _refuse_unknown(unknown, args, agent)
        args.run(args)
        if background:
            print(f"metagym {args.command}: warning: a background writer failed ({background[0]})", file=sys.stderr)
    except (CommandError, ValueError, TypeError, gym.error.DependencyNotInstalled) as error:
        print(f"metagym {command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside training (which stops between updates, above)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one may not turn this into a traceback
        print(f"\nmetagym {command}: interrupted; files it was writing are left as they were", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`metagym list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a file that cannot be read or written: disk full, read-only, removed
        where = f"{error.filename}: " if error.filename else ""
        print(f"metagym {command}: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    finally:
        threading.excepthook = hook
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
