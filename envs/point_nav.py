"""PointNav2D: 2-D navigation to a hidden goal (Finn et al. 2017, MAML section 5.3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    TaskFamily,
    Uniforms,
    draw_in_split,
    hash_splits,
    split_code,
)
from metagym.vector import FamilyVectorEnv

MAX_SPEED = 0.1  # per axis and step
GOAL_RANGE = 0.5  # train/test goals lie in [-0.5, 0.5]^2
OOD_RANGE = 1.0  # ood goals lie in [-1, 1]^2 outside the training square
HORIZON = 100
SUCCESS = 0.01  # the episode ends within this distance of the goal on both axes
VIEW_EXTENT = 1.1  # a rendered frame shows [-1.1, 1.1]^2: the ood goals (up to 1) with a margin
SPLIT_CELL = 0.05  # train/validation/test interleave on a grid of this pitch


@dataclasses.dataclass(frozen=True)
class NavTask(Task):
    """The hidden goal position (x, y)."""

    goal: tuple[float, float]


class NavFamily(TaskFamily[NavTask]):
    """Goals in the plane: ``train`` / ``validation`` / ``test`` interleave within [-0.5, 0.5]^2 on
    a 0.05 grid (by a stable hash: 70/10/20% of cells); ``ood`` goals lie in [-1, 1]^2 outside it."""

    task_type = NavTask
    name = "PointNav2D"

    @property
    def params(self) -> tuple[Param, ...]:
        doc = "goal position (x, y); train/test in [-0.5, 0.5]^2, ood in [-1, 1]^2 outside it"
        return (Param("goal", "vector", doc, low=-OOD_RANGE, high=OOD_RANGE, default=self.default_task.goal),)

    @property
    def default_task(self) -> NavTask:
        return NavTask((0.3, 0.2))

    @property
    def horizon(self) -> int:
        return HORIZON

    @property
    def episodes_per_trial(self) -> int:
        return 2

    @property
    def reward_bounds(self) -> tuple[float, float]:
        reach = HORIZON * MAX_SPEED + OOD_RANGE
        return (-float(np.sqrt(2) * reach), 0.0)

    def oracle_policy(self) -> Policy:
        return StraightToGoal()

    @staticmethod
    def _codes(goals: np.ndarray) -> np.ndarray:
        """Split codes of goals (k, 2): ``ood`` (-1) outside [-0.5, 0.5]^2, else the hash of the
        goal's cell on the 0.05 grid."""
        outside = (np.abs(goals) > GOAL_RANGE).any(axis=1)
        cells = np.floor(goals / SPLIT_CELL).astype(np.int64)
        return np.where(outside, -1, hash_splits("nav", cells)).astype(np.int8)

    def split_of(self, task: NavTask) -> str:
        self.validate(task)
        code = int(self._codes(np.array([task.goal], dtype=np.float64))[0])
        return "ood" if code < 0 else SPLIT_CODES[code]

    def draw_from(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        scale = OOD_RANGE if split == "ood" else GOAL_RANGE
        code = -1 if split == "ood" else split_code(split)
        return {"goal": draw_in_split(uniforms, 2, lambda u: scale * (2.0 * u - 1.0), self._codes, code, n)}

    def _check(self, task: NavTask, argument: str) -> None:
        goal = task.goal
        if not (isinstance(goal, tuple) and len(goal) == 2 and all(isinstance(v, float | int) for v in goal)):
            raise ArgumentError(f"{argument}.goal", f"expected a pair of numbers (x, y), got {goal!r}")
        if not all(np.isfinite(v) and abs(v) <= OOD_RANGE for v in goal):
            raise ArgumentError(
                f"{argument}.goal", f"each coordinate must lie in [-{OOD_RANGE}, {OOD_RANGE}], got {goal!r}"
            )


class StraightToGoal(Policy):
    """Task oracle: moves straight at the goal at full speed (per-axis clipped)."""

    name = "oracle"

    def __init__(self) -> None:
        self.goal = np.zeros(2)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, NavTask)
        self.goal = np.asarray(task.goal)

    def act(self, obs: Any) -> np.ndarray:
        return np.clip(self.goal - obs, -MAX_SPEED, MAX_SPEED).astype(np.float32)


