"""MetaGrid: gridworld game levels with a hidden goal."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium.vector import AutoresetMode

from metagym.batched import FamilyEnv
from metagym.envs.grid_core import GridOracle, LayoutFamily, MetaGridDynamics
from metagym.envs.metagrid_levels import (
    LEVELS,
    PROCEDURAL_OOD_SIZES,
    PROCEDURAL_SEEDS,
    PROCEDURAL_SIZES,
    Layout,
    named_layout,
    procedural_horizon,
    procedural_layout,
)
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    check_cell,
    check_int,
    generator_uniforms,
    hash_splits,
    ranked_split,
    stream_uniforms,
)
from metagym.vector import FamilyVectorEnv

if TYPE_CHECKING:
    from metagym.envs.grid_bayes import GoalPosterior

__all__ = ["GridFamily", "GridOracle", "GridTask", "MetaGridEnv", "MetaGridVectorEnv", "layout_of"]


@dataclasses.dataclass(frozen=True)
class GridTask(Task):
    """One MetaGrid task: a level, its layout (procedural only) and the hidden goal cell.

    Attributes:
        level: Level name (see ``metagym.envs.metagrid_levels.LEVELS``).
        goal: Hidden goal cell, (row, col).
        seed: Layout seed of a procedural level; 0 for named levels.
        size: Side of a procedural layout; 0 for named levels.
    """

    level: str
    goal: tuple[int, int]
    seed: int = 0
    size: int = 0


def layout_of(task: GridTask) -> Layout:
    """The concrete grid a task plays on."""
    if task.level == "procedural":
        return procedural_layout(task.seed, task.size)
    return named_layout(task.level)


def horizon_of(task: GridTask) -> int:
    """Steps per episode of a task."""
    if task.level == "procedural":
        return procedural_horizon(task.size)
    return LEVELS[task.level].horizon


class GridFamily(LayoutFamily[GridTask]):
    """The tasks of one MetaGrid level.

    Named levels are scored on their prior: the goal is uniform over every goal cell in
    training and in evaluation, and the family has only a ``train`` split (VariBAD's GridNavi
    protocol: fresh trials from the training prior). ``held_out_goals=True`` is the
    out-of-support experiment instead: 20% of the goal cells (at least one, by a stable hash)
    are ``test``, the next 10% (at least one) ``validation``, and training never rewards them.
    ``procedural`` splits layout seeds by a stable hash (20% ``test``, 10% ``validation``) at
    sizes 7 and 9; its ``ood`` split is every seed at the larger sizes 11 and 13.

    Args:
        level: One of ``LEVELS``.
        held_out_goals: Named levels only: hold goal cells out of training (see above).
    """

    name = "MetaGrid"
    task_type = GridTask
    seed_namespace = "procedural"
    ood_sizes = PROCEDURAL_OOD_SIZES

    def __init__(self, level: str = "procedural", held_out_goals: bool = False) -> None:
        if level not in LEVELS:
            raise ArgumentError("level", f"unknown level {level!r}; allowed: {sorted(LEVELS)}")
        if not isinstance(held_out_goals, bool):
            raise ArgumentError("held_out_goals", f"expected True or False, got {held_out_goals!r}")
        if held_out_goals and level == "procedural":
            raise ArgumentError(
                "held_out_goals", "only named levels hold goal cells out; procedural holds out layout seeds"
            )
        self.level = LEVELS[level]
        self.held_out_goals = held_out_goals
        self.name = f"MetaGrid[{level}{', held-out goals' if held_out_goals else ''}]"
        self.view_size, self.goal_terminates = self.level.view_size, self.level.goal_terminates
        self.splits: tuple[str, ...]
        if level == "procedural":
            self.splits = ("train", "validation", "test", "ood")
            self.variant_fields = ("size",)
        else:
            self.splits = ("train", "validation", "test") if held_out_goals else ("train",)
        self._goals_by_split: dict[str, list[tuple[int, int]]] = {}
        self._goal_splits: dict[tuple[int, int], str] = {}
        if level != "procedural":
            goals = named_layout(level).goal_cells
            if held_out_goals:
                self._goal_splits = dict(zip(goals, ranked_split([f"{level}:{r},{c}" for r, c in goals]), strict=True))
            else:
                self._goal_splits = dict.fromkeys(goals, "train")
            self._goals_by_split = {s: [g for g in goals if self._goal_splits[g] == s] for s in self.splits}

    def __repr__(self) -> str:
        extra = ", held_out_goals=True" if self.held_out_goals else ""
        return f"GridFamily(level={self.level.name!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GridFamily) and other.level == self.level and other.held_out_goals == self.held_out_goals
        )

    def __hash__(self) -> int:
        return hash(("GridFamily", self.level.name, self.held_out_goals))

    @property
    def params(self) -> tuple[Param, ...]:
        goal = Param("goal", "cell", "hidden goal cell (row, col); never observed", default=self.default_task.goal)
        if self.level.name != "procedural":
            return (dataclasses.replace(goal, choices=named_layout(self.level.name).goal_cells),)
        sizes = PROCEDURAL_SIZES + PROCEDURAL_OOD_SIZES
        return (
            Param("seed", "int", "layout seed", low=0, high=PROCEDURAL_SEEDS - 1, default=0),
            Param("size", "int", "side of the layout, in cells (ood: 11, 13)", choices=sizes, default=sizes[0]),
            dataclasses.replace(goal, doc=goal.doc + "; any reachable floor cell 2+ steps from the start"),
        )

    @property
    def default_task(self) -> GridTask:
        if self.level.name == "procedural":
            seed = next(s for s in range(100) if self._seed_split(s) == "train")
            layout = procedural_layout(seed, PROCEDURAL_SIZES[0])
            return GridTask("procedural", layout.goal_cells[-1], seed, PROCEDURAL_SIZES[0])
        return GridTask(self.level.name, self._goals_by_split["train"][-1])

    @property
    def horizon(self) -> int:
        if self.level.name == "procedural":
            return procedural_horizon(max(PROCEDURAL_OOD_SIZES))
        return self.level.horizon

    @property
    def episodes_per_trial(self) -> int:
        return self.level.episodes_per_trial

    def layout(self, task: GridTask) -> Layout:
        return layout_of(task)

    @property
    def fixed_layout(self) -> Layout | None:
        return None if self.level.name == "procedural" else named_layout(self.level.name)

    def variants(self, split: str) -> tuple[tuple[int], ...]:
        return tuple((size,) for size in (PROCEDURAL_OOD_SIZES if split == "ood" else PROCEDURAL_SIZES))

    def make_layout(self, seed: int, variant: tuple[Any, ...]) -> Layout:
        return procedural_layout(seed, int(variant[0]))

    def variant_horizon(self, variant: tuple[Any, ...]) -> int:
        return procedural_horizon(int(variant[0]))

    def bank_task_arrays(
        self, seeds: np.ndarray, variants: dict[str, np.ndarray], goals: np.ndarray
    ) -> dict[str, np.ndarray]:
        level = np.full(len(seeds), "procedural", dtype=object)
        return {"level": level, "goal": goals, "seed": seeds, "size": variants["size"].astype(np.int64)}

    def goal_of(self, task: GridTask) -> tuple[int, int]:
        return task.goal

    def task_horizon(self, task: GridTask) -> int:
        return horizon_of(task)

    @property
    def max_shape(self) -> tuple[int, int]:
        if self.level.name == "procedural":
            side = max(PROCEDURAL_OOD_SIZES)
            return (side, side)
        return named_layout(self.level.name).shape

    @staticmethod
    def _seed_split(seed: int) -> str:
        return SPLIT_CODES[int(hash_splits("procedural", np.array([seed]))[0])]

    def task_set(self, split: str) -> tuple[GridTask, ...] | None:
        self.check_split(split)
        if self.level.name == "procedural":
            return None
        return tuple(GridTask(self.level.name, g) for g in self._goals_by_split[split])

    def bayes_optimal_policy(self, split: str = "train", episodes: int | None = None) -> Policy | None:
        """Exact Bayes-optimal play for a goal uniform over the split's goal cells (named levels:
        shipped plans for GridNavi's prior, small cases solved on the spot; None elsewhere)."""
        from metagym.envs.grid_bayes import GridBayesOptimal, plan_for

        tasks = self.task_set(split)
        if tasks is None:
            return None
        k = self.episodes_per_trial if episodes is None else episodes
        layout = named_layout(self.level.name)
        goals = tuple(t.goal for t in tasks)
        plan = plan_for(self.level.name, layout, goals, self.level.horizon, k, self.goal_terminates)
        return None if plan is None else GridBayesOptimal(self, *plan)

    def goal_posterior(self, split: str, n: int) -> GoalPosterior | None:
        """The exact posterior over the goal's cell of ``n`` trials, for a goal uniform over the
        split's goal cells (named levels; None for procedural ones)."""
        from metagym.envs.grid_bayes import GoalPosterior

        tasks = self.task_set(split)
        if tasks is None:
            return None
        return GoalPosterior(named_layout(self.level.name).shape, [t.goal for t in tasks], n)

    def split_of(self, task: GridTask) -> str:
        self.validate(task)
        if self.level.name != "procedural":
            return self._goal_splits[task.goal]
        if task.size in PROCEDURAL_OOD_SIZES:
            return "ood"
        return self._seed_split(task.seed)

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[GridTask]:
        if self.level.name != "procedural":
            goals = self._goals_by_split[split]
            return [GridTask(self.level.name, goals[int(i)]) for i in rng.integers(0, len(goals), size=n)]
        arrays = self.draw_from_banks(generator_uniforms(rng), n, split)
        return [self.from_arrays(arrays, j) for j in range(n)]

    def draw_arrays(self, streams: Streams, idx: np.ndarray, split: str = "train") -> dict[str, np.ndarray]:
        if self.level.name == "procedural":
            return self.draw_from_banks(stream_uniforms(streams, idx), len(idx), split)
        goals = np.array(self._goals_by_split[split], dtype=np.int64)
        n = len(idx)
        return {
            "level": np.full(n, self.level.name, dtype=object),
            "goal": goals[streams.integers(idx, len(goals))[:, 0]],
            "seed": np.zeros(n, dtype=np.int64),
            "size": np.zeros(n, dtype=np.int64),
        }

    def _check(self, task: GridTask, argument: str) -> None:
        if task.level != self.level.name:
            raise ArgumentError(f"{argument}.level", f"this env plays level {self.level.name!r}, got {task.level!r}")
        check_int(task.seed, f"{argument}.seed", 0, PROCEDURAL_SEEDS - 1)
        check_int(task.size, f"{argument}.size", 0, max(PROCEDURAL_OOD_SIZES))
        if self.level.name == "procedural":
            allowed = PROCEDURAL_SIZES + PROCEDURAL_OOD_SIZES
            if task.size not in allowed:
                raise ArgumentError(f"{argument}.size", f"expected one of {allowed}, got {task.size}")
        elif task.seed != 0 or task.size != 0:
            raise ArgumentError(argument, f"seed and size must be 0 for level {task.level!r}")
        goal = check_cell(task.goal, f"{argument}.goal")
        if not (isinstance(goal, tuple) and len(goal) == 2 and goal in layout_of(task).goal_cells):
            raise ArgumentError(
                f"{argument}.goal",
                f"{goal!r} is not a goal cell of this layout; "
                f"allowed: floor cells 2+ steps from the start, e.g. {layout_of(task).goal_cells[:3]}",
            )


