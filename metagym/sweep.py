"""Sweeps: every (family, agent, seed) run trained and scored, on one machine or on Ray.

A sweep is a grid of runs. Each run is the same two commands a user would type,
``metagym train`` then ``metagym evaluate`` (on ``test`` where the family holds tasks out,
else on its prior), in its own folder ``OUT/<env>/<agent>/seed-<seed>``, so a sweep's runs
can be inspected, resumed and re-scored like any other. A run is one unit of work: the local
backend plays them one after another in this process; the Ray backend (``pip install
"metagym-rl[ray]"``) makes each a Ray task, so a cluster runs them side by side. Every run is
deterministic given its seed, so both backends write the same numbers.

A sweep started again with the same ``OUT`` skips the runs that have their results, and
resumes a run interrupted mid-training from its last checkpoint; a Ray task whose worker
dies is retried by Ray, and resumes the same way.

``OUT/summary.csv`` has one row per (env, agent): the mean over seeds of the trial return and
of each episode (or adaptation step), with 95% intervals over seeds (Student t), beside the
references' means; ``OUT/summary.png`` plots the per-episode curves.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metagym.backends import BACKENDS, check_backend, map_calls

__all__ = ["BACKENDS", "Run", "interval", "run_one", "summarize", "sweep"]


@dataclass(frozen=True)
class Run:
    """One cell of a sweep: a family, an agent and a seed, trained for ``steps``."""

    env: str
    agent: str
    seed: int
    steps: int | None
    preset: str | None = None
    tasks: int = 200

    def folder(self, out: Path) -> Path:
        return out / self.env / self.agent / f"seed-{self.seed}"


def run_one(run: Run, out: str) -> dict[str, Any]:
    """Train (or resume) and evaluate ``run`` under ``out``; its results. Safe to repeat."""
    from metagym.cli import main

    folder = run.folder(Path(out))
    results = folder / "results.json"
    if results.is_file():
        return json.loads(results.read_text())
    run_dir = folder / "run"
    if (run_dir / "checkpoint.pt").is_file():
        argv = ["train", "--resume", "--run-dir", str(run_dir), "--quiet"]
    else:
        argv = ["train", "--agent", run.agent, "--env", run.env, "--seed", str(run.seed)]
        argv += ["--run-dir", str(run_dir), "--quiet", "--overwrite"]
        argv += ["--steps", str(run.steps)] if run.steps is not None else []
        argv += ["--preset", run.preset] if run.preset is not None else []
    if main(argv) != 0:
        raise RuntimeError(f"sweep: training {run} failed (see the message above)")
    staged = folder / "staged" / "results.json"  # written whole, then moved: a results file means done
    if main(["evaluate", "--run-dir", str(run_dir), "--tasks", str(run.tasks), "--out", str(staged), "--quiet"]) != 0:
        raise RuntimeError(f"sweep: evaluating {run} failed (see the message above)")
    for produced in staged.parent.iterdir():
        produced.replace(folder / produced.name)
    staged.parent.rmdir()
    return json.loads(results.read_text())


def sweep(runs: Sequence[Run], out: Path, backend: str = "local", address: str | None = None) -> list[dict[str, Any]]:
    """Every run's results, in the order of ``runs`` (see the module docstring)."""
    check_backend(backend)
    out.mkdir(parents=True, exist_ok=True)
    return map_calls(run_one, [(run, str(out.resolve())) for run in runs], backend, address)


#: Student's t 97.5% quantiles for 1..30 degrees of freedom (beyond: the normal's 1.96).
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds (the mean three times for one seed).

    Examples:
        >>> [round(v, 3) for v in interval([1.0, 2.0, 3.0])]
        [2.0, -0.484, 4.484]
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (T975[n - 2] if n - 1 <= len(T975) else 1.96) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def summarize(runs: Sequence[Run], results: Sequence[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Write ``out/summary.csv`` and ``out/summary.png``; return the rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run, result in zip(runs, results, strict=True):
        groups.setdefault((run.env, run.agent), []).append(result)
    rows = []
    for (env, agent), found in groups.items():
        row: dict[str, Any] = {"env": env, "agent": agent, "seeds": len(found), "split": found[0]["split"]}
        trial = [r["trial_return"]["mean"][0] for r in found]
        row["trial_return"], row["trial_return_ci_low"], row["trial_return_ci_high"] = interval(trial)
        episodes = len(found[0]["episode_returns"]["mean"])
        for k in range(episodes):
            mean, low, high = interval([r["episode_returns"]["mean"][k] for r in found])
            row[f"episode_{k + 1}"], row[f"episode_{k + 1}_ci_low"], row[f"episode_{k + 1}_ci_high"] = mean, low, high
        for name in found[0]["reference_trial_return"]:
            row[f"ref_{name}"] = sum(r["reference_trial_return"][name] for r in found) / len(found)
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(out / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "summary.png")
    return rows


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(row["env"] for row in rows))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for row in (r for r in rows if r["env"] == env):
            keys = sorted((k for k in row if k.startswith("episode_") and k.count("_") == 1), key=lambda k: int(k[8:]))
            x = list(range(1, len(keys) + 1))
            y = [row[k] for k in keys]
            ax.plot(x, y, marker="o", label=f"{row['agent']} ({row['seeds']} seeds)")
            ax.fill_between(x, [row[f"{k}_ci_low"] for k in keys], [row[f"{k}_ci_high"] for k in keys], alpha=0.2)
        ax.set_title(env)
        ax.set_xlabel("episode of the trial (gradient step for MAML-style agents)")
        ax.set_ylabel("mean return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
