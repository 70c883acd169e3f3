"""The exact Bayes-optimal policy for small hidden-goal grids (GridNavi).

The goal is uniform over a set of candidate cells and is never observed; the only evidence is
the reward of the cell the agent stands on. So the belief is just "which candidates are ruled
out" (VariBAD, Zintgraf et al. 2020), and until the goal is found everything the agent sees is
determined by its own moves: the Bayes-optimal policy is one open-loop search plan across the
trial's episodes, followed until the goal shows itself, after which the agent stays on it and
walks straight to it in every later episode.

The plan comes from exact dynamic programming over (episode, step, position, unexplored set),
with sets as bitboards. From any state the only moves worth making are a shortest walk through
cells already known to be empty onto one new candidate (arriving later is never better: a noop
costs a step and changes nothing) or idling to the end of the episode; both are enumerated, so
the value is exact. GridNavi's 4-episode trial has 27 million such states (6 minutes, 6 GB
here), so its plans ship as data (``data/bayes_plans.json``, made by
``scripts/solve_gridnavi_bayes.py``); small cases are solved on the spot.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from metagym.envs.grid_core import MOVES, LayoutFamily, distances_to
from metagym.envs.metagrid_levels import Layout
from metagym.policies import Policy
from metagym.tasks import Task

GOAL_REWARD, STEP_REWARD = 1.0, -0.1
Cell = tuple[int, int]


class SearchPlan:
    """The Bayes-optimal search of ``layout`` for a goal uniform over ``candidates``.

    Args:
        layout: Walls and start cell.
        candidates: The cells the goal may be in (uniform prior).
        horizon: Steps per episode.
        episodes: Episodes per trial.
        goal_terminates: Whether stepping onto the goal ends the episode.

    Attributes:
        value: Expected trial return of the plan (exact).
        actions: ``actions[e]``: the actions of episode ``e`` while the goal is not yet found.
        states: How many states the dynamic programme visited.
    """

    def __init__(
        self, layout: Layout, candidates: Sequence[Cell], horizon: int, episodes: int, goal_terminates: bool
    ) -> None:
        self.horizon, self.episodes, self.terminates = horizon, episodes, goal_terminates
        rows, cols = self.shape = layout.shape
        self.cols = cols
        self.candidates = tuple(candidates)
        self.floor = sum(1 << (r * cols + c) for r in range(rows) for c in range(cols) if not layout.walls[r, c])
        self._left = sum(1 << (r * cols + c) for r in range(rows) for c in range(1, cols))
        self._right = sum(1 << (r * cols + c) for r in range(rows) for c in range(cols - 1))
        self.start = 1 << (layout.start[0] * cols + layout.start[1])
        dist = distances_to(layout, layout.start)
        # Return of each later episode once the goal is known: walk there, then stay.
        self.known = {}
        for cell in self.candidates:
            d = int(dist[cell])
            stay = 0.0 if goal_terminates else GOAL_REWARD * (horizon - d)
            self.known[1 << (cell[0] * cols + cell[1])] = STEP_REWARD * (d - 1) + GOAL_REWARD + stay
        self._memo: dict[tuple[int, int, int, int], float] = {}
        everything = sum(self.known)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            self.value = self._value(0, 0, self.start, everything) / len(self.candidates)
            self.actions = self._extract(everything)
        finally:
            sys.setrecursionlimit(limit)
        self.states = len(self._memo)
        self._memo.clear()

    def _neighbours(self, cells: int) -> int:
        c = self.cols
        return ((cells >> c) | (cells << c) | ((cells & self._left) >> 1) | ((cells & self._right) << 1)) & self.floor

    def _options(self, episode: int, step: int, pos: int, unexplored: int) -> list[tuple[float, int, int]]:
        """(value, new cell, steps) of each shortest walk through known-empty cells to a new candidate."""
        out = []
        remaining = unexplored.bit_count()
        seen, layer, d = pos, pos, 0
        while layer and step + d < self.horizon:
            d += 1
            reached = self._neighbours(layer) & ~seen
            seen |= reached
            hits, layer = reached & unexplored, reached & ~unexplored
            while hits:
                cell = hits & -hits
                hits ^= cell
                found_at = step + d - 1
                value = STEP_REWARD * (remaining * (d - 1) + remaining - 1) + GOAL_REWARD
                if not self.terminates:
                    value += GOAL_REWARD * (self.horizon - 1 - found_at)
                value += self.known[cell] * (self.episodes - 1 - episode)
                value += self._after(episode, step + d, cell, unexplored ^ cell)
                out.append((value, cell, d))
        return out

    def _idle(self, episode: int, step: int, unexplored: int) -> float:
        waiting = STEP_REWARD * unexplored.bit_count() * (self.horizon - step)
        return waiting + self._value(episode + 1, 0, self.start, unexplored)

    def _after(self, episode: int, step: int, pos: int, unexplored: int) -> float:
        if step == self.horizon:
            return self._value(episode + 1, 0, self.start, unexplored)
        return self._value(episode, step, pos, unexplored)

    def _value(self, episode: int, step: int, pos: int, unexplored: int) -> float:
        """Sum over the unfound goals of their return from here (an unnormalised expectation)."""
        if episode == self.episodes or not unexplored:
            return 0.0
        key = (episode, step, pos, unexplored)
        value = self._memo.get(key)
        if value is None:
            value = max([self._idle(episode, step, unexplored), *(v for v, _, _ in self._options(*key))])
            self._memo[key] = value
        return value

    def _extract(self, unexplored: int) -> list[list[int]]:
        """Follow the best choices from the start: each episode's actions until the goal shows."""
        plans: list[list[int]] = []
        for episode in range(self.episodes):
            pos, step, actions = self.start, 0, []
            while step < self.horizon and unexplored:
                idle = self._idle(episode, step, unexplored)
                options = self._options(episode, step, pos, unexplored)
                best = max(options, default=None, key=lambda o: o[0])
                if best is None or best[0] <= idle + 1e-12:
                    break
                _, cell, d = best
                actions += self._walk(pos, cell, unexplored, d)
                pos, step, unexplored = cell, step + d, unexplored ^ cell
            plans.append(actions)
        return plans

    def _walk(self, pos: int, target: int, unexplored: int, d: int) -> list[int]:
        """Actions of a shortest walk of ``d`` steps from ``pos`` to ``target`` through known cells."""
        layers, seen, layer = [pos], pos, pos
        for _ in range(d - 1):
            layer = self._neighbours(layer) & ~seen & ~unexplored
            seen |= layer
            layers.append(layer)
        path, cell = [target], target
        for layer in reversed(layers):  # step back through the layers to the start
            cell = self._neighbours(cell) & layer & -(self._neighbours(cell) & layer)
            path.append(cell)
        cells = [self._cell(b) for b in reversed(path)]
        moves = {tuple(int(v) for v in MOVES[a]): a for a in range(1, len(MOVES))}
        return [moves[(b[0] - a[0], b[1] - a[1])] for a, b in itertools.pairwise(cells)]

    def _cell(self, bit: int) -> Cell:
        index = bit.bit_length() - 1
        return (index // self.cols, index % self.cols)


@cache
def shipped_plans() -> tuple[dict[str, Any], ...]:
    """The plans in ``data/bayes_plans.json`` (too slow to solve at evaluation time)."""
    text = resources.files("metagym.envs").joinpath("data/bayes_plans.json").read_text()
    return tuple(json.loads(text)["plans"])


@cache
def plan_for(
    level: str, layout: Layout, candidates: tuple[Cell, ...], horizon: int, episodes: int, terminates: bool
) -> tuple[float, tuple[tuple[int, ...], ...]] | None:
    """(value, actions per episode) of the Bayes-optimal plan: shipped, or solved if cheap, else None."""
    for entry in shipped_plans():
        same = entry["level"] == level and sorted(map(tuple, entry["candidates"])) == sorted(candidates)
        if same and (entry["horizon"], entry["episodes"], entry["terminates"]) == (horizon, episodes, terminates):
            return float(entry["value"]), tuple(tuple(a) for a in entry["actions"])
    if episodes > 1 and len(candidates) > 10:
        return None
    plan = SearchPlan(layout, candidates, horizon, episodes, terminates)
    return plan.value, tuple(tuple(a) for a in plan.actions)


class GridBayesOptimal(Policy):
    """Plays the Bayes-optimal search plan; once the goal shows itself, stays on it and walks
    straight to it in the trial's later episodes.

    Args:
        family: A layout family whose tasks share one layout (a named level).
        value: The plan's expected trial return.
        actions: The plan: each episode's actions while the goal is unknown.
    """

    name = "bayes_optimal"

    def __init__(self, family: LayoutFamily[Any], value: float, actions: Sequence[Sequence[int]]) -> None:
        task = family.default_task
        layout = family.layout(task)
        self.value, self.actions = value, [list(a) for a in actions]
        self._walls, self._start = layout.walls, layout.start
        self._goal: Cell | None = None
        self._dist = np.zeros((1, 1), dtype=np.int64)
        self._episode, self._step, self._pos = -1, 0, self._start

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        self._goal, self._episode = None, -1  # the task is not read: the goal must be found

    def reset_episode(self, obs: Any) -> None:
        self._episode += 1
        self._step, self._pos = 0, self._start

    def act(self, obs: Any) -> int:
        if self._goal is None:
            plan = self.actions[self._episode] if self._episode < len(self.actions) else []
            return plan[self._step] if self._step < len(plan) else 0
        if self._pos == self._goal:
            return 0
        r, c = self._pos
        rows, cols = self._walls.shape
        options = [(a, (r + int(MOVES[a][0]), c + int(MOVES[a][1]))) for a in range(1, len(MOVES))]
        legal = [(a, p) for a, p in options if 0 <= p[0] < rows and 0 <= p[1] < cols and not self._walls[p]]
        return min(legal, key=lambda ap: self._dist[ap[1]])[0]

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        dr, dc = MOVES[int(action)]
        r, c = self._pos[0] + int(dr), self._pos[1] + int(dc)
        rows, cols = self._walls.shape
        if 0 <= r < rows and 0 <= c < cols and not self._walls[r, c]:
            self._pos = (r, c)
        self._step += 1
        if reward > 0 and self._goal is None:
            self._goal = self._pos
            self._dist = distances_to(Layout(self._walls, self._start, (self._pos,)), self._pos)


class GoalPosterior:
    """The exact posterior over the goal's cell of ``n`` trials of a hidden-goal grid, batched.

    The goal is uniform over ``candidates`` and shows itself only by its reward: every cell
    reached without reward is ruled out, and a rewarded cell is the goal. So the posterior is
    uniform over the candidates not yet ruled out, or all on the goal once it was found.

    Args:
        shape: The grid's (rows, cols).
        candidates: The cells the goal may be in (the split's goals).
        n: Trials tracked at once.
    """

    def __init__(self, shape: tuple[int, int], candidates: Sequence[Cell], n: int) -> None:
        self.shape = shape
        self.prior = np.zeros(shape[0] * shape[1], dtype=bool)
        for r, c in candidates:
            self.prior[r * shape[1] + c] = True
        self.left = np.tile(self.prior, (n, 1))  # (n, cells): candidates not ruled out
        self.found = np.full(n, -1)  # the goal's cell index once a trial has seen its reward

    def restart(self, rows: np.ndarray) -> None:
        """Back to the prior in trials ``rows`` (a bool mask: a new trial, a new task)."""
        self.left[rows] = self.prior
        self.found[rows] = -1

    def observe(self, cells: np.ndarray, rewarded: np.ndarray) -> None:
        """Each trial reached ``cells`` (n, 2) (row, col), with the goal's reward where ``rewarded``."""
        index = cells[:, 0].astype(np.int64) * self.shape[1] + cells[:, 1].astype(np.int64)
        rows = np.arange(len(index))
        hit = rewarded & (self.found < 0)
        self.found[hit] = index[hit]
        self.left[rows[~rewarded], index[~rewarded]] = False

    @property
    def probs(self) -> np.ndarray:
        """(n, rows, cols): each trial's posterior, summing to 1."""
        p = self.left.astype(np.float64)
        known = self.found >= 0
        p[known] = 0.0
        p[known, self.found[known]] = 1.0
        return (p / p.sum(-1, keepdims=True)).reshape(len(p), *self.shape)

    def entropy(self) -> np.ndarray:
        """(n,): each posterior's entropy in nats (log of the candidates left; 0 once found)."""
        return np.where(self.found >= 0, 0.0, np.log(self.left.sum(-1)))
