"""The adaptation protocol: how fast an agent does on tasks it has never seen.

Every evaluated task gets one full trial, from a fixed seed; the return of every inner episode
(memory agents) or of the episodes after every adaptation step (gradient agents) is recorded.
Results are per-episode-index means with bootstrap 95% intervals, beside the family's random,
task-oracle and, where it can be computed exactly, Bayes-optimal references on the same tasks
and seeds, with normalised scores and the episodes of experience the agent needs to reach 80%
of the oracle.

Which tasks: a family with held-out tasks is scored on ``test`` by default; a family without
(GridNavi: every goal is in the training prior) is scored on fresh trials from its prior
(``split="train"``), as the paper that defined it was. A finite split (GridNavi's 21 goals, the
two-task bandit presets) is enumerated in equal strata, so a mean over it is an exact
expectation over the split: 42 tasks on GridNavi are each of the 21 goals twice.

An agent here is a :class:`metagym.policies.Actor`: ``predict(obs, state, episode_start,
deterministic)`` (SB3's interface) and a ``config`` naming ``env_id`` and ``episodes_per_trial``.
A :class:`metagym.policies.GradientActor` adds ``adaptation_scores`` (returns and, for a family
that reports success, the success rate per adaptation step), ``reinitialised`` and
``experience_per_step`` (the episodes one adaptation step plays), and is scored after each step;
a :class:`metagym.policies.BeliefActor` adds its belief, whose entropy is recorded per step.

Where: the tasks are scored in blocks of ``tasks_per_block`` (50), each block one batch and one
unit of work of a backend (:mod:`metagym.backends`): this process, or a Ray task on any worker.
Trial ``i`` is reset with ``seed + i``; the action noise of the block starting at task ``b`` is
seeded from ``(seed, b)`` and played on one torch thread. So every number depends on the seed,
the task index and the block size, never on the backend or the worker, and ``backend="ray"``
returns exactly the results of ``backend="local"``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from metagym.backends import check_backend, map_calls
from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.policies import Actor, BeliefActor, GradientActor, Policy, RandomPolicy, run_trials
from metagym.registration import check_env_kwargs, check_family_id, env_kwargs_of, family_of
from metagym.results import Results, Summary
from metagym.tasks import Task, TaskFamily
from metagym.wrappers import make_trial_vector, reached_states

BOOTSTRAP_SAMPLES = 2000
#: Normalised score (0 = random, 1 = oracle) that ``episodes_to_80pct_oracle`` waits for.
ORACLE_FRACTION = 0.8
#: Tasks scored together as one batch: the unit of work a backend hands to a worker.
TASKS_PER_BLOCK = 50


def family_for(env_id: str, env_kwargs: dict[str, Any] | None = None) -> TaskFamily[Any]:
    """The task family of a family id (made with ``env_kwargs``)."""
    return family_of(gym.make(env_id, disable_env_checker=True, **(env_kwargs or {})))


def default_split(family: TaskFamily[Any]) -> str:
    """``test`` for a family with held-out tasks, else ``train`` (the prior)."""
    return "test" if family.held_out else "train"


def distribution_of(family: TaskFamily[Any], split: str) -> str:
    """What a score on ``split`` measures: ``"prior"`` for a family without held-out tasks
    (training and evaluation share the task distribution), else the split's name."""
    return "prior" if not family.held_out and split == "train" else split