class MetaGridEnv(FamilyEnv[GridTask]):
    """## Description

    A gridworld with a hidden goal cell. The agent starts at the level's start cell and earns
    +1 for every step it spends on the goal and -0.1 for every other step. It never observes the
    goal: it has to search for it, then, in later episodes of a trial on the same task, go
    straight there. Levels are named ASCII layouts (``gridnavi``, ``open_room``,
    ``four_rooms``) or seeded procedural layouts (``procedural``).

    ## Action Space

    ``Discrete(5)``: 0 noop, 1 up, 2 right, 3 down, 4 left. Moves into walls or off the grid
    leave the agent where it is.

    ## Observation Space

    ``Box(0, high, (2 + v*v,), uint8)``: the agent's (row, col), then the ``v x v`` egocentric
    view centred on it, row by row (1 floor, 2 wall or outside the grid). ``v`` is the
    ``view_size`` (``gridnavi``: 0, so the observation is the position alone, as in VariBAD).

    ## Rewards

    +1 on the goal, -0.1 elsewhere, at every step.

    ## Starting State

    The level's start cell ((0, 0) everywhere).

    ## Episode End

    Terminated on reaching the goal where the level says so (not ``gridnavi``: as in VariBAD
    the agent must stay on it); truncated after the level's horizon (``gridnavi`` 15,
    ``open_room`` 40, ``four_rooms`` 100, ``procedural`` size x size steps).

    ## Task Distribution

    A task is a :class:`GridTask`: level, hidden goal cell and, for ``procedural``, the layout
    seed and size. Named levels draw the goal uniformly over their goal cells; ``procedural``
    draws a seed, a size and a goal uniformly over reachable cells 2+ steps from the start.

    ## Splits

    Named levels have only ``train``: the goal prior is the same in training and evaluation,
    and an agent is scored on fresh trials from it (VariBAD's protocol for GridNavi; use
    ``split="train"``). With ``held_out_goals=True`` (the out-of-support experiment; registered
    as ``MetaGrid-GridNavi-HeldOutGoals-v0``) 20% of the goal cells are ``test`` and 10%
    ``validation`` (at least one each, by a stable hash; GridNavi: 4 and 2 of 21), never
    rewarded in training. ``procedural``: ``train`` / ``validation`` / ``test`` split layout
    seeds by a stable hash (70/10/20%) at sizes 7 and 9; ``ood`` is sizes 11 and 13.

    ## Arguments

    * ``level``: ``"procedural"`` (default), ``"gridnavi"``, ``"open_room"``, ``"four_rooms"``.
    * ``view_size``: side of the egocentric view, 0 or odd up to 9 (default: the level's).
    * ``held_out_goals``: named levels only; hold 30% of the goal cells out of training.
    * ``render_mode``: ``None``, ``"rgb_array"`` or ``"human"``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaGrid-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['seed', 'size', 'goal']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    def __init__(
        self,
        level: str = "procedural",
        view_size: int | None = None,
        render_mode: str | None = None,
        held_out_goals: bool = False,
    ):
        super().__init__(render_mode, MetaGridDynamics(GridFamily(level, held_out_goals), 1, view_size))


class MetaGridVectorEnv(FamilyVectorEnv[GridTask]):
    """``num_envs`` MetaGrid envs in one numpy step; see :class:`MetaGridEnv` for the game."""

    def __init__(
        self,
        num_envs: int,
        level: str = "procedural",
        view_size: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        held_out_goals: bool = False,
    ) -> None:
        dynamics = MetaGridDynamics(GridFamily(level, held_out_goals), num_envs, view_size)
        super().__init__(num_envs, render_mode, autoreset_mode, max_episode_steps, dynamics)
