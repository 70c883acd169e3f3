"""Sweeps: every (family, agent, seed) run trained and scored, on one machine or on Ray.

A sweep is a grid of runs. A run of a registered agent (RL², MAML, a user's) is what
``metagym train`` then ``metagym evaluate`` do (the same library calls, :mod:`metagym.agents.runs`;
scored on ``test`` where the family holds tasks out, else on its prior), in its own folder
``OUT/<env>/<agent>/seed-<seed>``, so a sweep's runs can be inspected, resumed and re-scored
like any other. Two more kinds of agent make the comparison: ``recurrentppo``, SB3-contrib's
RecurrentPPO trained on the family's trial id with its defaults (8 envs) for the same steps,
its weights saved as a plain state dict; and the registered baselines
(:mod:`metagym.agents.registry`, kind ``baseline``: UCB1, Thompson sampling, Gittins, PSRL),
which need no training: one run each, in ``OUT/<env>/<agent>/untrained``, only on the families
where they apply. All are scored by the same protocol, on the same tasks.

A run is one unit of work: the local backend plays them one after another in this process;
the Ray backend (``pip install "metagym-rl[ray]"``) makes each a Ray task, so a cluster runs
them side by side. Every run is
deterministic given its seed, so both backends write the same numbers.

A sweep started again with the same ``OUT`` skips the runs that have their results, and
resumes a run interrupted mid-training from its last checkpoint; a Ray task whose worker
dies is retried by Ray, and resumes the same way.

``OUT/summary.csv`` has one row per (env, agent): the mean over seeds of the trial return and
of each episode (or adaptation step), with 95% intervals over seeds (Student t; for an
untrained baseline, its bootstrap interval over tasks: the column ``interval_over`` says
which), beside the references' means; ``OUT/summary.png`` plots the per-episode curves against the episodes of
experience before each (so RL²'s episodes and MAML's adaptation steps share an axis), and
``OUT/summary.md`` is the markdown table the command prints.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metagym.atomic import save_figure
from metagym.backends import BACKENDS, check_backend, map_calls
from metagym.errors import ArgumentError
from metagym.results import Results, read

__all__ = [
    "BACKENDS", "Run", "SweepFailed", "applies", "interval", "run_one", "summarize", "sweep", "sweep_agents", "table",
    "untrained",
]  # fmt: skip


#: SB3-contrib's RecurrentPPO, as a sweep's agent.
RECURRENT_PPO = "recurrentppo"
#: Steps a RecurrentPPO run trains for when neither ``steps`` nor a preset says.
RECURRENT_PPO_STEPS = 1_000_000


def sweep_agents() -> list[str]:
    """Every agent a sweep can run: the registered trained agents, RecurrentPPO, the baselines."""
    from metagym.agents.registry import agent_names

    trained = [name for name in agent_names() if not untrained(name)]
    return [*trained, RECURRENT_PPO, *agent_names("baseline")]


def untrained(agent: str) -> bool:
    """Whether ``agent`` is a registered untrained baseline (one run, no seeds)."""
    from metagym.agents.registry import agent_names

    return agent in agent_names("baseline")


def applies(agent: str, env_id: str) -> bool:
    """Whether ``agent`` can run on family ``env_id`` (a baseline only where it is defined)."""
    from metagym.agents.classic import baseline_for
    from metagym.evaluation import family_for

    if not untrained(agent):
        return True
    family = family_for(env_id)
    return baseline_for(agent, family, family.episodes_per_trial) is not None


def cpus_of(run: Run) -> int:
    """CPUs a run's Ray task asks for: its training config's ``torch_threads`` (the agent's
    default, or its preset's setting); 1 for RecurrentPPO and the untrained baselines."""
    if run.agent == RECURRENT_PPO or untrained(run.agent):
        return 1
    from metagym.agents.common.trainer import algorithm_class
    from metagym.agents.registry import agent_spec

    threads = getattr(algorithm_class(agent_spec(run.agent)).Config(), "torch_threads", 1)
    if run.preset is not None:
        from metagym.presets import preset

        threads = preset(run.preset).config.get("torch_threads", threads)
    return int(threads)


@dataclass(frozen=True)
class Run:
    """One cell of a sweep: a family, an agent and a seed (None: an untrained baseline),
    trained for ``steps``. Every cell of a family plays the same env: made with the make kwargs
    (``env_kwargs``) of ``preset`` where it sets them, else as registered."""

    env: str
    agent: str
    seed: int | None
    steps: int | None
    preset: str | None = None
    tasks: int = 200
    device: str = "cpu"

    def folder(self, out: Path) -> Path:
        return out / self.env / self.agent / ("untrained" if self.seed is None else f"seed-{self.seed}")

    @property
    def env_kwargs(self) -> dict[str, Any] | None:
        """The family env's make kwargs: ``preset``'s, or None (the id as registered)."""
        from metagym.presets import preset

        return preset(self.preset).config.get("env_kwargs") if self.preset is not None else None


def _publish(folder: Path, score: Any) -> Results:
    """``score(staged_json)`` writes results into a staging folder; move them into ``folder``.
    A ``results.json`` in ``folder`` therefore always means a finished run."""
    staged = folder / "staged" / "results.json"
    score(staged)
    for produced in staged.parent.iterdir():
        produced.replace(folder / produced.name)
    staged.parent.rmdir()
    return read(folder / "results.json")


def _baseline(run: Run, folder: Path) -> Results:
    from metagym.agents.classic import baseline_for
    from metagym.evaluation import evaluate_policy, family_for
    from metagym.results import write

    family = family_for(run.env, run.env_kwargs)
    policy = baseline_for(run.agent, family, family.episodes_per_trial)
    if policy is None:
        raise ArgumentError("agents", f"{run.agent} does not apply to {run.env}")
    scored = evaluate_policy(policy, run.env, num_tasks=run.tasks, env_kwargs=run.env_kwargs)
    return _publish(folder, lambda staged: write(scored, staged))


def _recurrent_ppo(run: Run, folder: Path) -> Results:
    """Train SB3-contrib's RecurrentPPO on the trial id (or load its finished weights), score it."""
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    from metagym.atomic import replaced_atomically
    from metagym.evaluation import evaluate_agent
    from metagym.presets import presets
    from metagym.registration import trial_id
    from metagym.results import write

    steps = run.steps or (presets()[run.preset].steps if run.preset else RECURRENT_PPO_STEPS)
    vec = make_vec_env(trial_id(run.env), n_envs=8, seed=run.seed, env_kwargs=run.env_kwargs)
    model = RecurrentPPO("MlpLstmPolicy", vec, seed=run.seed, verbose=0, device="cpu")
    weights = folder / "run" / "policy.pt"
    if weights.is_file():  # trained before an interruption; a tensor file, read without running code
        model.policy.load_state_dict(torch.load(weights, weights_only=True))
    else:  # SB3 checkpoints are pickles: an unfinished RecurrentPPO run starts over
        model.learn(total_timesteps=steps)
        with replaced_atomically(weights, binary=True) as handle:
            torch.save(model.policy.state_dict(), handle)
        info: dict[str, Any] = {"agent": RECURRENT_PPO, "env": run.env, "seed": run.seed, "steps": steps, "n_envs": 8}
        info |= {"env_kwargs": run.env_kwargs} if run.env_kwargs else {}
        (folder / "run" / "config.json").write_text(json.dumps(info, indent=2) + "\n")
    return _publish(
        folder,
        lambda staged: write(
            evaluate_agent(model, run.env, num_tasks=run.tasks, name="RecurrentPPO", env_kwargs=run.env_kwargs), staged
        ),
    )


def run_one(run: Run, out: str) -> Results:
    """Train (or resume) and evaluate ``run`` under ``out``; its results. Safe to repeat."""
    folder = run.folder(Path(out))
    results = folder / "results.json"
    if results.is_file():
        return read(results)
    if untrained(run.agent):
        return _baseline(run, folder)
    if run.agent == RECURRENT_PPO:
        return _recurrent_ppo(run, folder)
    from metagym.agents.runs import load_run, run_config, train_run
    from metagym.evaluation import evaluate
    from metagym.presets import default_for, preset
    from metagym.results import write

    run_dir = folder / "run"
    if (run_dir / "checkpoint.pt").is_file():  # interrupted: continue (a finished run just saves)
        train_run(None, run_dir, resume=True, progress=False, device=run.device)
    else:
        chosen = preset(run.preset) if run.preset is not None else default_for(run.agent, run.env)
        if chosen is not None and chosen.agent != run.agent:
            raise ArgumentError("preset", f"{chosen.name} trains {chosen.agent}, not {run.agent}")
        steps = run.steps if run.steps is not None else (chosen.steps if chosen is not None else 1_000_000)
        config = run_config(run.agent, run.env, steps, run.seed or 0, chosen)
        train_run(config, run_dir, overwrite=True, progress=False, device=run.device)
    agent = load_run(run_dir, run.device)

    def score(staged: Path) -> None:
        from metagym.agents.registry import agent_spec

        write(evaluate(agent, None, run.tasks, 0, agent_spec(run.agent).title), staged)

    return _publish(folder, score)


class SweepFailed(RuntimeError):
    """Some runs failed; the others finished. ``results`` holds None where a run failed."""

    def __init__(self, failures: list[tuple[Run, str]], results: list[Results | None]) -> None:
        lines = "; ".join(message for _, message in failures)
        super().__init__(f"{len(failures)} of {len(results)} runs failed: {lines}")
        self.failures, self.results = failures, results


def _attempt(run: Run, out: str) -> Results | str:
    """``run_one``'s results, or the message of its failure (so one failed run stops no other)."""
    try:
        return run_one(run, out)
    except Exception as error:  # reported with the others after the sweep, never swallowed
        return f"{type(error).__name__}: {error}"


def sweep(
    runs: Sequence[Run], out: Path, backend: str = "local", address: str | None = None, progress: bool = False
) -> list[Results]:
    """Every run's results, in the order of ``runs`` (see the module docstring). ``progress``
    shows a bar of runs done, with the last finished run's trial return.

    A run that fails does not stop the others: when all have ended, :class:`SweepFailed` lists
    the failures, with the finished runs' results (a sweep started again retries the failed).
    """
    check_backend(backend)
    out.mkdir(parents=True, exist_ok=True)
    calls = [(run, str(out.resolve())) for run in runs]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), unit="run", desc=f"sweep on {backend}")

    def done(i: int, result: Results | str) -> None:
        if bar is not None:
            run = runs[i]
            said = "FAILED" if isinstance(result, str) else f"{result.trial_return.mean[0]:.2f}"
            bar.set_postfix_str(f"{run.env} {run.agent} seed {run.seed}: {said}")
            bar.update()

    try:
        found = map_calls(_attempt, calls, backend, address, done=done, cpus=[cpus_of(run) for run in runs])
    finally:
        if bar is not None:
            bar.close()
    pairs = zip(runs, found, strict=True)
    failures = [(run, f"{run.env} {run.agent} seed {run.seed}: {r}") for run, r in pairs if isinstance(r, str)]
    if failures:
        raise SweepFailed(failures, [None if isinstance(r, str) else r for r in found])
    return found


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds (the mean three times for one seed).

    Examples:
        >>> [round(v, 3) for v in interval([1.0, 2.0, 3.0])]
        [2.0, -0.484, 4.484]
    """
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _spread(found: Sequence[Results], key: str, k: int, untrained: bool) -> tuple[float, float, float]:
    """Mean and 95% interval of column ``k`` of ``key``: over seeds, or for one untrained
    (deterministic) run, its own bootstrap interval over tasks."""
    if untrained:
        summary = found[0][key]
        return summary["mean"][k], summary["ci_low"][k], summary["ci_high"][k]
    return interval([r[key]["mean"][k] for r in found])


def summarize(runs: Sequence[Run], results: Sequence[Results], out: Path) -> list[dict[str, Any]]:
    """Write ``out/summary.csv``, ``out/summary.png`` and ``out/summary.md`` (:func:`table`); return the rows."""
    groups: dict[tuple[str, str], list[Results]] = {}
    seeds: dict[tuple[str, str], list[int | None]] = {}
    steps: dict[tuple[str, str], int | None] = {}
    for run, result in zip(runs, results, strict=True):
        groups.setdefault((run.env, run.agent), []).append(result)
        seeds.setdefault((run.env, run.agent), []).append(run.seed)
        steps[run.env, run.agent] = run.steps
    rows = []
    for (env, agent), found in groups.items():
        untrained = seeds[(env, agent)] == [None]
        row: dict[str, Any] = {"env": env, "agent": agent, "seeds": 0 if untrained else len(found)}
        row["steps"] = "" if untrained else steps[env, agent] or "default"
        row |= {"split": found[0]["split"], "interval_over": "tasks (bootstrap)" if untrained else "seeds (Student t)"}
        trial = _spread(found, "trial_return", 0, untrained)
        row["trial_return"], row["trial_return_ci_low"], row["trial_return_ci_high"] = trial
        # Each episode's return, and its success rate where the family reports success.
        for key, name in (("episode_returns", "episode"), ("episode_success", "success")):
            for k in range(len((found[0].get(key) or {"mean": []})["mean"])):
                column = f"{name}_{k + 1}"
                spread = _spread(found, key, k, untrained)
                row |= dict(zip((column, f"{column}_ci_low", f"{column}_ci_high"), spread, strict=True))
        for name in found[0]["reference_trial_return"]:
            row[f"ref_{name}"] = sum(r["reference_trial_return"][name] for r in found) / len(found)
        # Where each episode column sits: episodes of experience on the task before it (for a
        # gradient agent, the episodes its adaptation steps played), so agents of both kinds
        # can be read on one axis.
        row["x_axis"] = found[0].x_axis
        row["experience_episodes"] = ";".join(str(e) for e in found[0]["experience_episodes"])
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(out / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.md").write_text(table(rows) + "\n")
    _plot(rows, out / "summary.png")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The sweep's summary as a markdown table: first and last scored episode, trial return; and
    the success rate of the first and last where a family reports success."""

    def cell(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f} [{row[key + '_ci_low']:.2f}, {row[key + '_ci_high']:.2f}]"

    success = any("success_1" in row for row in rows)
    lines = [
        "| env | agent | training steps | seeds | first episode | last episode | experience before last "
        "| trial return |" + (" success first / last |" if success else "") + " 95% CI over |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if success else "") + "---|",
    ]
    for row in rows:
        columns = row["experience_episodes"].split(";")
        last, experience = len(columns), columns[-1]
        gradient = row["x_axis"] == "gradient steps"
        how = (" episode" if experience == "1" else " episodes") + (f" ({last - 1} gradient steps)" if gradient else "")
        trial = "n/a" if gradient else cell(row, "trial_return")
        seeds = row["seeds"] or "untrained"
        steps = f"{row['steps']:,}" if isinstance(row["steps"], int) else row["steps"] or "none"
        rates = ""
        if success:
            rates = f" {cell(row, 'success_1')} / {cell(row, f'success_{last}')} |" if "success_1" in row else " n/a |"
        lines.append(
            f"| {row['env']} | {row['agent']} | {steps} | {seeds} | {cell(row, 'episode_1')} "
            f"| {cell(row, f'episode_{last}')} | {experience}{how} | {trial} |{rates}"
            f" {row['interval_over']} |"
        )
    return "\n".join(lines)


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(row["env"] for row in rows))
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.0), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        widest = 0
        for row in (r for r in rows if r["env"] == env):
            keys = sorted((k for k in row if k.startswith("episode_") and k.count("_") == 1), key=lambda k: int(k[8:]))
            x = [int(e) for e in row["experience_episodes"].split(";")]
            widest = max(widest, x[-1])
            y = [row[k] for k in keys]
            label = f"{row['agent']} ({row['seeds']} seeds)" if row["seeds"] else f"{row['agent']} (untrained)"
            style = "s--" if row["x_axis"] == "gradient steps" else "o-"
            ax.plot(x, y, style, label=label, markersize=4)
            ax.fill_between(x, [row[f"{k}_ci_low"] for k in keys], [row[f"{k}_ci_high"] for k in keys], alpha=0.15)
        if widest > 20:  # gradient agents' steps are tens of episodes apart: a log-like axis keeps both readable
            ax.set_xscale("symlog", linthresh=10)
        ax.set_title(env)
        ax.set_xlabel("episodes of experience on the task before the scored one")
        ax.set_ylabel("mean return of the scored episode")
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