class NavDynamics(BatchedDynamics[NavTask]):
    """N points in the plane, each with its own goal; deterministic dynamics."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(NavFamily(), num_envs)
        self.success = np.zeros(num_envs, dtype=bool)
        reach = HORIZON * MAX_SPEED
        self.observation_space = spaces.Box(-reach, reach, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-MAX_SPEED, MAX_SPEED, shape=(2,), dtype=np.float32)
        self.goal = np.zeros((self.num_envs, 2))
        self.pos = np.zeros((self.num_envs, 2))
        self.trail = np.zeros((self.num_envs, HORIZON + 1, 2))  # positions of the episode so far
        self.steps = np.zeros(self.num_envs, dtype=np.int64)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.goal[idx] = arrays["goal"]

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        self.pos[idx] = 0.0
        self.trail[idx] = 0.0
        self.steps[idx] = 0

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        # As the MAML code: the velocity is clipped to the action bounds, the reward is minus
        # the distance after the move.
        velocity = np.clip(actions, -MAX_SPEED, MAX_SPEED) * active[:, None]
        self.pos = self.pos + velocity
        offset = self.pos - self.goal
        reward = -np.sqrt((offset**2).sum(axis=1))
        reached = (np.abs(offset) < SUCCESS).all(axis=1) & active
        self.success = reached
        self.steps = np.minimum(self.steps + active, HORIZON)
        self.trail[np.arange(self.num_envs), self.steps] = self.pos
        return reward, reached

    def observe(self) -> np.ndarray:
        return self.pos.astype(np.float32)

    position_view = (-VIEW_EXTENT, VIEW_EXTENT, -VIEW_EXTENT, VIEW_EXTENT)  # what render_frame shows

    def render_frame(self, i: int, size: int = 320, extent: float = VIEW_EXTENT) -> np.ndarray:
        import pygame  # lazy

        def px(x: float, y: float) -> tuple[int, int]:
            return int((x + extent) / (2 * extent) * size), int((extent - y) / (2 * extent) * size)

        surface = pygame.Surface((size, size))
        surface.fill((245, 245, 240))
        half = GOAL_RANGE / (2 * extent) * size
        pygame.draw.rect(surface, (215, 215, 225), pygame.Rect(size / 2 - half, size / 2 - half, 2 * half, 2 * half), 1)
        if self.steps[i] > 0:
            points = [px(*p) for p in self.trail[i, : self.steps[i] + 1]]
            pygame.draw.lines(surface, (120, 150, 230), False, points, 2)
        pygame.draw.circle(surface, (60, 180, 75), px(*self.goal[i]), 7)
        pygame.draw.circle(surface, (220, 50, 50), px(*self.pos[i]), 6)
        pygame.font.init()
        font = pygame.font.Font(None, 15)
        legend = [((220, 50, 50), "agent"), ((60, 180, 75), "goal (hidden)"), ((120, 150, 230), "path")]
        legend.append(((215, 215, 225), "goal range"))
        for row, (colour, text) in enumerate(legend):
            y = size - 12 * (len(legend) - row) - 2
            pygame.draw.circle(surface, colour, (8, y + 5), 4)
            surface.blit(font.render(text, True, (60, 60, 60)), (16, y))
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


class PointNav2DEnv(FamilyEnv[NavTask]):
    """## Description

    A point in the plane must reach a hidden goal, as in Finn et al. 2017 (MAML, section 5.3)
    and its released code. Standing still scores 100 x the mean goal distance: -38.3 on the
    prior (analytic, not a paper number), -36.3 on the ``test`` split, whose goals happen to lie
    slightly nearer the start (mean distance 0.363 against 0.383; ``validation`` 0.374); heading
    straight for the goal scores about -0.5. MAML agents act through the reference code's
    normalised actions (a policy in [-1, 1], rescaled to ±0.1).

    ## Action Space

    ``Box(-0.1, 0.1, (2,), float32)``: a velocity. An action outside the bounds is clipped to
    them per axis, with no error or warning, as in the MAML code and as Gymnasium's MuJoCo envs
    treat out-of-range actions (the trial observation records the clipped action).

    ## Observation Space

    ``Box(-10, 10, (2,), float32)``: the point's position (the goal is never observed).

    ## Rewards

    Minus the Euclidean distance to the goal after the move (the MAML code's reward; its paper's
    text says squared distance).

    ## Starting State

    (0, 0).

    ## Episode End

    Terminated within 0.01 of the goal on both axes; truncated after 100 steps.

    ## Task Distribution

    Goal ~ U[-0.5, 0.5]^2 (``ood``: U[-1, 1]^2 outside that square).

    ## Splits

    ``train`` / ``validation`` / ``test`` interleave on a 0.05 grid of goal cells (70/10/20%,
    stable hash); ``ood`` goals lie outside the training square.

    ## Arguments

    ``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("PointNav2D-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['goal']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    dynamics_type = NavDynamics


class PointNav2DVectorEnv(FamilyVectorEnv[NavTask]):
    """``num_envs`` points in one call; see :class:`PointNav2DEnv`."""

    dynamics_type = NavDynamics
