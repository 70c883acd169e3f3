"""MetaGrid levels as data: named ASCII layouts and a seeded procedural generator.

Legend of the layouts: ``#`` wall, ``.`` floor where the hidden goal may be, ``_`` floor
where it may not, ``S`` the start cell (never a goal). Coordinates are (row, col) with (0, 0)
the top-left cell; the grid's edge acts as a wall.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from functools import cache, lru_cache

import numpy as np


@dataclasses.dataclass(frozen=True)
class Level:
    """How a named level (or the procedural family) plays.

    Attributes:
        name: The ``level=`` value that selects it.
        rows: ASCII layout (empty for ``procedural``).
        horizon: Steps per episode (``procedural``: per size, see :func:`procedural_horizon`).
        view_size: Side of the square egocentric view in the observation (0: position only).
        goal_terminates: Whether stepping onto the goal ends the episode.
        episodes_per_trial: Default trial length in episodes.
        doc: One line for listings.
    """

    name: str
    rows: tuple[str, ...]
    horizon: int
    view_size: int
    goal_terminates: bool
    episodes_per_trial: int
    doc: str


LEVELS: dict[str, Level] = {
    level.name: level
    for level in [
        Level(
            name="gridnavi",
            rows=("S_...", "__...", ".....", ".....", "....."),
            horizon=15,
            view_size=0,
            goal_terminates=False,
            episodes_per_trial=4,
            doc="VariBAD's GridNavi: 5x5, goal anywhere but the 4 cells at the start",
        ),
        Level(
            name="open_room",
            rows=("S_.....", "__.....", ".......", ".......", ".......", ".......", "......."),
            horizon=40,
            view_size=3,
            goal_terminates=True,
            episodes_per_trial=3,
            doc="7x7 empty room, start in a corner",
        ),
        Level(
            name="four_rooms",
            rows=(
                "S_...#.....",
                "__...#.....",
                "...........",
                ".....#.....",
                ".....#.....",
                "##.####.###",
                ".....#.....",
                ".....#.....",
                "...........",
                ".....#.....",
                ".....#.....",
            ),
            horizon=100,
            view_size=3,
            goal_terminates=True,
            episodes_per_trial=3,
            doc="Sutton's four rooms (11x11), start in the top-left room",
        ),
        Level(
            name="procedural",
            rows=(),
            horizon=0,
            view_size=3,
            goal_terminates=True,
            episodes_per_trial=3,
            doc="seeded random walls; splits are disjoint layout seeds, ood is larger sizes",
        ),
    ]
}

#: Sizes of procedural layouts in the train/test splits, and in the ood split.
PROCEDURAL_SIZES: tuple[int, ...] = (7, 9)
PROCEDURAL_OOD_SIZES: tuple[int, ...] = (11, 13)
#: Procedural layout seeds are drawn from [0, PROCEDURAL_SEEDS).
PROCEDURAL_SEEDS = 2**31


def procedural_horizon(size: int) -> int:
    """Episode length for a procedural layout of side ``size``: one step per cell."""
    return size * size


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A concrete grid: walls, start cell and the cells the hidden goal may occupy."""

    walls: np.ndarray  # (rows, cols) bool, read-only
    start: tuple[int, int]
    goal_cells: tuple[tuple[int, int], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.walls.shape[0]), int(self.walls.shape[1]))


@cache
def named_layout(name: str) -> Layout:
    """Parse the ASCII layout of a named level."""
    rows = LEVELS[name].rows
    walls = np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)
    walls.flags.writeable = False
    start = next((r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "S")
    goals = tuple((r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == ".")
    return Layout(walls, start, goals)


def _reachable(walls: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    seen = np.zeros_like(walls)
    seen[start] = True
    queue = deque([start])
    rows, cols = walls.shape
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols and not walls[nr, nc] and not seen[nr, nc]:
                seen[nr, nc] = True
                queue.append((nr, nc))
    return seen


@lru_cache(maxsize=8192)
def procedural_layout(seed: int, size: int) -> Layout:
    """The layout of procedural ``seed`` at side ``size``: the same on every machine.

    Random wall segments, each with a door, are laid on an empty ``size x size`` grid; floor
    cells that cannot be reached from the start (0, 0) become walls; layouts with less than
    half the grid open are drawn again from the same stream. The goal may be any reachable floor cell at
    Manhattan distance 2 or more from the start.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, size])))
    while True:  # redraw (from the same stream) until at least half the grid is open floor
        walls = np.zeros((size, size), dtype=bool)
        for _ in range(size // 2 + 2):
            length = int(rng.integers(2, size - 1))
            if rng.random() < 0.5:  # horizontal segment
                r, c = int(rng.integers(1, size)), int(rng.integers(0, size - length + 1))
                cells = [(r, c + k) for k in range(length)]
            else:  # vertical segment
                r, c = int(rng.integers(0, size - length + 1)), int(rng.integers(1, size))
                cells = [(r + k, c) for k in range(length)]
            for cell in cells:
                walls[cell] = True
            walls[cells[int(rng.integers(0, length))]] = False  # a door in every segment
        walls[0, 0] = walls[0, 1] = walls[1, 0] = False
        walls |= ~_reachable(walls, (0, 0))
        goals = tuple((r, c) for r in range(size) for c in range(size) if not walls[r, c] and r + c >= 2)
        if len(goals) >= size * size // 2:
            break
    walls.flags.writeable = False
    return Layout(walls, (0, 0), goals)
