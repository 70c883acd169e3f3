"""MetaCartPole: Gymnasium's CartPole with named physical parameters."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.envs.physics_family import GymnasiumRenderer, Physical, PhysicsFamily, param_matrix
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import Task
from metagym.vector import FamilyVectorEnv

TAU = 0.02
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360
HORIZON = 500  # as CartPole-v1


@dataclasses.dataclass(frozen=True)
class CartPoleTask(Task):
    """Physical parameters of the cart-pole (defaults: Gymnasium's)."""

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5
    force_mag: float = 10.0


PHYSICALS = (
    Physical("gravity", 9.8, "gravitational acceleration, m/s^2"),
    Physical("masscart", 1.0, "mass of the cart, kg"),
    Physical("masspole", 0.1, "mass of the pole, kg"),
    Physical("length", 0.5, "half the pole's length, m"),
    Physical("force_mag", 10.0, "force of a push, N"),
)


def cartpole_family() -> PhysicsFamily[CartPoleTask]:
    return PhysicsFamily("MetaCartPole", CartPoleTask, PHYSICALS, HORIZON, CartPoleLQR, (0.0, 1.0))


def linear_model(task: CartPoleTask) -> tuple[np.ndarray, np.ndarray]:
    """Discrete-time (A, B) of one Euler step linearised at the upright rest state."""
    total = task.masscart + task.masspole
    denom = task.length * (4.0 / 3.0 - task.masspole / total)
    thetaacc_theta, thetaacc_u = task.gravity / denom, -1.0 / (total * denom)
    pml = task.masspole * task.length
    xacc_theta, xacc_u = -pml * thetaacc_theta / total, 1.0 / total - pml * thetaacc_u / total
    a = np.eye(4) + TAU * np.array([[0, 1, 0, 0], [0, 0, xacc_theta, 0], [0, 0, 0, 1], [0, 0, thetaacc_theta, 0]])
    b = TAU * np.array([[0.0], [xacc_u], [0.0], [thetaacc_u]])
    return a, b


class CartPoleLQR(Policy):
    """Task oracle: the LQR gain of the task's own linearised dynamics, applied as bang-bang
    pushes (the sign of the LQR force). Balances every default-range task for all 500 steps."""

    name = "oracle"

    def __init__(self) -> None:
        self.gain = np.zeros(4)

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, CartPoleTask)
        a, b = linear_model(task)
        q, r = np.diag([1.0, 1.0, 10.0, 1.0]), np.array([[0.01]])
        p = q.copy()
        for _ in range(2000):  # Riccati iteration to the stationary solution
            p = q + a.T @ p @ a - a.T @ p @ b @ np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        self.gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)[0]

    def act(self, obs: Any) -> int:
        return int(-(self.gain @ np.asarray(obs, dtype=np.float64)) > 0)


class CartPoleDynamics(BatchedDynamics[CartPoleTask]):
    """Gymnasium's CartPole (Euler integration) over N envs with per-env physics."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(cartpole_family(), num_envs)
        high = np.array([X_THRESHOLD * 2, np.finfo(np.float32).max, THETA_THRESHOLD * 2, np.finfo(np.float32).max])
        self.observation_space = spaces.Box(-high.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.physics = np.zeros((self.num_envs, len(PHYSICALS)))
        self.state = np.zeros((self.num_envs, 4))
        self._renderer = GymnasiumRenderer(CartPoleEnv)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.physics[idx] = param_matrix(arrays)

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        self.state[idx] = rngs.uniform(idx, -0.05, 0.05, 4)

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        if self.num_envs == 1:  # one env: plain floats, as Gymnasium's CartPole (numpy calls cost more)
            return self._step_one(int(actions[0])) if active[0] else (np.ones(1), np.zeros(1, dtype=bool))
        gravity, masscart, masspole, length, force_mag = self.physics.T
        total_mass = masspole + masscart
        polemass_length = masspole * length
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(actions == 1, force_mag, -force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
        thetaacc = (gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - masspole * np.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        # Euler step in place, as Gymnasium's CartPoleVectorEnv (each update reads the old
        # value of the next variable); envs not active this step get a zero increment.
        rate = TAU if active.all() else np.where(active, TAU, 0.0)
        self.state[:, 0] += rate * x_dot
        self.state[:, 1] += rate * xacc
        self.state[:, 2] += rate * theta_dot
        self.state[:, 3] += rate * thetaacc
        terminated = (np.abs(x) > X_THRESHOLD) | (np.abs(theta) > THETA_THRESHOLD)
        return np.ones(self.num_envs), terminated & active

    def _step_one(self, action: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` for a single env, the same equations on Python floats."""
        gravity, masscart, masspole, length, force_mag = self.physics[0].tolist()
        x, x_dot, theta, theta_dot = self.state[0].tolist()
        total_mass = masspole + masscart
        polemass_length = masspole * length
        force = force_mag if action == 1 else -force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + polemass_length * theta_dot * theta_dot * sintheta) / total_mass
        thetaacc = (gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - masspole * costheta * costheta / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x, x_dot = x + TAU * x_dot, x_dot + TAU * xacc
        theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * thetaacc
        self.state[0] = (x, x_dot, theta, theta_dot)
        terminated = abs(x) > X_THRESHOLD or abs(theta) > THETA_THRESHOLD
        return np.ones(1), np.array([terminated])

    def observe(self) -> np.ndarray:
        return self.state.astype(np.float32)

    def render_frame(self, i: int) -> np.ndarray:
        return self._renderer.frame(state=self.state[i].copy(), length=float(self.physics[i, 3]))


class MetaCartPoleEnv(FamilyEnv[CartPoleTask]):
    """## Description

    Gymnasium's CartPole-v1 with its physical parameters as the hidden task. With the default
    task it is Gymnasium's environment step for step.

    ## Action Space

    ``Discrete(2)``: push left (0) or right (1) with ``force_mag``.

    ## Observation Space

    ``Box((4,), float32)``: cart position and velocity, pole angle and angular velocity.

    ## Rewards

    +1 for every step, the terminating one included.

    ## Starting State

    Every state variable ~ U[-0.05, 0.05].

    ## Episode End

    Terminated when the pole leans more than 12 degrees or the cart leaves [-2.4, 2.4];
    truncated after 500 steps.

    ## Task Distribution

    gravity, masscart, masspole, length (half the pole), force_mag; each uniform in its
    default x [0.5, 1.5] for train/test, default x [0.25, 2.5] for ood.

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
    >>> env = gym.make("MetaCartPole-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['gravity', 'masscart', 'masspole', 'length', 'force_mag']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    dynamics_type = CartPoleDynamics


class MetaCartPoleVectorEnv(FamilyVectorEnv[CartPoleTask]):
    """``num_envs`` cart-poles in one call; see :class:`MetaCartPoleEnv`."""

    dynamics_type = CartPoleDynamics
