"""``metagym evaluate``: score runs (and classic baselines) on held-out tasks; JSON, CSV and a plot."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from metagym.agents.runs import run_agent
from metagym.cli.common import (
    DEVICE_HELP,
    CommandError,
    check_backend_arg,
    check_folder_of,
    gradient,
    load_agent,
    title_of,
)
from metagym.evaluation import TASKS_PER_BLOCK
from metagym.registration import env_kwargs_of


def agent_names(runs: list[str]) -> list[str]:
    """Legend names: the agent (``RL²``, ``MAML``), with the run folder where two runs share one."""
    kinds = [title_of(run_agent(run)) for run in runs]
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


def add_parser(sub: Any) -> None:
    """``evaluate``."""
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
