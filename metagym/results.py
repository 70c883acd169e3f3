"""What people read of an evaluation: the JSON, a CSV, a terminal table and a plot.

The plot has two panels: mean return (with 95% bands) and the normalised score (0 = random,
1 = task oracle), so that a family whose oracle scores 500 does not flatten the curves. Runs of
one kind share their natural x axis (episode of the trial for memory agents, gradient steps for
gradient agents); runs of both kinds are put on one axis, the episodes of experience on the task
before the scored episode.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metagym.atomic import replaced_atomically, save_figure
from metagym.errors import ArgumentError


class _Record(Mapping[str, Any]):
    """A frozen dataclass that also reads as the plain mapping of its JSON (``r["trial_return"]``
    and ``r.trial_return`` both work; fields that are None are left out, as the JSON leaves them)."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON data."""

        def plain(value: Any) -> Any:
            if isinstance(value, _Record):
                return value.to_dict()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return {key: plain(getattr(self, key)) for key in self._keys()}


@dataclasses.dataclass(frozen=True)
class Summary(_Record):
    """Per-column mean over tasks, with its bootstrap 95% interval."""

    mean: list[float]
    ci_low: list[float]
    ci_high: list[float]

    @classmethod
    def from_dict(cls, data: Any, where: str = "summary") -> Summary:
        if not isinstance(data, Mapping) or set(data) != {"mean", "ci_low", "ci_high"}:
            raise ArgumentError(where, f"expected mean, ci_low and ci_high, got {data!r:.80}")
        return cls(list(data["mean"]), list(data["ci_low"]), list(data["ci_high"]))


