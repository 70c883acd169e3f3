"""MetaAcrobot: Gymnasium's Acrobot with link lengths and masses as the task."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.acrobot import AcrobotEnv

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.envs.physics_family import GymnasiumRenderer, Physical, PhysicsFamily, param_matrix
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import Task
from metagym.vector import FamilyVectorEnv

DT = 0.2
MAX_VEL_1, MAX_VEL_2 = 4 * np.pi, 9 * np.pi
MOMENT_OF_INERTIA = 1.0  # Gymnasium's LINK_MOI, for both links whatever their size
TORQUES = np.array([-1.0, 0.0, 1.0])
HORIZON = 500  # as Acrobot-v1


@dataclasses.dataclass(frozen=True)
class AcrobotTask(Task):
    """Link lengths and masses (defaults: Gymnasium's); each link's centre of mass is at its
    middle, as in Gymnasium (0.5 for 1 m links)."""

    link_length_1: float = 1.0
    link_length_2: float = 1.0
    link_mass_1: float = 1.0
    link_mass_2: float = 1.0


PHYSICALS = (
    Physical("link_length_1", 1.0, "length of the first link, m"),
    Physical("link_length_2", 1.0, "length of the second link, m"),
    Physical("link_mass_1", 1.0, "mass of the first link, kg"),
    Physical("link_mass_2", 1.0, "mass of the second link, kg"),
)


def acrobot_family() -> PhysicsFamily[AcrobotTask]:
    return PhysicsFamily("MetaAcrobot", AcrobotTask, PHYSICALS, HORIZON, PumpSwing, (-1.0, 0.0))


class PumpSwing(Policy):
    """Task oracle: torque in the direction of the second joint's velocity relative to the
    first's, which pumps energy into the swing (best of the simple pumping rules we tried;
    about -85 per episode on the default task, where a random policy scores about -500)."""

    name = "oracle"

    def act(self, obs: Any) -> int:
        return 2 if float(obs[5]) - float(obs[4]) > 0 else 0


def derivatives(s: np.ndarray, torque: np.ndarray, physics: np.ndarray) -> np.ndarray:
    """Gymnasium's Acrobot equations of motion ("book" variant) for N states at once."""
    l1, _, m1, m2 = physics.T
    lc1, lc2 = physics[:, 0] / 2, physics[:, 1] / 2
    inertia1 = inertia2 = MOMENT_OF_INERTIA
    g = 9.8
    theta1, theta2, dtheta1, dtheta2 = s.T
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(theta2)) + inertia1 + inertia2
    d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(theta2)) + inertia2
    phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - np.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * np.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * np.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - np.pi / 2)
        + phi2
    )
    ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * np.sin(theta2) - phi2) / (
        m2 * lc2**2 + inertia2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return np.stack([dtheta1, dtheta2, ddtheta1, ddtheta2], axis=1)


def _derivatives_one(s: list[float], torque: float, physics: list[float]) -> list[float]:
    """:func:`derivatives` for one state, on Python floats."""
    l1, l2, m1, m2 = physics
    lc1, lc2 = l1 / 2, l2 / 2
    inertia1 = inertia2 = MOMENT_OF_INERTIA
    g = 9.8
    theta1, theta2, dtheta1, dtheta2 = s
    cos2, sin2 = math.cos(theta2), math.sin(theta2)
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + inertia1 + inertia2
    d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + inertia2
    phi2 = m2 * lc2 * g * math.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * sin2
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
        + (m1 * lc1 + m2 * l1) * g * math.cos(theta1 - math.pi / 2)
        + phi2
    )
    ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin2 - phi2) / (
        m2 * lc2**2 + inertia2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return [dtheta1, dtheta2, ddtheta1, ddtheta2]


def _wrap_one(x: float) -> float:
    """:func:`wrap` to [-pi, pi] for one float."""
    while x > math.pi:
        x -= 2 * math.pi
    while x < -math.pi:
        x += 2 * math.pi
    return x


def wrap(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Gymnasium's wrap(), element-wise: add or subtract the range until x is inside."""
    diff = high - low
    while (x > high).any():
        x = np.where(x > high, x - diff, x)
    while (x < low).any():
        x = np.where(x < low, x + diff, x)
    return x


class AcrobotDynamics(BatchedDynamics[AcrobotTask]):
    """Gymnasium's Acrobot (one RK4 step of 0.2 s) over N envs with per-env links."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(acrobot_family(), num_envs)
        high = np.array([1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.physics = np.zeros((self.num_envs, len(PHYSICALS)))
        self.state = np.zeros((self.num_envs, 4))
        self._renderer = GymnasiumRenderer(AcrobotEnv)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.physics[idx] = param_matrix(arrays)

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        # float32, as Gymnasium stores the initial state
        self.state[idx] = rngs.uniform(idx, -0.1, 0.1, 4).astype(np.float32)

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        if self.num_envs == 1:  # one env: plain floats (a numpy call per term costs more than the term)
            return self._step_one(int(actions[0])) if active[0] else (np.full(1, -1.0), np.zeros(1, dtype=bool))
        torque, s, p = TORQUES[actions], self.state, self.physics
        k1 = derivatives(s, torque, p)
        k2 = derivatives(s + DT / 2.0 * k1, torque, p)
        k3 = derivatives(s + DT / 2.0 * k2, torque, p)
        k4 = derivatives(s + DT * k3, torque, p)
        new = s + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        new[:, 0] = wrap(new[:, 0], -np.pi, np.pi)
        new[:, 1] = wrap(new[:, 1], -np.pi, np.pi)
        new[:, 2] = np.clip(new[:, 2], -MAX_VEL_1, MAX_VEL_1)
        new[:, 3] = np.clip(new[:, 3], -MAX_VEL_2, MAX_VEL_2)
        self.state = np.where(active[:, None], new, self.state)
        theta1, theta2 = self.state[:, 0], self.state[:, 1]
        terminated = (-np.cos(theta1) - np.cos(theta2 + theta1) > 1.0) & active
        return np.where(terminated, 0.0, -1.0), terminated

    def _step_one(self, action: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` for a single env: the same RK4 step on Python floats."""
        physics = self.physics[0].tolist()
        torque = float(TORQUES[action])
        s = self.state[0].tolist()

        def shifted(k: list[float], h: float) -> list[float]:
            return [a + h * b for a, b in zip(s, k, strict=True)]

        k1 = _derivatives_one(s, torque, physics)
        k2 = _derivatives_one(shifted(k1, DT / 2.0), torque, physics)
        k3 = _derivatives_one(shifted(k2, DT / 2.0), torque, physics)
        k4 = _derivatives_one(shifted(k3, DT), torque, physics)
        new = [a + DT / 6.0 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(s, k1, k2, k3, k4, strict=True)]
        theta1, theta2 = _wrap_one(new[0]), _wrap_one(new[1])
        dtheta1 = min(max(new[2], -MAX_VEL_1), MAX_VEL_1)
        dtheta2 = min(max(new[3], -MAX_VEL_2), MAX_VEL_2)
        self.state[0] = (theta1, theta2, dtheta1, dtheta2)
        terminated = -math.cos(theta1) - math.cos(theta2 + theta1) > 1.0
        return np.array([0.0 if terminated else -1.0]), np.array([terminated])

    def observe(self) -> np.ndarray:
        t1, t2, d1, d2 = self.state.T
        return np.stack([np.cos(t1), np.sin(t1), np.cos(t2), np.sin(t2), d1, d2], axis=1).astype(np.float32)

    def render_frame(self, i: int) -> np.ndarray:
        l1, l2 = (float(v) for v in self.physics[i, :2])
        return self._renderer.frame(state=self.state[i].copy(), LINK_LENGTH_1=l1, LINK_LENGTH_2=l2)


class MetaAcrobotEnv(FamilyEnv[AcrobotTask]):
    """## Description

    Gymnasium's Acrobot-v1 with link lengths and masses as the hidden task. With the default
    task it is Gymnasium's environment step for step. Each link's centre of mass is at its
    middle and both moments of inertia stay 1, as in Gymnasium.

    ## Action Space

    ``Discrete(3)``: torque -1, 0 or +1 on the joint between the links.

    ## Observation Space

    ``Box((6,), float32)``: cos and sin of both joint angles, both angular velocities.

    ## Rewards

    -1 per step, 0 on the step that reaches the goal height.

    ## Starting State

    All four state variables ~ U[-0.1, 0.1].

    ## Episode End

    Terminated when the tip rises above one link length over the base; truncated after 500
    steps.

    ## Task Distribution

    link_length_1, link_length_2, link_mass_1, link_mass_2; each uniform in its default
    x [0.5, 1.5] for train/test, default x [0.25, 2.5] for ood.

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
    >>> env = gym.make("MetaAcrobot-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['link_length_1', 'link_length_2', 'link_mass_1', 'link_mass_2']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    dynamics_type = AcrobotDynamics


class MetaAcrobotVectorEnv(FamilyVectorEnv[AcrobotTask]):
    """``num_envs`` acrobots in one call; see :class:`MetaAcrobotEnv`."""

    dynamics_type = AcrobotDynamics
