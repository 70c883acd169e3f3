"""The ``metagym`` command: list, train, evaluate, render, demo.

Agents are imported only by the commands that need them, so ``metagym list`` stays light.
Every bad argument ends the command with one line naming it and exit status 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import metagym
from metagym.backends import BACKENDS
from metagym.evaluation import TASKS_PER_BLOCK
from metagym.registration import check_family_id, family_of

#: Agent name -> module holding ``Config``, ``Trainer`` and ``Agent`` (with ``Agent.load``).
#: The MAML family shares one module; the agent name is its config's ``variant``.
AGENTS = {
    "rl2": "metagym.agents.rl2",
    "maml": "metagym.agents.maml",
    "fomaml": "metagym.agents.maml",
    "reptile": "metagym.agents.maml",
    "pretrained": "metagym.agents.maml",
}


#: How each agent is named in tables and plot legends.
AGENT_NAMES = {"rl2": "RL²", "maml": "MAML", "fomaml": "FO-MAML", "reptile": "Reptile", "pretrained": "pretrained"}


class CommandError(Exception):
    """A bad argument: printed as one line, exit status 2."""


#: Config fields that have their own options (--env, --steps, --seed).
COMMON_FIELDS = {"env_id", "total_steps", "seed"}


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def config_options(module: str) -> dict[str, tuple[Any, str]]:
    """Each field of the agent's ``Config`` dataclass: (type, the docstring under it).

    Read from the module's source, not imported, so building the parser needs no torch.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return {}
    tree = ast.parse(Path(spec.origin).read_text())
    kinds = {"int": int, "float": float, "str": str, "bool": _flag}
    options: dict[str, tuple[Any, str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Config")):
        for node, after in zip(cls.body, cls.body[1:], strict=False):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            doc = after.value.value if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) else ""
            kind = ast.unparse(node.annotation).split("|")[0].strip()
            if node.target.id not in COMMON_FIELDS and kind in kinds:
                options[node.target.id] = (kinds[kind], str(doc))
    return options


def agent_module(name: str) -> Any:
    if name not in AGENTS:
        raise CommandError(f"--agent: unknown agent {name!r}; allowed: {', '.join(AGENTS)}")
    try:
        return importlib.import_module(AGENTS[name])
    except ModuleNotFoundError as error:
        # A missing third-party module is a missing extra (the agents' dependencies all come
        # with it); a missing metagym module is a real bug, raised as it is.
        if not error.name or error.name.partition(".")[0] == "metagym":
            raise
        extra = "pip install 'metagym-rl[agents]'"
        raise CommandError(f"--agent: {name} needs the agents extra: {extra} ({error})") from None


def run_kind(run_dir: Path) -> str:
    """Which agent trained the run in ``run_dir``."""
    if not (run_dir / "checkpoint.pt").is_file():
        raise CommandError(f"--run-dir: no checkpoint.pt in {run_dir}")
    marker = run_dir / "agent.txt"
    return marker.read_text().strip() if marker.exists() else "rl2"


def cmd_list(args: argparse.Namespace) -> None:
    """Print every family: id, trial id, horizon, splits and parameters with bounds."""
    for env_id in metagym.env_ids(trials=False):
        try:
            family = family_of(gym.make(env_id, disable_env_checker=True))
        except ImportError as error:  # an optional extra (e.g. mujoco) is not installed
            print(f"{env_id}  (unavailable: {error})")
            continue
        print(f"{env_id}  (trial: {metagym.trial_id(env_id)}, {family.episodes_per_trial} episodes per trial)")
        print("  " + family.describe().replace("\n", "\n  "))


#: What a run folder holds; ``--overwrite`` deletes exactly these.
RUN_FILES = ("checkpoint.pt", "config.json", "progress.csv", "agent.txt", "tensorboard")
#: What ``metagym demo`` adds to its run folder.
DEMO_FILES = ("results.json", "results.csv", "results.png", "trial.gif")


def prepare_run_dir(folder: Path, overwrite: bool, flag: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse a folder that already holds a run unless ``overwrite``; then delete only that run's files."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{flag}: {folder} is a file, not a folder")
    if not any((folder / name).exists() for name in RUN_FILES[:4]):
        return
    if not overwrite:
        raise CommandError(
            f"{flag}: {folder} already holds a run; continue it with --resume (train), "
            "or start it over with --overwrite, which deletes its checkpoint and logs"
        )
    from metagym.agents.common.runlog import run_lock

    with run_lock(folder):  # never clear a folder that another trainer is using
        for name in RUN_FILES + extra:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


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
        module = agent_module(args.agent)
        check_family_id(args.env, "--env")
        if args.steps < 1:
            raise CommandError(f"--steps: expected an integer >= 1, got {args.steps}")
        fields = {f.name for f in dataclasses.fields(module.Config)}
        given = {k for k, v in vars(args).items() if k in args.config_options and v is not None}
        if given - fields:
            name = sorted(given - fields)[0]
            raise CommandError(f"--{name.replace('_', '-')}: not an option of --agent {args.agent}")
        overrides = dict(chosen.config) if chosen is not None else {}
        overrides.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
        overrides.update(env_id=args.env, total_steps=args.steps, seed=args.seed)
        if "variant" in fields:
            overrides["variant"] = args.agent
        # Everything is checked before anything is written: a failing command leaves the folder as it was.
        config = module.Config(**overrides).validate()
        batch = getattr(config, "batch_size", None)
        if batch is not None and config.total_steps != config.num_updates * batch:
            print(
                f"note: RL² trains whole updates of {batch:,} steps (num_envs x rollout_steps): "
                f"{config.num_updates * batch:,} steps, not the {config.total_steps:,} asked for",
                file=sys.stderr,
            )
        prepare_run_dir(run_dir, args.overwrite, "--run-dir")
        trainer = module.Trainer(config, run_dir)
        writable(run_dir, "--run-dir")
        (run_dir / "agent.txt").write_text(args.agent + "\n")
    trained(trainer, run_dir, args.checkpoint_seconds, args.quiet, "continue with --resume")
    print(f"trained {trainer.global_step:,} steps; run folder {run_dir}")


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train and evaluate every (env, agent, seed); write the summary (metagym.sweep)."""
    from metagym.presets import preset
    from metagym.sweep import RECURRENT_PPO, Run, SweepFailed, applies, summarize, sweep, sweep_agents

    check_backend_arg(args.backend)
    for env_id in args.env:
        check_family_id(env_id, "--env")
    if args.preset is not None:
        preset(args.preset)  # a ValueError naming the shipped presets
    allowed = sweep_agents()
    for agent in args.agents:
        if agent not in allowed:
            raise CommandError(f"--agents: unknown agent {agent!r}; allowed: {', '.join(allowed)}")
        if agent in AGENTS:
            agent_module(agent)
        if agent == RECURRENT_PPO and importlib.util.find_spec("sb3_contrib") is None:
            raise CommandError("--agents: recurrentppo needs the agents extra: pip install 'metagym-rl[agents]'")
    steps = sweep_steps(args.steps, args.agents)
    if args.tasks < 1:
        raise CommandError(f"--tasks: expected an integer >= 1, got {args.tasks}")
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        raise CommandError(f"--seeds: expected distinct integers >= 0, got {args.seeds}")
    runs: list[Run] = []
    for env_id in dict.fromkeys(args.env):
        for agent in dict.fromkeys(args.agents):
            if not applies(agent, env_id):
                print(f"sweep: {agent} does not apply to {env_id}; skipped")
            elif agent in AGENTS or agent == RECURRENT_PPO:
                runs += [Run(env_id, agent, seed, steps.get(agent), args.preset, args.tasks) for seed in args.seeds]
            else:  # a classic baseline: nothing to train, one run
                runs.append(Run(env_id, agent, None, None, None, args.tasks))
    if not runs:
        raise CommandError("--agents: none of them applies to any --env; nothing to run")
    out = Path(args.out)
    print(f"sweep: {len(runs)} runs on the {args.backend} backend, in {out}")
    failed = None
    results: list[dict[str, Any] | None]
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


def apply_preset(args: argparse.Namespace) -> Any:
    """Fill ``--agent``, ``--env`` and ``--steps`` from ``--preset`` (or the shipped preset for the
    chosen agent and family, whose settings are then the defaults); return the preset used."""
    from metagym.presets import default_for, preset

    chosen = preset(args.preset) if args.preset else None
    if chosen is not None and args.agent is not None and args.agent != chosen.agent:
        raise CommandError(f"--agent: preset {chosen.name} trains {chosen.agent}, got {args.agent}")
    args.agent = args.agent or (chosen.agent if chosen else TRAIN_DEFAULTS["agent"])
    args.env = args.env or (chosen.env if chosen else TRAIN_DEFAULTS["env"])
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
    names = ("preset", "agent", "env", "seed", *sorted(args.config_options))
    fixed = [name for name in names if getattr(args, name) is not None]
    if fixed:
        flag = "--" + fixed[0].replace("_", "-")
        raise CommandError(
            f"{flag}: a resumed run keeps its own settings; only --steps and --checkpoint-seconds may be given"
        )
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps: expected an integer >= 1, got {args.steps}")
    module = agent_module(run_kind(run_dir))  # the run says which agent trained it
    try:
        return module.Trainer.resume(run_dir, total_steps=args.steps)
    except ValueError as error:
        raise CommandError(str(error).replace("steps: ", "--steps: ", 1)) from None


def writable(folder: Path, flag: str) -> None:
    """Create ``folder`` if needed, or raise a one-line error naming ``flag`` if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"{flag}: cannot create {folder} ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"{flag}: {folder} is not writable")


def trained(trainer: Any, run_dir: Path, checkpoint_seconds: float | None, quiet: bool, hint: str) -> None:
    """Run ``trainer``; an interrupt or a full disk ends the command with one line, not a traceback."""
    from metagym.agents.common.runlog import Interrupted

    try:
        trainer.run(checkpoint_seconds=checkpoint_seconds, progress=not quiet)
    except Interrupted as stop:
        if stop.saved:
            print(f"\ninterrupted: update {stop.update} saved in {run_dir}; {hint}", file=sys.stderr)
        else:
            print(f"\ninterrupted twice: stopped at once; the last checkpoint in {run_dir} is kept", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as error:  # disk full, folder removed or made read-only under the run
        where = error.filename or run_dir
        reason = error.strerror or error
        raise CommandError(f"--run-dir: cannot write {where} ({reason}); the last checkpoint is kept") from None


def load_agent(run_dir: str) -> Any:
    path = Path(run_dir)
    module = agent_module(run_kind(path))
    return module.Agent.load(path)


def agent_names(runs: list[str]) -> list[str]:
    """Legend names: the agent (``RL²``, ``MAML``), with the run folder where two runs share one."""
    kinds = [AGENT_NAMES.get(run_kind(Path(run)), run_kind(Path(run))) for run in runs]
    pairs = zip(kinds, runs, strict=True)
    return [kind if kinds.count(kind) == 1 else f"{kind} ({Path(run).name})" for kind, run in pairs]


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
    from metagym.evaluation import evaluate, family_for
    from metagym.results import table, write

    if args.tasks < 1:
        raise CommandError(f"--tasks: expected an integer >= 1, got {args.tasks}")
    if args.tasks_per_block < 1:
        raise CommandError(f"--tasks-per-block: expected an integer >= 1, got {args.tasks_per_block}")
    if args.seed < 0:
        raise CommandError(f"--seed: expected an integer >= 0, got {args.seed}")
    check_backend_arg(args.backend)
    check_out(Path(args.out))
    runs = [args.run_dir, *args.compare]
    for run in args.compare:
        if not (Path(run) / "checkpoint.pt").is_file():
            raise CommandError(f"--compare: no checkpoint.pt in {run}")
    agents = [load_agent(run) for run in runs]  # every run loads before any is evaluated
    if args.inner_lr is not None:
        if not args.inner_lr > 0:  # also refuses nan
            raise CommandError(f"--inner-lr: expected a number > 0, got {args.inner_lr}")
        for run, agent in zip(runs, agents, strict=True):
            if not hasattr(agent, "adapt"):
                raise CommandError(f"--inner-lr: {run} holds a memory agent, which takes no gradient steps")
        agents = [_with_inner_lr(agent, args.inner_lr) for agent in agents]
    if args.split is not None:
        for agent in agents:
            family_for(agent.config.env_id).check_split(args.split)
    results = []
    for run, agent, name in zip(runs, agents, agent_names(runs), strict=True):
        how = {"backend": args.backend, "address": args.address, "tasks_per_block": args.tasks_per_block}
        results.append(
            evaluate(agent, args.split, args.tasks, args.seed, name, args.deterministic, progress=not args.quiet, **how)
        )
        results[-1]["run_dir"] = str(run)
    if results[0]["task_sampling"].get("remainder"):
        how = results[0]["task_sampling"]
        print(
            f"note: {args.tasks} tasks are not a multiple of the {how['distinct_tasks']} tasks of the split: "
            f"each task {how['repeats']} times, plus {how['remainder']} drawn without replacement",
            file=sys.stderr,
        )
    paths = write(results[0], args.out, compare=results[1:])
    for result in results:
        print(table(result))
    print("wrote " + ", ".join(str(p) for p in paths))


def cmd_render(args: argparse.Namespace) -> None:
    from metagym.evaluation import held_out_tasks
    from metagym.render import Window

    agent = load_agent(args.run_dir)
    if args.task_index < 0:
        raise CommandError(f"--task-index: expected an integer >= 0, got {args.task_index}")
    if not args.human and Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        raise CommandError(f"--out: expected a .gif or .mp4 file, got {args.out!r}")
    if not args.human:
        check_folder_of(Path(args.out), "--out")
    task = held_out_tasks(agent.config.env_id, args.split, args.task_index + 1, args.seed)[args.task_index]
    frames = play_adaptation(agent, task, args.seed) if hasattr(agent, "adapt") else play_trial(agent, task, args.seed)
    if args.human:
        window = Window("metagym render", 8)
        for frame in frames:
            window.show(frame)
        window.close()
        return
    imageio = video_writer()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        imageio.mimsave(out, frames, duration=125, loop=0)
    else:
        imageio.mimsave(out, [pad_even(f) for f in frames], fps=8)
    print(f"wrote {out} ({len(frames)} frames)")


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


def play_trial(agent: Any, task: Any, seed: int) -> list[Any]:
    """One trial of ``agent`` on ``task``, as captioned frames (the hidden task shown)."""
    import torch

    from metagym.render import caption

    torch.manual_seed(seed)
    trial_env = metagym.trial_id(agent.config.env_id)
    env = gym.make(trial_env, render_mode="rgb_array", episodes_per_trial=agent.config.episodes_per_trial)
    k = env.get_wrapper_attr("episodes_per_trial")
    obs, _ = env.reset(seed=seed, options={"task": task})
    state, start, episode, running, total = None, np.ones(1, dtype=bool), 0, 0.0, 0.0
    frames: list[Any] = []
    terminated = False
    while not terminated:
        lines = [
            f"{agent.config.env_id}   episode {episode + 1}/{k}",
            f"return {running:+.2f}   trial so far {total:+.2f}",
            f"hidden task: {short(task)}",
        ]
        frames.append(caption(np.asarray(env.render()), lines, size=15))
        action, state = agent.predict(obs[None], state, start)
        start = np.zeros(1, dtype=bool)
        obs, reward, terminated, _, info = env.step(action[0])
        running, total = running + float(reward), total + float(reward)
        if "inner_return" in info:
            episode, running = episode + 1, 0.0
    return frames


def play_adaptation(agent: Any, task: Any, seed: int, steps: int = 3) -> list[Any]:
    """One episode on ``task`` before and after each of ``steps`` adaptation steps, as frames."""
    import torch

    from metagym.agents.maml import Sampler
    from metagym.render import caption

    torch.manual_seed(seed)
    sampler = Sampler(agent, 1, seed, per_task=agent.config.eval_batch_size)
    env = gym.make(agent.config.env_id, render_mode="rgb_array")
    params, frames = agent.params, []
    for k in range(steps + 1):
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
        if k < steps:
            batch = sampler.sample([task], [params])
            params = agent.adapt(batch.task(0), params, lr=agent.config.inner_lr * (1.0 if k == 0 else 0.5))
    return frames


def cmd_demo(args: argparse.Namespace) -> None:
    """Meta-train RL² on GridNavi, evaluate on held-out tasks, plot, render a GIF."""
    from metagym.evaluation import evaluate
    from metagym.presets import preset
    from metagym.results import table, write

    demo = preset("rl2-gridnavi")
    module = agent_module(demo.agent)
    out = Path(args.out)
    steps = demo.steps if args.steps is None else args.steps
    if steps < 1:
        raise CommandError(f"--steps: expected an integer >= 1, got {steps}")
    config = module.Config(**demo.config, env_id=demo.env, total_steps=steps, seed=args.seed).validate()
    imageio = video_writer()
    prepare_run_dir(out, args.overwrite, "--out", DEMO_FILES)
    trainer = module.Trainer(config, out)
    writable(out, "--out")
    (out / "agent.txt").write_text("rl2\n")
    print(f"1/3 meta-training RL² on {demo.env} for {steps:,} steps, preset {demo.name} (run folder {out})")
    trained(trainer, out, None, args.quiet, f"continue with metagym train --run-dir {out} --resume")
    print("2/3 evaluating on 210 fresh trials from GridNavi's prior (each of the 21 goals 10 times, as VariBAD)")
    result = evaluate(trainer.agent, "train", 210, args.seed, name="RL²")
    paths = write(result, out / "results.json")
    print(table(result))
    print("3/3 rendering one adaptation trial")
    from metagym.evaluation import held_out_tasks

    task = held_out_tasks(config.env_id, "train", 1, args.seed)[0]
    gif = out / "trial.gif"
    imageio.mimsave(gif, play_trial(trainer.agent, task, args.seed), duration=125, loop=0)
    print("results: " + ", ".join(str(p) for p in paths) + f"\nGIF of one trial: {gif}")


def build_parser() -> argparse.ArgumentParser:
    from metagym.sweep import sweep_agents

    parser = argparse.ArgumentParser(prog="metagym", description="meta-RL task families, agents and evaluation")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): your own code that registers families with gymnasium.register",
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
    train.add_argument("--agent", help=f"one of {', '.join(AGENTS)} (default: {d['agent']})")
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
    options: dict[str, tuple[Any, str]] = {}
    for module in dict.fromkeys(AGENTS.values()):
        for name, (kind, doc) in config_options(module).items():
            if name not in options and name != "variant":
                options[name] = (kind, doc)
    for name, (kind, doc) in options.items():
        train.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None, help=doc)
    train.set_defaults(run=cmd_train, config_options=set(options))

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
    ev.add_argument("--compare", nargs="*", default=[], help="more run folders to put on the same plot")
    ev.add_argument("--backend", default="local", help="local or ray: same numbers (default: %(default)s)")
    ev.add_argument("--address", default=None, help="Ray: an existing cluster's address (default: start Ray here)")
    ev.add_argument(
        "--tasks-per-block",
        type=int,
        default=TASKS_PER_BLOCK,
        help="tasks per batch and per Ray task; the numbers depend on it (default: %(default)s)",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(run=cmd_evaluate)

    render = sub.add_parser("render", help="render one adaptation trial to a GIF/MP4 or a window")
    render.add_argument("--run-dir", required=True, help="a trained run")
    render.add_argument("--task-index", type=int, default=0, help="which held-out task (default: %(default)s)")
    render.add_argument("--split", default=None, help="split of the task (default: as for evaluate)")
    render.add_argument("--seed", type=int, default=0, help="seed, as for evaluate (default: %(default)s)")
    render.add_argument("--out", default="trial.gif", help="a .gif or .mp4 path (default: %(default)s)")
    render.add_argument("--human", action="store_true", help="show it live in a pygame window instead")
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
    sw.set_defaults(run=cmd_sweep)

    demo = sub.add_parser("demo", help="the main job: meta-train, evaluate, plot, GIF")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the rl2-gridnavi preset's)")
    demo.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--overwrite", action="store_true", help="start over in an --out folder that holds a run")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    background: list[BaseException | None] = []  # e.g. TensorBoard's writer thread on a full disk
    hook = threading.excepthook
    threading.excepthook = lambda failed: background.append(failed.exc_value)
    try:
        for module in args.imports:
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise CommandError(f"--import: cannot import {module!r} ({error})") from None
        args.run(args)
        if background:
            print(f"metagym {args.command}: warning: a background writer failed ({background[0]})", file=sys.stderr)
    except (CommandError, ValueError, TypeError) as error:
        print(f"metagym {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`metagym list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a file that cannot be read or written: disk full, read-only, removed
        where = f"{error.filename}: " if error.filename else ""
        print(f"metagym {args.command}: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    finally:
        threading.excepthook = hook
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