@dataclasses.dataclass(frozen=True)
class Results(_Record):
    """An evaluation's results (:func:`metagym.evaluation.evaluate`): what was scored, how, and
    the returns; ``write`` saves it as JSON with a CSV and a plot. Gradient agents' fields are
    None for memory agents (and left out of their JSON)."""

    agent: str
    env: str
    split: str
    distribution: str
    selection_split: str | None
    actions: str
    num_tasks: int
    task_sampling: dict[str, Any]
    episodes_per_trial: int
    seed: int
    tasks_per_block: int
    episode_returns: Summary
    trial_return: Summary
    references: dict[str, Summary]
    reference_trial_return: dict[str, float]
    normalized_score: list[float | None]
    reference_normalized_score: dict[str, list[float | None]]
    experience_episodes: list[int]
    """x positions: episodes of experience on the task before each scored episode."""
    scored_index_to_80pct_oracle: int | None
    episodes_to_80pct_oracle: int | None
    tasks: list[dict[str, Any]]
    task_returns: list[list[float]] = dataclasses.field(default_factory=list)
    """Each task's return per scored episode (or adaptation step), in task order."""
    x_axis: str = "episodes"
    """``episodes`` (memory agents) or ``gradient steps``."""
    inner_lr: float | None = None
    adaptation_steps: list[int] | None = None
    episodes_per_adaptation_step: int | None = None
    env_steps_per_adaptation_step: int | None = None
    gradient_steps_to_80pct_oracle: int | None = None
    run_dir: str | None = None
    """The run folder scored (``metagym evaluate`` records it)."""
    belief_entropy: list[float] | None = None
    """Agents with an explicit belief (VariBAD): the belief's entropy in nats after each step of
    the trial, the mean over the tasks whose trial reached that step (see :attr:`belief_kind`)."""
    belief_kind: str | None = None
    """What :attr:`belief_entropy` measures: ``"goal"`` the belief over a hidden goal's cell (a
    distribution over cells), ``"latent"`` the latent posterior's differential entropy."""
    exact_belief_entropy: list[float] | None = None
    """The exact Bayes posterior's entropy over the goal's cell on the same trials and steps, where
    the agent has a belief over the goal's cell and the family tracks the exact posterior (GridNavi)."""
    belief_tv: list[float] | None = None
    """Per step, the total-variation distance between the agent's belief over the goal's cell and
    the exact posterior (0: the same distribution; 1: disjoint), the mean over the trials."""
    belief_tv_mean: float | None = None
    """:attr:`belief_tv` over every step of every scored trial."""
    episode_success: Summary | None = None
    """Families that report ``info["success"]`` (Meta-World, goal families): the share of tasks
    whose episode succeeded at some step, per episode of the trial, with 95% intervals."""
    reference_success: dict[str, Summary] | None = None
    """The references' success rate per episode, beside :attr:`episode_success`."""
    reward_version: str | None = None
    """The family's reward function, where it has versions (Meta-World: ``"v2"``)."""
    env_kwargs: dict[str, Any] | None = None
    """The make kwargs the family env was made with (a run's ``env_kwargs``), where any were set."""

    def _keys(self) -> list[str]:  # the 80%-of-oracle indices are kept when None (never reached)
        always = {"selection_split", "scored_index_to_80pct_oracle", "episodes_to_80pct_oracle"}
        if self.x_axis == "gradient steps":
            always.add("gradient_steps_to_80pct_oracle")
        return [f.name for f in dataclasses.fields(self) if f.name in always or getattr(self, f.name) is not None]

    @classmethod
    def from_dict(cls, data: Any, where: str = "results") -> Results:
        """Results read back from their JSON data; a ValueError naming ``where`` if it is not one."""
        if not isinstance(data, Mapping):
            raise ArgumentError(where, f"expected an evaluation's JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        required = [
            n
            for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if unknown or missing:
            raise ArgumentError(where, f"not an evaluation's results (unknown {unknown}, missing {missing})")
        values = dict(data)
        for name in ("episode_returns", "trial_return"):
            values[name] = Summary.from_dict(data[name], f"{where}: {name}")
        values["references"] = {
            k: Summary.from_dict(v, f"{where}: references.{k}") for k, v in data["references"].items()
        }
        if data.get("episode_success") is not None:
            values["episode_success"] = Summary.from_dict(data["episode_success"], f"{where}: episode_success")
        if isinstance(data.get("reference_success"), Mapping):
            values["reference_success"] = {
                k: Summary.from_dict(v, f"{where}: reference_success.{k}") for k, v in data["reference_success"].items()
            }
        return cls(**values)


def read(path: str | Path) -> Results:
    """The results an evaluation wrote to ``path`` (JSON)."""
    return Results.from_dict(json.loads(Path(path).read_text()), str(path))


#: How each reference is drawn and named, in plot and table order.
REFERENCE_STYLES = {
    "oracle": ("tab:green", "task oracle"),
    "bayes_optimal": ("tab:purple", "Bayes-optimal"),
    "random_init": ("tab:brown", "random initialisation, fine-tuned"),
    "random": ("tab:gray", "random policy"),
}

#: The runs' colours on a plot: matplotlib's tab10, in its order, less those the references draw
#: in (a third run is not the oracle's green).
_TAB10 = ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
_REFERENCE_COLOURS = {colour for colour, _ in REFERENCE_STYLES.values()}
RUN_COLOURS = tuple(c for c in (f"tab:{name}" for name in _TAB10) if c not in _REFERENCE_COLOURS)


def write(results: Mapping[str, Any], out: str | Path, compare: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Write ``out`` (JSON), and beside it a CSV and a PNG plot; return the three paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = results.to_dict() if isinstance(results, _Record) else dict(results)
    with replaced_atomically(out) as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    table_path = out.with_suffix(".csv")
    refs = list(results["references"])
    rows = [["index", "experience_episodes", "mean", "ci_low", "ci_high", *refs, "normalized_score"]]
    ep = results["episode_returns"]
    for k, x in enumerate(results["experience_episodes"]):
        agent = [ep["mean"][k], ep["ci_low"][k], ep["ci_high"][k]]
        references = [results["references"][r]["mean"][k] for r in refs]
        rows.append([k, x, *agent, *references, results["normalized_score"][k]])
    with replaced_atomically(table_path) as handle:
        csv.writer(handle).writerows(rows)
    figure = out.with_suffix(".png")
    plot([results, *compare], figure)
    return [out, table_path, figure]


def is_gradient(result: Mapping[str, Any]) -> bool:
    return result.get("x_axis") == "gradient steps"


def _x(result: Mapping[str, Any], mixed: bool) -> np.ndarray:
    if mixed:
        return np.asarray(result["experience_episodes"], dtype=float)
    if is_gradient(result):
        return np.asarray(result["adaptation_steps"], dtype=float)
    return np.arange(1, result["episodes_per_trial"] + 1, dtype=float)


def _run_colour(i: int) -> str:
    """Run ``i``'s colour on a plot (:data:`RUN_COLOURS`, repeating)."""
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def _x_label(first: Mapping[str, Any], mixed: bool) -> str:
    if mixed:
        return "episodes of experience on the task before the scored episode"
    if is_gradient(first):
        return "gradient steps of adaptation (each on fresh episodes)"
    return "episode within the trial"


def plot(results: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Return and normalised score per episode / step: every run, and the first run's references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = results[0]
    mixed = len({is_gradient(r) for r in results}) > 1
    belief = first.get("belief_entropy")
    success = first.get("episode_success")
    panels = 2 + bool(belief) + bool(success)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), dpi=120)
    raw, norm = axes[0], axes[1]
    if belief:
        _plot_belief(axes[2], results, first)
    if success:
        _plot_success(axes[-1], results, first, mixed)
    x0 = _x(first, mixed)
    for key, (colour, label) in REFERENCE_STYLES.items():
        if key not in first["references"]:
            continue
        ref = first["references"][key]
        raw.plot(x0, ref["mean"], "--", color=colour, label=label)
        raw.fill_between(x0, ref["ci_low"], ref["ci_high"], color=colour, alpha=0.15)
        scores = first["reference_normalized_score"][key]
        norm.plot(x0, [np.nan if v is None else v for v in scores], "--", color=colour, label=label)
    for i, run in enumerate(results):
        x, ep = _x(run, mixed), run["episode_returns"]
        line = raw.plot(x, ep["mean"], "o-", label=run["agent"], color=_run_colour(i))[0]
        raw.fill_between(x, ep["ci_low"], ep["ci_high"], alpha=0.25, color=line.get_color())
        scores = [np.nan if v is None else v for v in run["normalized_score"]]
        norm.plot(x, scores, "o-", color=line.get_color(), label=run["agent"])
    if mixed:
        for ax in (raw, norm):
            ax.set_xscale("symlog", linthresh=1)
    for ax in (raw, norm):
        ax.set_xlabel(_x_label(first, mixed))
        if not mixed:
            ax.set_xticks(x0 if len(x0) <= 20 else x0[:: max(1, len(x0) // 10)])
    raw.set_ylabel("mean return")
    norm.set_ylabel("normalised score (0 random, 1 oracle)")
    norm.axhline(0.0, color="black", linewidth=0.5)
    where = "prior" if first["distribution"] == "prior" else f"{first['split']} split"
    raw.set_title(f"{env_name(first)}: {first['num_tasks']} tasks ({where}), {first['actions']} actions", fontsize=9)
    norm.set_title("normalised score", fontsize=9)
    raw.legend(fontsize=7)
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


def _plot_success(ax: Any, results: Sequence[Mapping[str, Any]], first: Mapping[str, Any], mixed: bool) -> None:
    """Success rate per episode of the trial or per adaptation step (families that report
    success), with the first run's references."""
    x0 = _x(first, mixed)
    for key, (colour, label) in REFERENCE_STYLES.items():
        ref = (first.get("reference_success") or {}).get(key)
        if ref:
            ax.plot(x0, ref["mean"], "--", color=colour, label=label)
    for i, run in enumerate(results):
        if run.get("episode_success"):
            rate = run["episode_success"]
            line = ax.plot(_x(run, mixed), rate["mean"], "o-", label=run["agent"], color=_run_colour(i))[0]
            ax.fill_between(_x(run, mixed), rate["ci_low"], rate["ci_high"], alpha=0.25, color=line.get_color())
    ax.set_ylim(-0.02, 1.02)
    if not mixed:
        ax.set_xticks(x0 if len(x0) <= 20 else x0[:: max(1, len(x0) // 10)])
    if mixed:
        ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(_x_label(first, mixed))
    ax.set_ylabel("success rate (any step of the episode)")
    version = f", reward {first['reward_version']}" if first.get("reward_version") else ""
    ax.set_title(
        f"success per {'adaptation step' if is_gradient(first) and not mixed else 'episode'}{version}", fontsize=9
    )


def _plot_belief(ax: Any, results: Sequence[Mapping[str, Any]], first: Mapping[str, Any]) -> None:
    """The belief's entropy per step of the trial (runs that keep a belief), with the exact
    posterior's on the same trials where recorded (dashed) and the inner episodes' boundaries
    where every episode lasts the same number of steps. The title says what is drawn."""
    kinds = set()
    for i, run in enumerate(results):
        if run.get("belief_entropy"):
            values = run["belief_entropy"]
            kinds.add(run.get("belief_kind") or "latent")
            ax.plot(np.arange(1, len(values) + 1), values, "-", label=run["agent"], color=_run_colour(i))
            exact = run.get("exact_belief_entropy")
            if exact:
                label = "exact posterior" + (f" ({run['agent']}'s trials)" if len(results) > 1 else "")
                ax.plot(np.arange(1, len(exact) + 1), exact, "--", label=label, color=_run_colour(i), alpha=0.6)
    steps, episodes = len(first["belief_entropy"]), first["episodes_per_trial"]
    if episodes > 1 and steps % episodes == 0:
        for k in range(1, episodes):
            ax.axvline(k * steps / episodes + 0.5, color="black", linewidth=0.5, linestyle=":")
    ax.set_xlabel("step of the trial (dotted: a new episode)")
    if kinds == {"goal"}:
        ax.set_ylabel("entropy of the belief over the goal's cell (nats)")
        tv = first.get("belief_tv_mean")
        gap = "" if tv is None else f"; total variation to the exact posterior {tv:.3f}"
        ax.set_title(f"the belief over the goal's cell, per step{gap}", fontsize=9)
    else:
        ax.set_ylabel("entropy (nats)")
        ax.set_title("the belief's entropy per step (latent posterior: differential entropy)", fontsize=9)
    if any(run.get("exact_belief_entropy") for run in results):
        ax.legend(fontsize=7)


def _cell(mean: float, data: Mapping[str, Any], i: int) -> str:
    """``mean`` with its 95% interval when ``data`` holds one and it is not a point."""
    low, high = data.get("ci_low", [None] * (i + 1))[i], data.get("ci_high", [None] * (i + 1))[i]
    if low is None or high is None or high - low < 5e-3:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def env_name(result: Any) -> str:
    """The scored family id, with the make kwargs it was made with where any were set."""
    kwargs = result.get("env_kwargs")
    return result["env"] + (" " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) if kwargs else "")


def table(result: Mapping[str, Any]) -> str:
    """A Markdown table of mean return per episode (or gradient step) with 95% intervals: the
    agent and every reference."""
    k = len(result["episode_returns"]["mean"])
    shown = list(range(k)) if k <= 12 else sorted({0, 1, 2, k // 2, k - 1})
    gradient = is_gradient(result)
    if gradient:  # columns are "after k adaptation steps"
        head = "| gradient steps | " + " | ".join(str(result["adaptation_steps"][i]) for i in shown) + " | sum |"
    else:
        head = "| episode | " + " | ".join(str(i + 1) for i in shown) + " | trial |"
    rule = "|---|" + "---:|" * (len(shown) + 1)
    where = "its prior" if result["distribution"] == "prior" else f"the {result['split']} split"
    title = (
        f"{result['agent']} on {result['num_tasks']} tasks of {env_name(result)} ({where}, {result['actions']} actions)"
    )
    rows = [title, head, rule]
    trial = result["trial_return"]
    entries = [(result["agent"], result["episode_returns"], _cell(trial["mean"][0], trial, 0))]
    for key in REFERENCE_STYLES:
        if key in result["references"]:
            entries.append((key, result["references"][key], f"{result['reference_trial_return'][key]:.2f}"))
    narrow = len(shown) > 6  # many columns: means only, the trial keeps its interval
    for name, data, total in entries:
        cells = (f"{data['mean'][i]:.2f}" if narrow else _cell(data["mean"][i], data, i) for i in shown)
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {total} |")
    if result.get("episode_success"):
        version = f", reward {result['reward_version']}" if result.get("reward_version") else ""
        per = (
            "per adaptation step (share of its scored episodes that"
            if gradient
            else "per episode (any step of the episode"
        )
        rows += [
            f"success rate {per} succeeded{version})",
            head.rsplit(" | ", 1)[0] + " |",
            "|---|" + "---:|" * len(shown),
        ]
        references = result.get("reference_success") or {}
        successes = [(result["agent"], result["episode_success"])]
        successes += [(key, references[key]) for key in REFERENCE_STYLES if key in references]
        for name, data in successes:
            rows.append(f"| {name} | " + " | ".join(_cell(data["mean"][i], data, i) for i in shown) + " |")
    if result.get("belief_tv_mean") is not None:
        rows.append(
            f"belief over the goal's cell: mean total-variation distance to the exact posterior "
            f"{result['belief_tv_mean']:.3f} (0: the same; 1: disjoint), over every step of every trial"
        )
    reached = result["episodes_to_80pct_oracle"]
    shown_reached = "not reached" if reached is None else str(reached)
    rows.append(f"episodes of experience on the task before reaching 80% of the oracle: {shown_reached}")
    return "\n".join(rows)
