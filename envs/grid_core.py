"""The grid machinery MetaGrid and MetaMaze share: layout families, batched dynamics, oracle."""

from __future__ import annotations

import functools
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from metagym.batched import BatchedDynamics
from metagym.envs.metagrid_levels import Layout
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import T, Task, TaskFamily, Uniforms, hash_splits, split_code

#: Action i moves the agent by MOVES[i]: noop, up, right, down, left.
MOVES = np.array([[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
FLOOR, WALL = 1, 2  # codes of the egocentric view


#: Procedural families' level banks hold the layouts of the seeds below this number.
BANK_SEEDS = 4096


class LevelBank:
    """The layouts of a procedural family's seeds below :data:`BANK_SEEDS`, in every variant
    (a maze side and loop ratio, say), as arrays: a batched env installs fresh layouts by
    table look-up, with no generator or search on the hot path (XLand-MiniGrid's benchmarks
    do the same with their rulesets). A layout is built the first time a task needs it (a
    generator and a search, about 0.2 ms) and kept for the process.

    Attributes:
        variants: Every variant of the family, in a fixed order (the table's first axis).
        walls: (V, BANK_SEEDS, rows, cols) bool, padded with walls to the family's largest shape.
        shapes: (V, 2) each variant's (rows, cols).
        goals: (V, BANK_SEEDS, rows * cols) each layout's goal cells as flat indices
            (row * cols + col), padded by repeating its last one.
        counts: (V, BANK_SEEDS) how many goal cells each layout has (0: not built yet).
        horizons: (V,) steps per episode in each variant.
        start: The start cell every layout shares.
    """

    def __init__(self, family: LayoutFamily[Any]) -> None:
        self.family = family
        self.variants = tuple(dict.fromkeys(v for split in family.splits for v in family.variants(split)))
        rows, cols = family.max_shape
        n = len(self.variants)
        self.walls = np.ones((n, BANK_SEEDS, rows, cols), dtype=bool)
        self.shapes = np.zeros((n, 2), dtype=np.int64)
        self.cols = cols
        index = np.uint8 if rows * cols <= 256 else np.uint16
        self.goals = np.zeros((n, BANK_SEEDS, rows * cols), dtype=index)
        self.counts = np.zeros((n, BANK_SEEDS), dtype=np.int64)
        self.horizons = np.array([family.variant_horizon(v) for v in self.variants], dtype=np.int64)
        self.start = (0, 0)
        self._seeds: dict[tuple[str, int], np.ndarray] = {}
        self._tables: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._table = np.array(self.variants, dtype=np.float64)

    def seeds(self, split: str, v: int) -> np.ndarray:
        """The bank's seeds of ``split`` in variant ``v``, ascending (layouts are built later,
        by :meth:`ensure`, when a task first needs them)."""
        key = (split, v)
        if key not in self._seeds:
            every = np.arange(BANK_SEEDS, dtype=np.int64)
            codes = self.family.seed_codes(every, np.tile(self._table[v], (BANK_SEEDS, 1)))
            self._seeds[key] = every[codes == (-1 if split == "ood" else split_code(split))]
        return self._seeds[key]

    def ensure(self, v: np.ndarray, seeds: np.ndarray) -> None:
        """Build the layouts of (variant, seed) pairs not built yet (each once per process)."""
        missing = self.counts[v, seeds] == 0
        if not missing.any():
            return
        for vk, seed in set(zip(v[missing].tolist(), seeds[missing].tolist(), strict=True)):
            layout = self.family.make_layout(seed, self.variants[vk])
            rows, cols = layout.shape
            self.walls[vk, seed, :rows, :cols] = layout.walls
            flat = [r * self.cols + c for r, c in layout.goal_cells]
            self.goals[vk, seed, : len(flat)] = flat
            self.goals[vk, seed, len(flat) :] = flat[-1]
            self.counts[vk, seed] = len(flat)
            self.shapes[vk] = layout.shape
            assert layout.start == self.start, "banked layouts start at (0, 0)"

    def split_table(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``split``'s variants (indices), how many seeds each holds, and those seeds (padded)."""
        if split not in self._tables:
            variants = np.array([self.variants.index(v) for v in self.family.variants(split)])
            lists = [self.seeds(split, int(v)) for v in variants]
            sizes = np.array([len(seeds) for seeds in lists])
            table = np.zeros((len(lists), sizes.max()), dtype=np.int64)
            for k, seeds in enumerate(lists):
                table[k, : len(seeds)] = seeds
            self._tables[split] = (variants, sizes, table)
        return self._tables[split]

    def build(self, split: str) -> float:
        """Build every layout of ``split`` now (they are otherwise built as tasks first need
        them, which slows the first resets); returns the seconds it took."""
        start = time.perf_counter()
        for v in range(len(self.variants)):
            if self.variants[v] in self.family.variants(split):
                seeds = self.seeds(split, v)
                self.ensure(np.full(len(seeds), v), seeds)
        return time.perf_counter() - start

    def variant_index(self, columns: np.ndarray) -> np.ndarray:
        """Each row's variant (values of the family's variant fields) as an index, -1 if none."""
        match = (columns[:, None, :] == self._table[None]).all(axis=2)
        return np.where(match.any(axis=1), match.argmax(axis=1), -1)


class LayoutFamily(TaskFamily[T]):
    """A family whose tasks are a grid layout plus a hidden goal cell (MetaGrid, MetaMaze).

    :class:`MetaGridDynamics` plays any such family; subclasses say how a task maps to its
    layout, goal and horizon.
    """

    #: Default side of the egocentric view (0: none).
    view_size: int = 3
    #: Whether stepping onto the goal ends the episode.
    goal_terminates: bool = True

    @abstractmethod
    def layout(self, task: T) -> Layout:
        """The grid the task plays on."""

    @abstractmethod
    def goal_of(self, task: T) -> tuple[int, int]:
        """The task's hidden goal cell."""

    @abstractmethod
    def task_horizon(self, task: T) -> int:
        """Steps per episode of ``task``."""

    @property
    @abstractmethod
    def max_shape(self) -> tuple[int, int]:
        """Largest (rows, cols) of any layout in the family."""

    @property
    def reward_bounds(self) -> tuple[float, float]:
        return (-0.1, 1.0)

    @property
    def fixed_layout(self) -> Layout | None:
        """The one layout every task plays on, for families whose tasks differ only in the
        goal (a task change then writes no walls); None (the default) where layouts vary."""
        return None

    def oracle_policy(self) -> Policy:
        return GridOracle(self)

    # -- level banks: procedural families whose tasks are (seed, variant..., goal) --------
    #: The task fields, besides ``seed``, that pick a layout (e.g. ``("size",)``); empty: no bank.
    variant_fields: tuple[str, ...] = ()

    def variants(self, split: str) -> tuple[tuple[Any, ...], ...]:
        """The variants (values of :attr:`variant_fields`) tasks of ``split`` are drawn from."""
        return ()

    def make_layout(self, seed: int, variant: tuple[Any, ...]) -> Layout:
        """The layout of ``seed`` in ``variant``."""
        raise NotImplementedError

    def variant_horizon(self, variant: tuple[Any, ...]) -> int:
        """Steps per episode of every task in ``variant``."""
        raise NotImplementedError

    #: Hash namespace of the layout seeds' splits, and the sizes (first variant field) that are ``ood``.
    seed_namespace: str = ""
    ood_sizes: tuple[int, ...] = ()

    def seed_codes(self, seeds: np.ndarray, variants: np.ndarray) -> np.ndarray:
        """Split codes (-1 for ``ood``) of layout seeds in the given variants (rows): ``ood`` at
        the :attr:`ood_sizes`, else the seed's hash bucket."""
        ood = np.isin(variants[:, 0], self.ood_sizes)
        return np.where(ood, -1, hash_splits(self.seed_namespace, seeds)).astype(np.int8)

    @property
    def bank(self) -> LevelBank:
        """The family's level bank (one per family and process)."""
        return _bank(self)

    def draw_from_banks(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        """``n`` tasks of ``split`` as arrays: a variant, one of its banked seeds of ``split``
        and a goal cell of that layout, each uniform, from three uniforms per task (no
        rejection)."""
        bank = self.bank
        u = uniforms(np.arange(n), 3)
        variants, sizes, table = bank.split_table(split)
        which = np.minimum((u[:, 0] * len(variants)).astype(np.int64), len(variants) - 1)
        at = np.minimum((u[:, 1] * sizes[which]).astype(np.int64), sizes[which] - 1)
        seeds, v = table[which, at], variants[which]
        bank.ensure(v, seeds)
        counts = bank.counts[v, seeds]
        flat = bank.goals[v, seeds, np.minimum((u[:, 2] * counts).astype(np.int64), counts - 1)]
        goals = np.stack(np.divmod(flat.astype(np.int64), bank.cols), axis=1)
        columns = {name: bank._table[v, k] for k, name in enumerate(self.variant_fields)}
        return self.bank_task_arrays(seeds, columns, goals)

    def bank_task_arrays(
        self, seeds: np.ndarray, variants: dict[str, np.ndarray], goals: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Tasks as arrays (:meth:`to_arrays`'s form) from their seeds, variant columns and goals."""
        raise NotImplementedError

    def split_banked(self, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Tasks given as arrays, split by whether the level bank holds their layout:
        ``(rows, variant indices, seeds)`` of those it holds (building any layout not yet
        built) and the rows of those it does not (seeds above :data:`BANK_SEEDS`)."""
        bank = self.bank
        seeds = np.asarray(arrays["seed"], dtype=np.int64)
        columns = np.stack([np.asarray(arrays[name], dtype=np.float64) for name in self.variant_fields], axis=1)
        v = bank.variant_index(columns)
        held = (v >= 0) & (seeds < BANK_SEEDS)
        rows = np.flatnonzero(held)
        v, seeds = v[rows], seeds[rows]
        bank.ensure(v, seeds)
        return rows, v, seeds, np.flatnonzero(~held)


def distances_to(layout: Layout, goal: tuple[int, int]) -> np.ndarray:
    """Shortest-path steps from every cell to ``goal`` (walls and unreachable cells: a large number)."""
    rows, cols = layout.shape
    dist = np.full((rows, cols), rows * cols + 1, dtype=np.int64)
    dist[goal] = 0
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES[1:]:
            nr, nc = r + int(dr), c + int(dc)
            if 0 <= nr < rows and 0 <= nc < cols and not layout.walls[nr, nc] and dist[nr, nc] > dist[r, c] + 1:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


class GridOracle(Policy):
    """Knows the goal and the layout: walks a shortest path to the goal, then stays (noop).

    It tracks its own position from the start cell and its moves (the dynamics are
    deterministic), so it needs no position in the observation.
    """

    name = "oracle"

    def __init__(self, family: LayoutFamily[Any]) -> None:
        self.family = family
        self._dist = np.zeros((1, 1), dtype=np.int64)
        self._walls = np.ones((1, 1), dtype=bool)
        self._start = self._pos = (1, 1)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        layout = self.family.layout(task)
        self._dist = np.pad(distances_to(layout, self.family.goal_of(task)), 1, constant_values=10**9)
        self._walls = np.pad(layout.walls, 1, constant_values=True)
        self._start = (layout.start[0] + 1, layout.start[1] + 1)

    def reset_episode(self, obs: Any) -> None:
        self._pos = self._start

    def act(self, obs: Any) -> int:
        r, c = self._pos
        return min(range(len(MOVES)), key=lambda a: self._dist[r + MOVES[a][0], c + MOVES[a][1]])

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        r, c = self._pos[0] + MOVES[int(action)][0], self._pos[1] + MOVES[int(action)][1]
        if not self._walls[r, c]:
            self._pos = (int(r), int(c))


@functools.lru_cache(maxsize=16)
def _bank(family: LayoutFamily[Any]) -> LevelBank:
    return LevelBank(family)


class MetaGridDynamics(BatchedDynamics[Any]):
    """MetaGrid for N envs: padded wall grids, positions and goals as arrays.

    Args:
        family: The level's task family.
        num_envs: Number of envs.
        view_size: Side of the egocentric view (odd, or 0); default: the level's.
    """

    def __init__(
        self, family: LayoutFamily[Any], num_envs: int, view_size: int | None = None, show_position: bool = True
    ) -> None:
        super().__init__(family, num_envs)
        self.success = np.zeros(num_envs, dtype=bool)
        self.layout_family = family
        view = family.view_size if view_size is None else view_size
        if isinstance(view, bool) or not isinstance(view, int) or view < 0 or (view and view % 2 == 0) or view > 9:
            raise ArgumentError("view_size", f"expected 0 or an odd integer from 1 to 9, got {view_size!r}")
        self.view_size = view
        if not isinstance(show_position, bool | np.bool_):  # "no" is truthy: refuse, do not guess
            raise ArgumentError("observe_position", f"expected True or False, got {show_position!r}")
        if not show_position and view == 0:
            raise ArgumentError("view_size", "an agent that does not see its position needs a view (odd, 1 to 9)")
        self.goal_terminates = family.goal_terminates
        self.show_position = show_position
        # The reward is the cell's: VariBAD's reward decoder has one head per cell of this grid.
        rows, cols = family.max_shape
        self.position_grid = (int(rows), int(cols)) if show_position else None
        self.pad = max(1, view // 2)
        n = self.num_envs
        # Positions are flat indices into each env's padded grid (one int per env: fewer,
        # cheaper numpy ops than (row, col) pairs).
        self.width = cols + 2 * self.pad
        cells = (rows + 2 * self.pad) * self.width
        self.walls = np.ones((n, cells), dtype=bool)
        self.codes = np.full((n, cells), WALL, dtype=np.uint8)  # what the view shows of each cell
        self.visited = np.zeros_like(self.walls)  # this episode
        self.explored = np.zeros_like(self.walls)  # since the task was set: for the viewer only
        # Flat views over all envs: env i's cell k is entry base[i] + k (1-D indexing is cheapest).
        self._walls, self._codes, self._visited = self.walls.ravel(), self.codes.ravel(), self.visited.ravel()
        self._explored = self.explored.ravel()
        self._base = np.arange(n) * cells
        self.shapes = np.zeros((n, 2), dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.goal = np.zeros(n, dtype=np.int64)
        self.pos = np.zeros(n, dtype=np.int64)
        self._moves = MOVES[:, 0] * self.width + MOVES[:, 1]
        # The observed (row, col) of each position, as the observation's dtype (1-D look-ups are cheapest).
        self._row, self._col = ((v - self.pad).astype(np.uint8) for v in np.divmod(np.arange(cells), self.width))
        offsets = np.arange(view) - view // 2
        self._view = (offsets[:, None] * self.width + offsets[None, :]).ravel()[None]  # (1, view*view)
        self._first = 2 if show_position else 0  # where the view starts in the observation
        high = np.full(self._first + view * view, WALL, dtype=np.uint8)
        high[: self._first] = max(rows, cols) - 1
        self.observation_space = spaces.Box(0, high, dtype=np.uint8)
        self.action_space = spaces.Discrete(len(MOVES))

    def _flat(self, cell: tuple[int, int]) -> int:
        return (cell[0] + self.pad) * self.width + cell[1] + self.pad

    def set_tasks(self, idx: np.ndarray, tasks: Sequence[Any]) -> None:
        p = self.pad
        grids = self.walls.reshape(self.num_envs, -1, self.width)
        for i, task in zip(idx, tasks, strict=True):
            layout = self.layout_family.layout(task)
            rows, cols = layout.shape
            grids[i] = True
            grids[i, p : p + rows, p : p + cols] = layout.walls
            self.codes[i] = np.where(self.walls[i], WALL, FLOOR)
            self.shapes[i] = (rows, cols)
            self.start[i] = self._flat(layout.start)
            self.goal[i] = self._flat(self.layout_family.goal_of(task))
            self.horizons[i] = self.layout_family.task_horizon(task)
            self.explored[i] = False

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        family = self.layout_family
        if family.fixed_layout is None and family.variant_fields:  # layouts from the level bank
            rows, v, seeds, missing = family.split_banked(arrays)
            if len(rows):
                self._install_banked(idx[rows], family.bank, v, seeds, np.asarray(arrays["goal"])[rows])
            if len(missing):  # seeds outside the bank: built one by one
                self.set_tasks(idx[missing], [family.from_arrays(arrays, int(j)) for j in missing])
            return
        if family.fixed_layout is None:  # each task brings its own walls
            self.set_tasks(idx, [family.from_arrays(arrays, j) for j in range(len(idx))])
            return
        # One layout for every task, installed when the dynamics were built: only goals change.
        goals = np.asarray(arrays["goal"], dtype=np.int64)
        self.goal[idx] = (goals[:, 0] + self.pad) * self.width + goals[:, 1] + self.pad
        self.explored[idx] = False

    def _install_banked(
        self, idx: np.ndarray, bank: LevelBank, v: np.ndarray, seeds: np.ndarray, goals: np.ndarray
    ) -> None:
        """Banked layouts (variant ``v``, ``seeds``) and goal cells in envs ``idx`` (as set_tasks)."""
        p = self.pad
        rows, cols = bank.walls.shape[2:]
        grids = self.walls.reshape(self.num_envs, -1, self.width)
        grids[idx, p : p + rows, p : p + cols] = bank.walls[v, seeds]
        self.codes[idx] = np.where(self.walls[idx], WALL, FLOOR)
        self.shapes[idx] = bank.shapes[v]
        self.start[idx] = self._flat(bank.start)
        goals = np.asarray(goals, dtype=np.int64)
        self.goal[idx] = (goals[:, 0] + p) * self.width + goals[:, 1] + p
        self.horizons[idx] = bank.horizons[v]
        self.explored[idx] = False

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        self.pos[idx] = self.start[idx]
        self.visited[idx] = False
        self.visited[idx, self.start[idx]] = True

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        target = self.pos + self._moves[actions]
        move = active & ~self._walls[self._base + target]
        self.pos = np.where(move, target, self.pos)
        flat = self._base + self.pos
        self._visited[flat] = True
        self._explored[flat] = True
        on_goal = self.pos == self.goal
        self.success = on_goal & active
        return np.where(on_goal, 1.0, -0.1), on_goal & self.goal_terminates

    def observe(self) -> np.ndarray:
        obs = np.empty((self.num_envs, self._first + self.view_size**2), dtype=np.uint8)
        if self.show_position:
            obs[:, 0], obs[:, 1] = self._row[self.pos], self._col[self.pos]
        if self.view_size:
            obs[:, self._first :] = self._codes[(self._base + self.pos)[:, None] + self._view]
        return obs

    def render_frame(self, i: int, cell: int = 32) -> np.ndarray:
        """Walls, this episode's path (blue), cells explored in earlier episodes of the task and
        so ruled out as the goal (grey, crossed), the goal (green) and the agent (red)."""
        import pygame  # lazy: only rendering needs pygame

        rows, cols = (int(v) for v in self.shapes[i])
        p = self.pad
        walls = self.walls[i].reshape(-1, self.width)
        visited = self.visited[i].reshape(-1, self.width)
        explored = self.explored[i].reshape(-1, self.width)
        surface = pygame.Surface((cols * cell, rows * cell))
        surface.fill((245, 245, 240))
        for r in range(rows):
            for c in range(cols):
                rect = pygame.Rect(c * cell, r * cell, cell, cell)
                if walls[r + p, c + p]:
                    pygame.draw.rect(surface, (60, 60, 70), rect)
                elif visited[r + p, c + p]:  # this episode's path
                    pygame.draw.rect(surface, (200, 220, 250), rect)
                elif explored[r + p, c + p]:  # seen in an earlier episode of the task: ruled out
                    pygame.draw.rect(surface, (222, 222, 222), rect)
                    pygame.draw.line(surface, (170, 170, 170), rect.topleft, rect.bottomright, 2)
                    pygame.draw.line(surface, (170, 170, 170), rect.topright, rect.bottomleft, 2)
                pygame.draw.rect(surface, (190, 190, 190), rect, width=1)
        gr, gc = (int(v) - p for v in divmod(int(self.goal[i]), self.width))
        pygame.draw.rect(surface, (60, 180, 75), pygame.Rect(gc * cell + 3, gr * cell + 3, cell - 6, cell - 6))
        ar, ac = (int(v) - p for v in divmod(int(self.pos[i]), self.width))
        centre = (ac * cell + cell // 2, ar * cell + cell // 2)
        pygame.draw.circle(surface, (220, 50, 50), centre, cell // 3)
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))
