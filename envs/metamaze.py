"""MetaMaze: procedurally generated perfect and looped mazes with a hidden goal."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from metagym.batched import FamilyEnv
from metagym.envs.grid_core import LayoutFamily, MetaGridDynamics
from metagym.envs.metagrid_levels import Layout
from metagym.errors import ArgumentError
from metagym.streams import Streams
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    check_cell,
    check_int,
    generator_uniforms,
    hash_splits,
    stream_uniforms,
)
from metagym.vector import FamilyVectorEnv

SIZES = (9, 11)  # train and test
OOD_SIZES = (13, 15)
LOOPS = (0.0, 0.1, 0.25)  # share of the remaining inner walls knocked through
SEEDS = 2**31


@dataclasses.dataclass(frozen=True)
class MazeTask(Task):
    """A maze (seed, side, loop ratio) and the hidden goal cell (row, col)."""

    seed: int
    size: int
    loops: float
    goal: tuple[int, int]


@lru_cache(maxsize=4096)
def maze_layout(seed: int, size: int, loops: float) -> Layout:
    """The maze of ``seed``: a depth-first-search perfect maze on a ``size x size`` grid
    (rooms on even coordinates, walls between them), then ``loops`` of the remaining inner
    walls knocked through. The goal may be any room 2+ steps from the start (0, 0)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, size, round(loops * 1000)])))
    walls = np.ones((size, size), dtype=bool)
    walls[0, 0] = False
    stack = [(0, 0)]
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for dr, dc in ((-2, 0), (0, 2), (2, 0), (0, -2))
            if 0 <= r + dr < size and 0 <= c + dc < size and walls[r + dr, c + dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        walls[(r + nr) // 2, (c + nc) // 2] = walls[nr, nc] = False
        stack.append((nr, nc))
    inner = [(r, c) for r in range(size) for c in range(size) if walls[r, c] and (r % 2) != (c % 2)]
    for r, c in inner:
        if rng.random() < loops:
            walls[r, c] = False
    walls.flags.writeable = False
    rooms = tuple((r, c) for r in range(0, size, 2) for c in range(0, size, 2) if r + c >= 2)
    return Layout(walls, (0, 0), rooms)


class MazeFamily(LayoutFamily[MazeTask]):
    """Mazes: ``train`` / ``validation`` / ``test`` split maze seeds by a stable hash (70/10/20%) at sides 9 and
    11; ``ood`` is every seed at the larger sides 13 and 15. Loop ratios 0, 0.1 and 0.25."""

    task_type = MazeTask
    name = "MetaMaze"
    view_size = 3
    goal_terminates = True
    variant_fields = ("size", "loops")
    seed_namespace = "maze"
    ood_sizes = OOD_SIZES

    def __repr__(self) -> str:
        return "MazeFamily()"

    def __eq__(self, other: object) -> bool:  # no arguments: every instance is the same family
        return isinstance(other, MazeFamily)

    def __hash__(self) -> int:
        return hash("MazeFamily")

    def variants(self, split: str) -> tuple[tuple[Any, ...], ...]:
        return tuple((size, loops) for size in (OOD_SIZES if split == "ood" else SIZES) for loops in LOOPS)

    def make_layout(self, seed: int, variant: tuple[Any, ...]) -> Layout:
        return maze_layout(seed, int(variant[0]), float(variant[1]))

    def variant_horizon(self, variant: tuple[Any, ...]) -> int:
        return int(variant[0]) ** 2

    def bank_task_arrays(
        self, seeds: np.ndarray, variants: dict[str, np.ndarray], goals: np.ndarray
    ) -> dict[str, np.ndarray]:
        size, loops = variants["size"].astype(np.int64), variants["loops"].astype(np.float64)
        return {"seed": seeds, "size": size, "loops": loops, "goal": goals}

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("seed", "int", "maze seed", low=0, high=SEEDS - 1, default=0),
            Param("size", "int", "side of the maze in cells (ood: 13, 15)", choices=SIZES + OOD_SIZES, default=9),
            Param("loops", "float", "share of inner walls knocked through (0: a perfect maze)", choices=LOOPS),
            Param("goal", "cell", "hidden goal room (row, col); never observed", default=(8, 8)),
        )

    @property
    def default_task(self) -> MazeTask:
        seed = next(s for s in range(100) if self._split(s) == "train")
        return MazeTask(seed, SIZES[0], 0.0, (SIZES[0] - 1, SIZES[0] - 1))

    @property
    def horizon(self) -> int:
        return max(OOD_SIZES) ** 2

    @property
    def episodes_per_trial(self) -> int:
        return 3

    @property
    def max_shape(self) -> tuple[int, int]:
        return (max(OOD_SIZES), max(OOD_SIZES))

    def layout(self, task: MazeTask) -> Layout:
        return maze_layout(task.seed, task.size, task.loops)

    def goal_of(self, task: MazeTask) -> tuple[int, int]:
        return task.goal

    def task_horizon(self, task: MazeTask) -> int:
        return task.size * task.size

    @staticmethod
    def _split(seed: int) -> str:
        return SPLIT_CODES[int(hash_splits(MazeFamily.seed_namespace, np.array([seed]))[0])]

    def split_of(self, task: MazeTask) -> str:
        self.validate(task)
        return "ood" if task.size in OOD_SIZES else self._split(task.seed)

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[MazeTask]:
        arrays = self.draw_from_banks(generator_uniforms(rng), n, split)
        return [self.from_arrays(arrays, j) for j in range(n)]

    def draw_arrays(self, streams: Streams, idx: np.ndarray, split: str = "train") -> dict[str, np.ndarray]:
        return self.draw_from_banks(stream_uniforms(streams, idx), len(idx), split)

    def _check(self, task: MazeTask, argument: str) -> None:
        if isinstance(task.seed, bool) or not isinstance(task.seed, int) or not 0 <= task.seed < SEEDS:
            raise ArgumentError(f"{argument}.seed", f"expected an integer 0 <= seed < {SEEDS}, got {task.seed!r}")
        size = check_int(task.size, f"{argument}.size", 0, max(OOD_SIZES))
        if size not in SIZES + OOD_SIZES:
            raise ArgumentError(f"{argument}.size", f"expected one of {SIZES + OOD_SIZES}, got {task.size!r}")
        if isinstance(task.loops, bool):
            raise ArgumentError(f"{argument}.loops", f"expected one of {LOOPS}, got {task.loops!r}")
        check_cell(task.goal, f"{argument}.goal")
        if task.loops not in LOOPS:
            raise ArgumentError(f"{argument}.loops", f"expected one of {LOOPS}, got {task.loops!r}")
        if task.goal not in self.layout(task).goal_cells:
            raise ArgumentError(
                f"{argument}.goal", f"{task.goal!r} is not a room 2+ steps from the start (even row and col)"
            )


class MetaMazeEnv(FamilyEnv[MazeTask]):
    """## Description

    A procedurally generated maze with a hidden goal room, in the spirit of the meta-mazes of
    Wang et al. 2016 and Miconi et al.: the agent sees only its 3x3 surroundings, so it must
    explore in a trial's first episode and go straight to the goal in later ones.

    ## Action Space

    ``Discrete(5)``: noop, up, right, down, left.

    ## Observation Space

    ``Box(0, 2, (9,), uint8)``: the 3x3 view around the agent (1 floor, 2 wall), row by row;
    with ``observe_position=True`` the agent's (row, col) comes first.

    ## Rewards

    +1 on reaching the goal, -0.1 for every other step.

    ## Starting State

    The top-left room (0, 0).

    ## Episode End

    Terminated at the goal; truncated after size x size steps.

    ## Task Distribution

    Maze seed uniform, side uniform over {9, 11} (ood: {13, 15}), loop ratio over
    {0, 0.1, 0.25}, goal uniform over rooms 2+ steps from the start.

    ## Splits

    ``train`` / ``validation`` / ``test`` by a stable hash of the seed (70/10/20%); ``ood`` is the
    larger sides.

    ## Arguments

    ``observe_position`` (default False), ``view_size`` (odd, 1 to 9; default 3),
    ``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaMaze-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['seed', 'size', 'loops', 'goal']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    def __init__(
        self, observe_position: bool = False, view_size: int | None = None, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode, MetaGridDynamics(MazeFamily(), 1, view_size, observe_position))


class MetaMazeVectorEnv(FamilyVectorEnv[MazeTask]):
    """``num_envs`` mazes in one numpy step; see :class:`MetaMazeEnv`."""

    def __init__(
        self,
        num_envs: int,
        observe_position: bool = False,
        view_size: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ) -> None:
        dynamics = MetaGridDynamics(MazeFamily(), num_envs, view_size, observe_position)
        super().__init__(num_envs, render_mode, autoreset_mode, max_episode_steps, dynamics)