def evaluation_tasks(
    env_id: str, split: str | None, num_tasks: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> tuple[list[Task], str, dict[str, Any]]:
    """The tasks evaluation with ``seed`` scores: (tasks, split, how they were chosen).

    A finite split of ``m`` tasks gives each task ``num_tasks // m`` times, in order, plus
    ``num_tasks % m`` distinct tasks drawn without replacement (the results say so); any other
    split is sampled with a generator seeded by ``seed``.
    """
    return _tasks(family_for(env_id, env_kwargs), split, num_tasks, seed)


def _tasks(
    family: TaskFamily[Any], split: str | None, num_tasks: int, seed: int
) -> tuple[list[Task], str, dict[str, Any]]:
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ArgumentError("tasks", f"expected an integer >= 1, got {num_tasks!r}")
    split = default_split(family) if split is None else split
    family.check_split(split)
    rng = np.random.default_rng(seed)
    finite = family.task_set(split)
    if finite is None:
        return family.sample(rng, num_tasks, split), split, {"kind": "sampled"}
    repeats, remainder = divmod(num_tasks, len(finite))
    extra = sorted(rng.choice(len(finite), size=remainder, replace=False).tolist())
    tasks = list(finite) * repeats + [finite[i] for i in extra]
    how = {"kind": "strata", "distinct_tasks": len(finite), "repeats": repeats, "remainder": remainder}
    return tasks, split, how


def held_out_tasks(
    env_id: str, split: str | None, num_tasks: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> list[Task]:
    """The ``num_tasks`` tasks of ``split`` (None: the default) that evaluation with ``seed`` uses."""
    return evaluation_tasks(env_id, split, num_tasks, seed, env_kwargs)[0]


def block_seed(seed: int, start: int) -> int:
    """The seed of the action noise of the block of tasks that starts at task ``start``."""
    return int(np.random.SeedSequence([seed, start]).generate_state(1)[0] % 2**31)


def agent_trials(
    agent: Any, tasks: Sequence[Task], episodes: int, seed: int, deterministic: bool = False, start: int = 0
) -> np.ndarray:
    """Returns (len(tasks), episodes) of one trial per task, all trials stepped as one batch.

    ``tasks`` are the tasks ``start, start + 1, ...`` of an evaluation: trial ``i`` is reset with
    ``seed + start + i`` (sub-env ``i`` of the vector env reset with ``seed + start``) and the
    action noise is seeded with :func:`block_seed`, so the numbers depend only on (seed, start)
    and the tasks.
    """
    return _play_block(agent, tasks, episodes, seed, deterministic, start)[0]


def _play_block(
    agent: Actor,
    tasks: Sequence[Task],
    episodes: int,
    seed: int,
    deterministic: bool,
    start: int,
    watch: int | None = None,
    split: str | None = None,
) -> tuple[np.ndarray, list[Any], dict[str, np.ndarray] | None, np.ndarray | None]:
    """:func:`agent_trials`'s returns, the actions that trial ``watch`` of the block played
    (until its trial ended; an empty list without ``watch``), for an agent that keeps an explicit
    belief (``belief_entropy(state)``, VariBAD) what it believed after each step of each trial
    (else None), and for a family that reports ``info["success"]``, whether each episode
    succeeded at some step, 1 or 0 (tasks, episodes; else None).

    The belief record maps ``"belief_entropy"`` to its entropy in nats, (tasks, episodes x the
    family's horizon), NaN past a trial's end; where the agent's belief is over a hidden goal's
    cell (``belief_kind == "goal"``, ``goal_belief(state)``) and the family tracks the exact
    posterior for tasks of ``split`` (``goal_posterior``), ``"exact_entropy"`` the exact
    posterior's entropy and ``"belief_tv"`` the total-variation distance between the two, on the
    same steps."""
    import torch

    torch.manual_seed(block_seed(seed, start))
    config = agent.config
    envs = make_trial_vector(len(tasks), config.env_id, episodes, AutoresetMode.SAME_STEP, **env_kwargs_of(config))
    envs.set_attr("task", list(tasks))
    obs, _ = envs.reset(seed=seed + start)
    n = len(tasks)
    returns = np.zeros((n, episodes))
    successes = np.full((n, episodes), np.nan)  # 1/0 where the family reports success
    counts = np.zeros(n, dtype=np.int64)
    state, trial_start = None, np.ones(n, dtype=bool)
    watched: list[Any] = []
    family = envs.get_attr("family")[0]
    width = episodes * int(family.horizon)
    beliefs: dict[str, np.ndarray] | None = None
    exact = None
    believer = agent if isinstance(agent, BeliefActor) else None
    if believer is not None:
        beliefs = {"belief_entropy": np.full((n, width), np.nan)}
        if believer.belief_kind == "goal" and split is not None:  # a belief over the goal's cell
            exact = family.goal_posterior(split, n)
            if exact is not None:
                beliefs |= {"exact_entropy": np.full((n, width), np.nan), "belief_tv": np.full((n, width), np.nan)}
    steps = np.zeros(n, dtype=np.int64)
    while (counts < episodes).any():
        action, state = agent.predict(obs, state, trial_start, deterministic)
        if believer is not None and beliefs is not None:  # the belief after this step's observation
            rows = np.flatnonzero((counts < episodes) & (steps < width))
            beliefs["belief_entropy"][rows, steps[rows]] = believer.belief_entropy(state)[rows]
            if exact is not None:
                goal = believer.goal_belief(state)
                gap = 0.5 * np.abs(goal - exact.probs).reshape(n, -1).sum(-1)
                beliefs["belief_tv"][rows, steps[rows]] = gap[rows]
                beliefs["exact_entropy"][rows, steps[rows]] = exact.entropy()[rows]
            steps += 1
        if watch is not None and counts[watch] < episodes:
            watched.append(np.array(action[watch]))
        obs, reward, trial_over, _, infos = envs.step(action)
        if exact is not None:  # the exact posterior after this step's transition: the cell reached, its reward
            exact.observe(reached_states(obs, infos, trial_over, 2), np.asarray(reward) > 0)  # (row, col)
            exact.restart(trial_over)
        trial_start = trial_over  # a finished trial restarts (same task) and plays on, unscored, until all are done
        finished = infos.get("_inner_return", np.zeros(n, dtype=bool)) | trial_over
        ended = np.where(trial_over, infos.get("final_info", {}).get("inner_return", 0.0), 0.0)
        ended = np.where(infos.get("_inner_return", np.zeros(n, dtype=bool)), infos.get("inner_return", 0.0), ended)
        succeeded = np.full(n, np.nan)
        if "inner_success" in infos.get("final_info", {}):
            succeeded = np.where(trial_over, infos["final_info"]["inner_success"], succeeded)
        if "inner_success" in infos:
            succeeded = np.where(infos["_inner_success"], infos["inner_success"], succeeded)
        for i in np.flatnonzero(finished):
            if counts[i] < episodes:
                returns[i, counts[i]] = ended[i]
                successes[i, counts[i]] = succeeded[i]
                counts[i] += 1
    envs.close()
    return returns, watched, beliefs, None if np.isnan(successes).any() else successes


def scored_trial(agent: Actor, results: dict[str, Any], index: int) -> tuple[Task, int, list[Any], list[float]]:
    """The trial that an evaluation scored as task ``index``, played again: (task, the seed its
    env was reset with, the actions the agent played, the returns the results recorded).

    The evaluation's block of tasks is played again as it was (same tasks, seeds and action
    noise, one torch thread), so the actions are the scored trial's; play them in a single trial
    env reset with that seed to watch it (``metagym render --results``).
    """
    import torch

    if isinstance(agent, GradientActor):
        raise ArgumentError(
            "results", "replaying a gradient agent's scored episodes is not supported; render without it"
        )
    if results.get("env") != agent.config.env_id:
        raise ArgumentError("results", f"they score {results.get('env')!r}, but the run trains {agent.config.env_id!r}")
    if (results.get("env_kwargs") or {}) != env_kwargs_of(agent.config):
        raise ArgumentError(
            "results",
            f"they score env kwargs {results.get('env_kwargs') or {}}, "
            f"but the run trains with {env_kwargs_of(agent.config)}",
        )
    for name, low in (("num_tasks", 1), ("seed", 0), ("tasks_per_block", 1), ("episodes_per_trial", 1)):
        value = results.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArgumentError("results", f"{name} is {value!r}, not an integer >= {low} (the file was edited?)")
    count = results["num_tasks"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ArgumentError(
            "task_index", f"expected an integer from 0 to {count - 1} (the results score {count} tasks)"
        )
    recorded_all = results.get("task_returns")
    if recorded_all is None:
        raise ArgumentError(
            "results", "they record no task_returns to check the replay against; evaluate the run again"
        )
    for name, rows in (("tasks", results.get("tasks")), ("task_returns", recorded_all)):
        if not isinstance(rows, list) or len(rows) != count:
            raise ArgumentError("results", f"{name} does not hold the {count} scored tasks (the file was edited?)")
    family = family_for(agent.config.env_id, env_kwargs_of(agent.config))
    tasks = [family.task_type.from_json(json.dumps(t)) for t in results["tasks"]]
    size, seed, episodes = results["tasks_per_block"], results["seed"], results["episodes_per_trial"]
    start = index - index % size
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        block = tasks[start : start + size]
        deterministic = results.get("actions") == "greedy"
        returns, actions, _, _ = _play_block(agent, block, episodes, seed, deterministic, start, index - start)
    finally:
        torch.set_num_threads(threads)
    try:
        recorded = [float(r) for r in recorded_all[index]]
    except (TypeError, ValueError):
        raise ArgumentError(
            "results", f"task_returns[{index}] is not a list of returns (the file was edited?)"
        ) from None
    replay = [float(r) for r in returns[index - start]]
    if len(recorded) != len(replay) or not np.allclose(replay, recorded, atol=1e-6):
        raise ArgumentError(
            "results",
            f"task {index} replays to returns {[round(r, 2) for r in replay]}, the results record "
            f"{[round(r, 2) for r in recorded]}: they are not this run's results as they were written",
        )
    return tasks[index], seed + index, actions, recorded


def reference_trials(
    env_id: str,
    tasks: Sequence[Task],
    episodes: int,
    seed: int,
    split: str | None = None,
    start: int = 0,
    success: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The random, task-oracle and (where computable) Bayes-optimal references on the same
    tasks and seeds (``tasks`` are tasks ``start, start + 1, ...``, as for :func:`agent_trials`).
    The Bayes-optimal policy is optimal for trials of ``episodes`` episodes on tasks drawn from
    ``split`` (the family's prior where the split is its whole prior). With ``success``, for a
    family that reports it, each one's per-episode success (1/0) too, as ``"success:<name>"``.
    ``env_kwargs``: the family env's make kwargs (a run's)."""
    env = gym.make(env_id, **(env_kwargs or {}))
    family = family_of(env)
    policies: dict[str, Policy] = {"random": RandomPolicy(env.action_space), "oracle": family.oracle_policy()}
    bayes = family.bayes_optimal_policy(split or default_split(family), episodes)
    if bayes is not None:
        policies["bayes_optimal"] = bayes
    out: dict[str, np.ndarray] = {}
    for key, policy in policies.items():
        succeeded = np.full((len(tasks), episodes), np.nan)
        out[key] = run_trials(env, policy, tasks, episodes, seed, start, succeeded)
        if success and not np.isnan(succeeded).any():
            out[f"success:{key}"] = succeeded
    return out


@dataclass(frozen=True)
class _Plan:
    """What every block of an evaluation shares."""

    env_id: str
    split: str
    episodes: int  # per trial (memory agents); 1 for gradient agents
    seed: int
    deterministic: bool
    steps: int | None  # adaptation steps of a gradient agent; None for a memory agent
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # the family env's make kwargs


def _score_block(agent: Any, control: Any, plan: _Plan, start: int, tasks: list[Task]) -> dict[str, np.ndarray]:
    """The agent's and the references' returns on one block of tasks (one torch thread)."""
    if isinstance(agent, Policy):  # a classic baseline: played like the references
        env = gym.make(plan.env_id, **plan.env_kwargs)
        out = {"agent": run_trials(env, agent, tasks, plan.episodes, plan.seed, start)}
        return out | reference_trials(
            plan.env_id, tasks, plan.episodes, plan.seed, plan.split, start, env_kwargs=plan.env_kwargs
        )
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if plan.steps is None:
            returns, _, beliefs, success = _play_block(
                agent, tasks, plan.episodes, plan.seed, plan.deterministic, start, split=plan.split
            )
            out = {"agent": returns} | (beliefs or {})
            out |= {} if success is None else {"success:agent": success}
            return out | reference_trials(
                plan.env_id, tasks, plan.episodes, plan.seed, plan.split, start, True, plan.env_kwargs
            )
        noise = block_seed(plan.seed, start)
        out = {}
        for key, who in (("agent", agent), ("random_init", control)):
            # returns and, where the family reports it, success
            out[key], success = who.adaptation_scores(tasks, plan.steps, noise, plan.deterministic)
            out |= {} if success is None else {f"success:{key}": success}
        reports = "success:agent" in out
        singles = reference_trials(plan.env_id, tasks, 1, plan.seed, plan.split, start, reports, plan.env_kwargs)
        for key in ("bayes_optimal", "success:bayes_optimal"):  # optimal for one episode, not this budget
            singles.pop(key, None)
        return out | {key: np.repeat(value, plan.steps + 1, axis=1) for key, value in singles.items()}
    finally:
        torch.set_num_threads(threads)


def _score(
    agent: Any,
    control: Any,
    plan: _Plan,
    tasks: Sequence[Task],
    tasks_per_block: int,
    backend: str,
    address: str | None,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Every block scored on ``backend``, joined back in task order."""
    calls = [(b, list(tasks[b : b + tasks_per_block])) for b in range(0, len(tasks), tasks_per_block)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="task", desc=f"evaluating on {backend}")

    def done(i: int, _: Any) -> None:
        if bar is not None:
            bar.update(len(calls[i][1]))

    try:
        parts = map_calls(_score_block, calls, backend, address, shared=(agent, control, plan), done=done)
    finally:
        if bar is not None:
            bar.close()
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _check_how(seed: int, tasks_per_block: int, backend: str) -> None:
    for name, value, low in (("seed", seed, 0), ("tasks_per_block", tasks_per_block, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArgumentError(name, f"expected an integer >= {low}, got {value!r}")
    check_backend(backend)


def summarize(returns: np.ndarray, seed: int) -> Summary:
    """Per-column mean and bootstrap 95% interval over tasks (rows)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, returns.shape[0], size=(BOOTSTRAP_SAMPLES, returns.shape[0]))
    means = returns[picks].mean(axis=1)  # (samples, episodes)
    return Summary(
        mean=returns.mean(axis=0).tolist(),
        ci_low=np.percentile(means, 2.5, axis=0).tolist(),
        ci_high=np.percentile(means, 97.5, axis=0).tolist(),
    )


def normalized(values: np.ndarray, random: np.ndarray, oracle: np.ndarray) -> list[float | None]:
    """(values - random) / (oracle - random) per column; None where oracle equals random."""
    span = oracle - random
    safe = np.where(np.abs(span) > 1e-12, span, 1.0)
    score = np.where(np.abs(span) > 1e-12, (values - random) / safe, np.nan)
    return [None if np.isnan(v) else float(v) for v in score]


def _pop_success(scored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``success:<name>`` entries of ``scored``, taken out of it, by name."""
    return {key.split(":", 1)[1]: scored.pop(key) for key in list(scored) if key.startswith("success:")}


def _with_success(results: Results, success: dict[str, np.ndarray], seed: int) -> Results:
    """``results`` with the success rate at each point of its x axis (an episode of the trial, or
    an adaptation step), the agent's and the references', where the family reports success
    (Meta-World, goal families)."""
    if "agent" not in success:
        return results
    return dataclasses.replace(
        results,
        episode_success=summarize(success.pop("agent"), seed),
        reference_success={key: summarize(value, seed) for key, value in success.items()},
    )


def evaluate_gradient(
    agent: GradientActor,
    split: str | None = None,
    num_tasks: int = 40,
    seed: int = 0,
    name: str = "agent",
    steps: int = 3,
    deterministic: bool = False,
    backend: str = "local",
    address: str | None = None,
    tasks_per_block: int = TASKS_PER_BLOCK,
    progress: bool = False,
) -> Results:
    """The protocol for gradient-based agents: return after 0..``steps`` adaptation steps.

    Each step plays ``eval_batch_size`` fresh episodes per task with the current parameters and
    adapts on them (sampled actions: the policy gradient needs them); with ``deterministic`` the
    score of each step comes from as many greedy episodes instead. The agent is a
    :class:`metagym.policies.GradientActor`: ``adaptation_scores(tasks, steps, seed,
    deterministic)`` and ``reinitialised(seed)`` (the "random initialisation, fine-tuned alike"
    control); this module imports no agent. The other
    arguments are :func:`evaluate`'s.
    """
    _check_how(seed, tasks_per_block, backend)
    env_id, env_kwargs = agent.config.env_id, env_kwargs_of(agent.config)
    family = family_for(env_id, env_kwargs)
    tasks, split, how = _tasks(family, split, num_tasks, seed)
    control = agent.reinitialised(seed + 1)
    plan = _Plan(env_id, split, 1, seed, deterministic, steps, env_kwargs)
    scored = _score(agent, control, plan, tasks, tasks_per_block, backend, address, progress)
    returns = scored.pop("agent")
    success = _pop_success(scored)
    per_step = int(agent.experience_per_step)
    experience = [k * per_step for k in range(steps + 1)]
    results = _with_success(
        _results(
            name, agent, family, split, tasks, how, seed, deterministic, returns, scored, experience, tasks_per_block
        ),
        success,
        seed,
    )
    return dataclasses.replace(
        results,
        inner_lr=float(agent.config.inner_lr),
        adaptation_steps=list(range(steps + 1)),
        episodes_per_adaptation_step=per_step,
        env_steps_per_adaptation_step=per_step * family.horizon,
        x_axis="gradient steps",
        gradient_steps_to_80pct_oracle=results.scored_index_to_80pct_oracle,
    )


def evaluate(
    agent: Actor,
    split: str | None = None,
    num_tasks: int = 200,
    seed: int = 0,
    name: str = "agent",
    deterministic: bool = False,
    backend: str = "local",
    address: str | None = None,
    tasks_per_block: int = TASKS_PER_BLOCK,
    progress: bool = False,
) -> Results:
    """Run the protocol and return its :class:`~metagym.results.Results` (typed fields, which also
    read as the JSON's mapping; :func:`metagym.results.write` saves them).

    Args:
        agent: A memory agent (:class:`~metagym.policies.Actor`) or a gradient agent
            (:class:`~metagym.policies.GradientActor`).
        split: Split to score; None: ``test`` where the family holds tasks out, else its prior.
        num_tasks: Trials, one per task (finite splits are enumerated in equal strata).
        seed: Seed of the tasks, the trials and the bootstrap (an integer >= 0).
        name: The agent's name in tables and plot legends.
        deterministic: Greedy actions instead of sampled ones.
        backend: ``"local"`` (this process) or ``"ray"`` (blocks of tasks as Ray tasks; needs the
            ``ray`` extra). Both give the same results.
        address: Ray: a running cluster's address (None: start Ray on this machine).
        tasks_per_block: Tasks per batch and per unit of work. Part of what the numbers depend
            on (it is recorded in the results); smaller blocks spread over more workers.
        progress: Show a progress bar of the tasks scored, across workers.
    """
    if isinstance(agent, GradientActor):
        return evaluate_gradient(
            agent, split, num_tasks, seed, name, 3, deterministic, backend, address, tasks_per_block, progress
        )
    _check_how(seed, tasks_per_block, backend)
    env_id, env_kwargs = agent.config.env_id, env_kwargs_of(agent.config)
    family = family_for(env_id, env_kwargs)
    episodes = agent.config.episodes_per_trial or family.episodes_per_trial
    tasks, split, how = _tasks(family, split, num_tasks, seed)
    plan = _Plan(env_id, split, episodes, seed, deterministic, None, env_kwargs)
    scored = _score(agent, None, plan, tasks, tasks_per_block, backend, address, progress)
    returns = scored.pop("agent")
    beliefs = scored.pop("belief_entropy", None)
    tv, exact = scored.pop("belief_tv", None), scored.pop("exact_entropy", None)
    success = _pop_success(scored)
    experience = list(range(episodes))
    results = _with_success(
        _results(
            name, agent, family, split, tasks, how, seed, deterministic, returns, scored, experience, tasks_per_block
        ),
        success,
        seed,
    )
    if beliefs is None:
        return results
    played = ~np.isnan(beliefs).all(axis=0)  # steps that some trial reached

    def per_step(values: np.ndarray) -> list[float]:  # the mean over the trials that reached each step
        return [float(v) for v in (np.nanmean(values[:, played], axis=0) if played.any() else np.zeros(0))]

    return dataclasses.replace(
        results,
        belief_entropy=per_step(beliefs),
        belief_kind=agent.belief_kind if isinstance(agent, BeliefActor) else None,
        exact_belief_entropy=None if exact is None else per_step(exact),
        belief_tv=None if tv is None else per_step(tv),
        belief_tv_mean=None if tv is None else float(np.nanmean(tv)),
    )


class _Scored:
    """A user's memory agent with the ``config`` the protocol reads (env id and kwargs, K)."""

    kind = "memory"

    def __init__(
        self, agent: Any, env_id: str, episodes_per_trial: int | None, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        from types import SimpleNamespace

        self.agent = agent
        self.config = SimpleNamespace(
            env_id=env_id, episodes_per_trial=episodes_per_trial, selected_on="", env_kwargs=env_kwargs
        )

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]:
        action, state = self.agent.predict(obs, state, episode_start, deterministic)
        return action, state


def evaluate_agent(
    agent: Any,
    env_id: str,
    split: str | None = None,
    num_tasks: int = 200,
    seed: int = 0,
    episodes_per_trial: int | None = None,
    name: str | None = None,
    deterministic: bool = False,
    backend: str = "local",
    address: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Results:
    """Score your own memory agent (RL²-style, or SB3-contrib's RecurrentPPO as it is) with the
    adaptation protocol, beside the family's references on the same tasks and seeds.

    The contract is SB3's recurrent ``predict``:
    ``agent.predict(obs, state, episode_start, deterministic) -> (actions, state)``, where
    ``obs`` is a ``(N, D)`` float32 batch of observations of the family's *trial* form
    (``metagym.trial_id(env_id)``; the layout is in :mod:`metagym.wrappers`), one row per task;
    ``state`` is None at the first call and afterwards whatever the agent returned;
    ``episode_start`` is ``(N,)`` bool, True where a trial starts (reset the memory there, and
    only there: inner episodes of a trial share it); ``actions`` is ``(N,)`` integers for a
    ``Discrete`` action space, else ``(N, *shape)``.

    Args:
        agent: Anything with that ``predict``.
        env_id: A *family* id (``"MetaBandit-v0"``, or one of your own); a trial id is refused.
        split: Split to score; None: ``test`` where the family holds tasks out, else its prior.
        num_tasks: Trials, one per task. seed: Seed of the tasks, trials and bootstrap.
        episodes_per_trial: K; None: the family's default.
        name: The agent's name in tables and plots (default: its class name).
        deterministic: Passed to ``predict``.
        backend, address: As for :func:`evaluate` (on Ray the agent must pickle).
        env_kwargs: Make kwargs of the family env (e.g. ``{"horizon": 100}``); None: the id's own.

    Returns:
        The :class:`~metagym.results.Results` that :func:`write` saves and plots.
    """
    check_family_id(env_id, "env_id", env_kwargs)
    if not callable(getattr(agent, "predict", None)):
        raise ArgumentTypeError(
            "agent", f"expected an object with predict(obs, state, episode_start, deterministic), got {agent!r}"
        )
    scored = _Scored(agent, env_id, episodes_per_trial, check_env_kwargs(env_kwargs))
    return evaluate(
        scored, split, num_tasks, seed, name or type(agent).__name__, deterministic, backend=backend, address=address
    )


def evaluate_policy(
    policy: Policy,
    env_id: str,
    split: str | None = None,
    num_tasks: int = 200,
    seed: int = 0,
    episodes_per_trial: int | None = None,
    name: str | None = None,
    backend: str = "local",
    address: str | None = None,
    tasks_per_block: int = TASKS_PER_BLOCK,
    progress: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> Results:
    """Score a :class:`metagym.policies.Policy` (a classic baseline such as UCB1 or PSRL, or
    your own) with the adaptation protocol: the same tasks, seeds and results as :func:`evaluate`,
    each trial played like the references (:func:`metagym.policies.run_trials`). The arguments
    are :func:`evaluate_agent`'s (``env_kwargs``: the family env's make kwargs).

    Example:
        >>> from metagym.agents.classic import ThompsonSampling
        >>> results = evaluate_policy(ThompsonSampling(5), "MetaBandit-v0", num_tasks=20)
        >>> results["agent"], results["episodes_per_trial"]
        ('thompson', 10)
    """
    check_family_id(env_id, "env_id", env_kwargs)
    if not isinstance(policy, Policy):
        raise ArgumentTypeError("policy", f"expected a metagym.policies.Policy, got {policy!r}")
    _check_how(seed, tasks_per_block, backend)
    env_kwargs = check_env_kwargs(env_kwargs)
    family = family_for(env_id, env_kwargs)
    episodes = episodes_per_trial or family.episodes_per_trial
    tasks, split, how = _tasks(family, split, num_tasks, seed)
    plan = _Plan(env_id, split, episodes, seed, False, None, env_kwargs)
    scored = _score(policy, None, plan, tasks, tasks_per_block, backend, address, progress)
    returns = scored.pop("agent")
    holder = _Scored(policy, env_id, episodes, env_kwargs)
    holder.config.selected_on = getattr(policy, "selected_on", "")
    name = name or policy.name
    experience = list(range(episodes))
    return _results(name, holder, family, split, tasks, how, seed, False, returns, scored, experience, tasks_per_block)


def _results(
    name: str,
    agent: Any,
    family: TaskFamily[Any],
    split: str,
    tasks: Sequence[Task],
    how: dict[str, Any],
    seed: int,
    deterministic: bool,
    returns: np.ndarray,
    references: dict[str, np.ndarray],
    experience: list[int],
    tasks_per_block: int,
) -> Results:
    env_id = agent.config.env_id
    random_mean, oracle_mean = references["random"].mean(axis=0), references["oracle"].mean(axis=0)
    score = normalized(returns.mean(axis=0), random_mean, oracle_mean)
    reached = next((k for k, v in enumerate(score) if v is not None and v >= ORACLE_FRACTION), None)
    return Results(
        agent=name,
        env=env_id,
        split=split,
        distribution=distribution_of(family, split),
        selection_split=getattr(agent.config, "selected_on", "") or None,
        actions="greedy" if deterministic else "sampled",
        num_tasks=len(tasks),
        task_sampling=how,
        episodes_per_trial=returns.shape[1],
        seed=seed,
        tasks_per_block=tasks_per_block,
        episode_returns=summarize(returns, seed),
        trial_return=summarize(returns.sum(axis=1, keepdims=True), seed),
        references={key: summarize(value, seed) for key, value in references.items()},
        reference_trial_return={key: float(value.sum(axis=1).mean()) for key, value in references.items()},
        normalized_score=score,
        reference_normalized_score={
            key: normalized(value.mean(axis=0), random_mean, oracle_mean) for key, value in references.items()
        },
        experience_episodes=experience,
        scored_index_to_80pct_oracle=reached,
        episodes_to_80pct_oracle=None if reached is None else experience[reached],
        tasks=[json.loads(task.to_json()) for task in tasks],
        task_returns=returns.tolist(),
        reward_version=getattr(family, "reward_version", None),
        env_kwargs=env_kwargs_of(agent.config) or None,
    )


def write(results: Results, out: Any, compare: Sequence[Results] = ()) -> list[Any]:
    """Write ``out`` (JSON), a CSV and a PNG plot beside it; see :func:`metagym.results.write`."""
    from metagym.results import write as write_results

    return write_results(results, out, compare)
