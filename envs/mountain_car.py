"""MetaMountainCar: Gymnasium's MountainCar with named physical parameters."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.envs.physics_family import GymnasiumRenderer, Physical, PhysicsFamily, param_matrix
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import Task
from metagym.vector import FamilyVectorEnv

MIN_POSITION, MAX_POSITION, MAX_SPEED, GOAL_POSITION = -1.2, 0.6, 0.07, 0.5
HORIZON = 200  # as MountainCar-v0


@dataclasses.dataclass(frozen=True)
class MountainCarTask(Task):
    """Physical parameters of the car and hill (defaults: Gymnasium's)."""

    force: float = 0.001
    gravity: float = 0.0025


PHYSICALS = (
    Physical("force", 0.001, "engine force (velocity change per step)"),
    Physical("gravity", 0.0025, "gravity along the hill (velocity change per step)"),
)


def mountain_car_family() -> PhysicsFamily[MountainCarTask]:
    return PhysicsFamily("MetaMountainCar", MountainCarTask, PHYSICALS, HORIZON, PumpEnergy, (-1.0, 0.0))


class PumpEnergy(Policy):
    """Task oracle: push in the direction of motion (left from rest), which pumps energy as
    fast as the engine allows; it reaches the flag on every default-range task."""

    name = "oracle"

    def act(self, obs: Any) -> int:
        return 2 if float(obs[1]) > 0 else 0


class MountainCarDynamics(BatchedDynamics[MountainCarTask]):
    """Gymnasium's MountainCar over N envs with per-env physics."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(mountain_car_family(), num_envs)
        low = np.array([MIN_POSITION, -MAX_SPEED], dtype=np.float32)
        high = np.array([MAX_POSITION, MAX_SPEED], dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.physics = np.zeros((self.num_envs, len(PHYSICALS)))
        self.state = np.zeros((self.num_envs, 2))
        self._renderer = GymnasiumRenderer(MountainCarEnv)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.physics[idx] = param_matrix(arrays)

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        self.state[idx, 0] = rngs.uniform(idx, -0.6, -0.4)[:, 0]
        self.state[idx, 1] = 0.0

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        if self.num_envs == 1 and active[0]:  # one env: Python floats, as Gymnasium's MountainCar
            return self._step_one(int(actions[0]))
        force, gravity = self.physics.T
        position, velocity = self.state.T
        velocity = velocity + (actions - 1) * force + np.cos(3 * position) * (-gravity)
        velocity = np.clip(velocity, -MAX_SPEED, MAX_SPEED)
        position = np.clip(position + velocity, MIN_POSITION, MAX_POSITION)
        velocity = np.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
        self.state = np.where(active[:, None], np.stack([position, velocity], axis=1), self.state)
        terminated = (self.state[:, 0] >= GOAL_POSITION) & (self.state[:, 1] >= 0)
        return np.full(self.num_envs, -1.0), terminated & active

    def _step_one(self, action: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` for a single env, the same equations on Python floats."""
        force, gravity = self.physics[0].tolist()
        position, velocity = self.state[0].tolist()
        velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)
        velocity = min(max(velocity, -MAX_SPEED), MAX_SPEED)
        position = min(max(position + velocity, MIN_POSITION), MAX_POSITION)
        if position == MIN_POSITION and velocity < 0:
            velocity = 0.0
        self.state[0] = (position, velocity)
        return np.full(1, -1.0), np.array([position >= GOAL_POSITION and velocity >= 0])

    def observe(self) -> np.ndarray:
        return self.state.astype(np.float32)

    def render_frame(self, i: int) -> np.ndarray:
        return self._renderer.frame(state=self.state[i].copy())


class MetaMountainCarEnv(FamilyEnv[MountainCarTask]):
    """## Description

    Gymnasium's MountainCar-v0 with the engine force and gravity as the hidden task. With the
    default task it is Gymnasium's environment step for step.

    ## Action Space

    ``Discrete(3)``: push left, no push, push right.

    ## Observation Space

    ``Box((2,), float32)``: position in [-1.2, 0.6], velocity in [-0.07, 0.07].

    ## Rewards

    -1 per step.

    ## Starting State

    Position ~ U[-0.6, -0.4], velocity 0.

    ## Episode End

    Terminated at position >= 0.5 with velocity >= 0; truncated after 200 steps.

    ## Task Distribution

    force and gravity, each uniform in its default x [0.5, 1.5] for train/test, default x
    [0.25, 2.5] for ood.

    ## Splits

    ``train`` / ``validation`` / ``test`` interleave on a 10-per-axis grid of the training box
    (70/10/20% of cells); ``ood`` has at least one parameter outside its training range.

    ## Arguments

    ``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaMountainCar-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['force', 'gravity']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    dynamics_type = MountainCarDynamics


class MetaMountainCarVectorEnv(FamilyVectorEnv[MountainCarTask]):
    """``num_envs`` mountain cars in one call; see :class:`MetaMountainCarEnv`."""

    dynamics_type = MountainCarDynamics
