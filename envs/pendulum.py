"""MetaPendulum: Gymnasium's Pendulum with named physical parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.envs.physics_family import OOD_SCALE, GymnasiumRenderer, Physical, PhysicsFamily, param_matrix
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import Task
from metagym.vector import FamilyVectorEnv

DT = 0.05
MAX_SPEED = 8.0
HORIZON = 200  # as Pendulum-v1
TORQUE_BOUND = 2.0 * OOD_SCALE[1]  # the action space fits the largest max_torque of any task


@dataclasses.dataclass(frozen=True)
class PendulumTask(Task):
    """Physical parameters of the pendulum (defaults: Gymnasium's)."""

    mass: float = 1.0
    length: float = 1.0
    gravity: float = 10.0
    max_torque: float = 2.0


PHYSICALS = (
    Physical("mass", 1.0, "mass, kg"),
    Physical("length", 1.0, "length, m"),
    Physical("gravity", 10.0, "gravitational acceleration, m/s^2"),
    Physical("max_torque", 2.0, "largest torque; actions beyond it are clipped, as in Gymnasium, N m"),
)


def angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def pendulum_family() -> PhysicsFamily[PendulumTask]:
    worst = np.pi**2 + 0.1 * MAX_SPEED**2 + 0.001 * TORQUE_BOUND**2
    return PhysicsFamily("MetaPendulum", PendulumTask, PHYSICALS, HORIZON, SwingUp, (-worst, 0.0))


class SwingUp(Policy):
    """Task oracle: energy pumping at full torque, then a PD controller tuned to the task's
    gravity, length and mass once the pendulum is near upright."""

    name = "oracle"

    def __init__(self) -> None:
        self.task = PendulumTask()

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, PendulumTask)
        self.task = task

    def act(self, obs: Any) -> np.ndarray:
        t = self.task
        cos, sin, speed = (float(v) for v in obs)
        theta = float(np.arctan2(sin, cos))
        accel_per_torque = 3.0 / (t.mass * t.length**2)
        stiffness = 1.5 * t.gravity / t.length  # angular acceleration per radian from gravity
        energy = 0.5 * speed**2 + stiffness * (cos - 1.0)  # 0 upright at rest
        holdable = abs(sin) * stiffness / accel_per_torque < 0.7 * t.max_torque  # gravity torque we can beat
        if cos > 0 and holdable and abs(energy) < 0.5 * stiffness:  # near the top: PD against gravity
            torque = -(stiffness * np.sin(theta) + 10.0 * theta + 4.0 * speed) / accel_per_torque
        else:  # pump energy towards the upright level
            torque = t.max_torque * np.sign(speed if energy < 0 else -speed) if speed else t.max_torque
        return np.array([np.clip(torque, -t.max_torque, t.max_torque)], dtype=np.float32)


class PendulumDynamics(BatchedDynamics[PendulumTask]):
    """Gymnasium's Pendulum over N envs with per-env physics."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(pendulum_family(), num_envs)
        high = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-TORQUE_BOUND, TORQUE_BOUND, shape=(1,), dtype=np.float32)
        self.physics = np.zeros((self.num_envs, len(PHYSICALS)))
        self.state = np.zeros((self.num_envs, 2))
        self.last_u = np.full(self.num_envs, np.nan)
        self._renderer = GymnasiumRenderer(PendulumEnv)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.physics[idx] = param_matrix(arrays)

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        high = np.array([np.pi, 1.0])
        self.state[idx] = rngs.uniform(idx, -high, high, 2)
        self.last_u[idx] = np.nan

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        if self.num_envs == 1 and active[0]:  # one env: scalars, as Gymnasium's Pendulum
            return self._step_one(float(actions[0, 0]))
        m, length, g, max_torque = self.physics.T
        th, thdot = self.state.T
        # The torque terms in float32, as Gymnasium computes them (its u is a float32 scalar).
        u = np.clip(actions[:, 0], -max_torque, max_torque).astype(np.float32)
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        push = (3.0 / (m * length**2)).astype(np.float32) * u
        newthdot = thdot + (3 * g / (2 * length) * np.sin(th) + push) * DT
        newthdot = np.clip(newthdot, -MAX_SPEED, MAX_SPEED)
        new = np.stack([th + newthdot * DT, newthdot], axis=1)
        self.state = np.where(active[:, None], new, self.state)
        self.last_u = np.where(active, u, self.last_u)
        return -costs, np.zeros(self.num_envs, dtype=bool)

    def _step_one(self, action: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` for a single env, the same equations on scalars (torque in float32)."""
        m, length, g, max_torque = self.physics[0].tolist()
        th, thdot = self.state[0].tolist()
        u = np.float32(min(max(action, -max_torque), max_torque))
        cost = float(angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u * u))
        push = np.float32(3.0 / (m * length**2)) * u
        newthdot = float(thdot + (3 * g / (2 * length) * np.sin(th) + push) * DT)
        newthdot = min(max(newthdot, -MAX_SPEED), MAX_SPEED)
        self.state[0] = (th + newthdot * DT, newthdot)
        self.last_u[0] = u
        return np.array([-cost]), np.zeros(1, dtype=bool)

    def observe(self) -> np.ndarray:
        th, thdot = self.state.T
        return np.stack([np.cos(th), np.sin(th), thdot], axis=1).astype(np.float32)

    def render_frame(self, i: int) -> np.ndarray:
        last_u = None if np.isnan(self.last_u[i]) else float(self.last_u[i])
        return self._renderer.frame(state=self.state[i].copy(), last_u=last_u)


class MetaPendulumEnv(FamilyEnv[PendulumTask]):
    """## Description

    Gymnasium's Pendulum-v1 with its physical parameters as the hidden task. With the default
    task it is Gymnasium's environment step for step.

    ## Action Space

    ``Box(-5, 5, (1,), float32)``: the torque, clipped to the task's ``max_torque`` (as
    Gymnasium clips to its 2). The bound fits the largest ``max_torque`` of any task.

    ## Observation Space

    ``Box((3,), float32)``: cos and sin of the angle, angular velocity (at most 8).

    ## Rewards

    -(angle² + 0.1 velocity² + 0.001 torque²), angle 0 upright.

    ## Starting State

    Angle ~ U[-pi, pi], angular velocity ~ U[-1, 1].

    ## Episode End

    Truncated after 200 steps; never terminated.

    ## Task Distribution

    mass, length, gravity, max_torque; each uniform in its default x [0.5, 1.5] for
    train/test, default x [0.25, 2.5] for ood.

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
    >>> env = gym.make("MetaPendulum-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['mass', 'length', 'gravity', 'max_torque']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    dynamics_type = PendulumDynamics


class MetaPendulumVectorEnv(FamilyVectorEnv[PendulumTask]):
    """``num_envs`` pendulums in one call; see :class:`MetaPendulumEnv`."""

    dynamics_type = PendulumDynamics
