"""MuJoCo locomotion task families (Finn et al. 2017; Rakelly et al. 2019; Zintgraf et al. 2020).

HalfCheetahVel (run at a target velocity), HalfCheetahDir (run forward or backward) and
AntDir (run in a 2-D direction), on Gymnasium's MuJoCo v5 models. They need the ``mujoco``
extra (``pip install 'metagym-rl[mujoco]'``). MuJoCo steps one model at a time, so these families
are single envs whose vector form is Gymnasium's Sync/AsyncVectorEnv; the metagym task rules,
seeds and trials are the same as everywhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.envs.mujoco_gl import import_mujoco, render_frame
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import Param, Task, TaskFamily, ranked_split

HORIZON = 200
CHEETAH_CTRL = 0.05  # the MAML code's control cost: 0.5 * 1e-1 * |a|^2


@dataclasses.dataclass(frozen=True)
class VelocityTask(Task):
    """Target forward velocity, m/s."""

    velocity: float


@dataclasses.dataclass(frozen=True)
class DirectionTask(Task):
    """Run forward (+1) or backward (-1)."""

    direction: int


@dataclasses.dataclass(frozen=True)
class AngleTask(Task):
    """Direction to run in, radians counter-clockwise from +x."""

    angle: float


class CheetahVelFamily(TaskFamily[VelocityTask]):
    """Target velocities ~ U[0, max_velocity]; train/validation/test interleave on 0.1 m/s bins
    (20% of bins test, 10% validation, by a stable hash order); ood velocities lie in
    (max_velocity, 1.5 max_velocity].

    Args:
        max_velocity: 2.0 as in the MAML code (default), 3.0 as in PEARL and VariBAD.
    """

    task_type = VelocityTask

    def __init__(self, max_velocity: float = 2.0) -> None:
        if isinstance(max_velocity, bool) or not isinstance(max_velocity, float | int) or not 0 < max_velocity <= 10:
            raise ArgumentError("max_velocity", f"expected a number in (0, 10], got {max_velocity!r}")
        self.max_velocity = float(max_velocity)
        bins = max(1, int(self.max_velocity * 10))
        self._bin_splits = ranked_split([f"cheetah-vel:{i}" for i in range(bins)])
        self.name = f"HalfCheetahVel[0, {self.max_velocity:g}]"

    def __repr__(self) -> str:
        return f"CheetahVelFamily(max_velocity={self.max_velocity})"

    @property
    def params(self) -> tuple[Param, ...]:
        doc = f"target forward velocity, m/s; train/test in [0, {self.max_velocity:g}]"
        return (Param("velocity", "float", doc, 0.0, 1.5 * self.max_velocity, self.default_task.velocity),)

    @property
    def default_task(self) -> VelocityTask:
        return VelocityTask(next(v / 10 + 0.05 for v in range(100) if self._split(v / 10 + 0.05) == "train"))

    @property
    def horizon(self) -> int:
        return HORIZON

    def oracle_policy(self) -> Policy:
        return ShootingMPC(self)

    def _split(self, velocity: float) -> str:
        if velocity > self.max_velocity:
            return "ood"
        cell = min(int(velocity * 10), int(self.max_velocity * 10) - 1)
        return self._bin_splits[cell]

    def split_of(self, task: VelocityTask) -> str:
        self.validate(task)
        return self._split(task.velocity)

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[VelocityTask]:
        low, high = (self.max_velocity, 1.5 * self.max_velocity) if split == "ood" else (0.0, self.max_velocity)
        tasks: list[VelocityTask] = []
        while len(tasks) < n:
            v = float(rng.uniform(low, high))
            if self._split(v) == split:
                tasks.append(VelocityTask(v))
        return tasks

    def _check(self, task: VelocityTask, argument: str) -> None:
        v = task.velocity
        if isinstance(v, bool) or not isinstance(v, float | int) or not 0.0 <= v <= 1.5 * self.max_velocity:
            raise ArgumentError(
                f"{argument}.velocity", f"expected a number in [0, {1.5 * self.max_velocity:g}], got {v!r}"
            )


class CheetahDirFamily(TaskFamily[DirectionTask]):
    """Two tasks, forward and backward; ``train`` only (holding one out leaves nothing to learn)."""

    task_type = DirectionTask
    name = "HalfCheetahDir"
    splits = ("train",)

    @property
    def params(self) -> tuple[Param, ...]:
        return (Param("direction", "int", "run forward (+1) or backward (-1)", choices=(-1, 1), default=1),)

    @property
    def default_task(self) -> DirectionTask:
        return DirectionTask(1)

    @property
    def horizon(self) -> int:
        return HORIZON

    def oracle_policy(self) -> Policy:
        return ShootingMPC(self)

    def split_of(self, task: DirectionTask) -> str:
        self.validate(task)
        return "train"

    def task_set(self, split: str) -> tuple[DirectionTask, ...]:
        self.check_split(split)
        return (DirectionTask(-1), DirectionTask(1))

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[DirectionTask]:
        return [DirectionTask(int(d)) for d in rng.choice([-1, 1], size=n)]

    def _check(self, task: DirectionTask, argument: str) -> None:
        if task.direction not in (-1, 1) or isinstance(task.direction, bool):
            raise ArgumentError(f"{argument}.direction", f"expected -1 or 1, got {task.direction!r}")


#: Split of each of AntDir's 36 ten-degree sectors.
_ANT_SECTOR_SPLITS = ranked_split([f"ant-dir:{sector}" for sector in range(36)])


class AntDirFamily(TaskFamily[AngleTask]):
    """Directions ~ U[0, 2 pi); train/validation/test interleave on 10-degree sectors (20% of
    sectors test, 10% validation, by a stable hash order); no ood split (the circle has no
    outside)."""

    task_type = AngleTask
    name = "AntDir"
    splits = ("train", "validation", "test")

    @property
    def params(self) -> tuple[Param, ...]:
        return (Param("angle", "float", "direction to run in, radians from +x", 0.0, 2 * math.pi, 0.0),)

    @property
    def default_task(self) -> AngleTask:
        return AngleTask(
            next(s * math.pi / 18 + 0.01 for s in range(36) if self._split(s * math.pi / 18 + 0.01) == "train")
        )

    @property
    def horizon(self) -> int:
        return HORIZON

    def oracle_policy(self) -> Policy:
        return ShootingMPC(self, samples=16, horizon=6)  # the ant's model is slower to step

    @staticmethod
    def _split(angle: float) -> str:
        sector = min(int(angle / (math.pi / 18)), 35)
        return _ANT_SECTOR_SPLITS[sector]

    def split_of(self, task: AngleTask) -> str:
        self.validate(task)
        return self._split(task.angle)

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[AngleTask]:
        tasks: list[AngleTask] = []
        while len(tasks) < n:
            angle = float(rng.uniform(0.0, 2 * math.pi))
            if self._split(angle) == split:
                tasks.append(AngleTask(angle))
        return tasks

    def _check(self, task: AngleTask, argument: str) -> None:
        a = task.angle
        if isinstance(a, bool) or not isinstance(a, float | int) or not 0.0 <= a < 2 * math.pi:
            raise ArgumentError(f"{argument}.angle", f"expected a number in [0, 2 pi), got {a!r}")


def cheetah_vel_reward(task: Task, info: dict[str, Any], action: np.ndarray) -> float:
    assert isinstance(task, VelocityTask)
    return -abs(float(info["x_velocity"]) - task.velocity) - CHEETAH_CTRL * float(np.sum(np.square(action)))


def cheetah_dir_reward(task: Task, info: dict[str, Any], action: np.ndarray) -> float:
    assert isinstance(task, DirectionTask)
    return task.direction * float(info["x_velocity"]) - CHEETAH_CTRL * float(np.sum(np.square(action)))


def ant_dir_reward(task: Task, info: dict[str, Any], action: np.ndarray) -> float:
    assert isinstance(task, AngleTask)
    progress = math.cos(task.angle) * float(info["x_velocity"]) + math.sin(task.angle) * float(info["y_velocity"])
    return progress + float(info["reward_survive"]) + float(info["reward_ctrl"]) + float(info["reward_contact"])


_log = logging.getLogger(__name__)


def _log_mujoco_warning(message: str) -> None:
    # Gymnasium's v5 models use compiler attributes MuJoCo has deprecated: not the user's concern.
    _log.log(logging.DEBUG if "deprecated" in message else logging.WARNING, "MuJoCo: %s", message.strip())


@contextlib.contextmanager
def _mujoco_warnings_logged() -> Iterator[None]:
    """MuJoCo's warnings go to this module's logger while inside, not to stdout and a
    MUJOCO_LOG.TXT in the working folder (MuJoCo's default); the caller's handler is restored."""
    import mujoco

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(_log_mujoco_warning)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


class MujocoDynamics(BatchedDynamics[Any]):
    """One Gymnasium MuJoCo env whose reward is recomputed from the task (N is always 1).

    Args:
        family: The task family.
        make: Builds the Gymnasium MuJoCo env (called with ``render_mode="rgb_array"``).
        reward: (task, step info, action) -> reward.
    """

    def __init__(
        self,
        family: TaskFamily[Any],
        make: Callable[..., Any],
        reward: Callable[[Task, dict[str, Any], np.ndarray], float],
    ) -> None:
        super().__init__(family, 1)
        with _mujoco_warnings_logged():
            self.env = make(render_mode="rgb_array")
        self.observation_space = self.env.observation_space
        self.action_space: spaces.Box = self.env.action_space
        self.reward, self.task = reward, family.default_task
        self._obs = np.zeros(self.env.observation_space.shape, dtype=np.float64)

    def set_tasks(self, idx: np.ndarray, tasks: Sequence[Any]) -> None:
        self.task = tasks[0]

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        with _mujoco_warnings_logged():
            self._obs, _ = self.env.reset(seed=int(rngs.integers(idx, 2**31)[0, 0]))

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        with _mujoco_warnings_logged():
            self._obs, _, terminated, _, info = self.env.step(actions[0])
        return np.array([self.reward(self.task, info, actions[0])]), np.array([terminated])

    def observe(self) -> np.ndarray:
        return np.asarray(self._obs, dtype=self.observation_space.dtype)[None]

    def render_frame(self, i: int) -> np.ndarray:
        return np.asarray(render_frame(self.env))

    def __getstate__(self) -> dict[str, Any]:
        # Gymnasium's MuJoCo envs pickle only their constructor arguments; MuJoCo's MjData
        # pickles whole (state, warm starts and the derived quantities the reward reads), so
        # carry it along and a copy goes on bit for bit.
        model = self.env.unwrapped
        return {**self.__dict__, "_sim": (model.data, model.np_random)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        data, rng = state.pop("_sim")
        self.__dict__.update(state)
        model = self.env.unwrapped
        model.data = data
        model.mujoco_renderer.data = data  # no viewer exists yet in a fresh copy
        model.np_random = rng


def _mujoco(name: str) -> Callable[..., Any]:
    module = "half_cheetah_v5" if name == "cheetah" else "ant_v5"
    try:
        found = import_mujoco(lambda: importlib.import_module(f"gymnasium.envs.mujoco.{module}"))
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("MuJoCo families need the mujoco extra: pip install 'metagym-rl[mujoco]'") from error
    if name == "cheetah":
        return found.HalfCheetahEnv
    return lambda render_mode: found.AntEnv(render_mode=render_mode, include_cfrc_ext_in_observation=False)


class ShootingMPC(Policy):
    """Task oracle for locomotion: model-predictive control with the true model and the task's
    own reward. At every step it rebuilds the simulator state from the observation (the
    positions the observation leaves out do not affect the reward), simulates ``samples``
    action sequences of ``horizon`` steps on a private copy of the model (the previous plan,
    shifted, plus Gaussian perturbations of it), and plays the first action of the best. A
    planner, not a trained policy: see the README for how far it gets.

    Args:
        family: The locomotion family (its model is rebuilt privately for planning).
        samples: Action sequences tried per step.
        horizon: Steps each sequence looks ahead.
        noise: Standard deviation of the perturbations, in action units.
    """

    name = "oracle"

    def __init__(self, family: TaskFamily[Any], samples: int = 32, horizon: int = 8, noise: float = 0.3) -> None:
        self.family, self.samples, self.horizon, self.noise = family, samples, horizon, noise
        self.rng = np.random.default_rng(0)
        self._sim: MujocoDynamics | None = None
        self.plan = np.zeros((1, 1))

    def _simulator(self) -> MujocoDynamics:
        if self._sim is None:
            self._sim = _dynamics_for(self.family)
        return self._sim

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        sim = self._simulator()
        sim.set_tasks(np.zeros(1, dtype=np.int64), [task])
        sim.reset_envs(np.zeros(1, dtype=np.int64), Streams(1))
        self.rng = rng
        self.plan = np.zeros((self.horizon, sim.action_space.shape[0]))

    def act(self, obs: Any) -> np.ndarray:
        sim = self._simulator()
        model = sim.env.unwrapped
        hidden = model.model.nq + model.model.nv - len(obs)  # leading positions left out of obs
        qpos = np.concatenate([model.init_qpos[:hidden], obs[: model.model.nq - hidden]])
        qvel = np.asarray(obs[model.model.nq - hidden :], dtype=np.float64)
        low, high = sim.action_space.low, sim.action_space.high
        shifted = np.concatenate([self.plan[1:], self.plan[-1:]])
        noise = self.rng.normal(0.0, self.noise, size=(self.samples, *shifted.shape))
        noise[0] = 0.0  # keep the shifted plan itself
        candidates = np.clip(shifted + noise, low, high)
        totals = np.zeros(self.samples)
        for k, plan in enumerate(candidates):
            model.set_state(qpos, qvel)
            for action in plan:
                reward, terminated = sim.step(action[None], np.ones(1, dtype=bool), Streams(1))
                totals[k] += float(reward[0])
                if terminated[0]:
                    break
        self.plan = candidates[int(np.argmax(totals))]
        return self.plan[0].astype(np.float32)


def _dynamics_for(family: TaskFamily[Any]) -> MujocoDynamics:
    if isinstance(family, CheetahVelFamily):
        return MujocoDynamics(family, _mujoco("cheetah"), cheetah_vel_reward)
    if isinstance(family, CheetahDirFamily):
        return MujocoDynamics(family, _mujoco("cheetah"), cheetah_dir_reward)
    return MujocoDynamics(family, _mujoco("ant"), ant_dir_reward)


_DOC = """## Description

    {what} on Gymnasium's MuJoCo v5 model, with the task's reward in place of the model's
    own. Horizon 200, as in the MAML paper. The vector form is Gymnasium's
    Sync/AsyncVectorEnv.

    ## Action Space

    The model's torques (Box, as Gymnasium's {model}-v5).

    ## Observation Space

    Gymnasium's {model}-v5 observation{obs_note}; the task is never observed.

    ## Rewards

    {reward}

    ## Starting State

    Gymnasium's reset noise, seeded from the env's episode stream.

    ## Episode End

    Truncated after 200 steps{end}.

    ## Task Distribution

    {tasks}

    ## Splits

    {splits}

    ## Arguments

    {args}``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("{env_id}")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['{param}']
    >>> task = family.sample(np.random.default_rng(0), 1, split="{split}")[0]
    >>> obs, info = env.reset(seed=0, options={{"task": task}})
    >>> family.split_of(task), env.unwrapped.task == task
    ('{split}', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
"""


class HalfCheetahVelEnv(FamilyEnv[VelocityTask]):
    __doc__ = _DOC.format(
        env_id="HalfCheetahVel-v0",
        param="velocity",
        split="test",
        what="HalfCheetah running at a hidden target velocity",
        model="HalfCheetah",
        obs_note="",
        reward="-|forward velocity - target| - 0.05 |action|^2 (the MAML code's).",
        end="",
        tasks="Target ~ U[0, max_velocity]: 2 in the MAML code (default), 3 in PEARL and VariBAD.",
        splits="``train`` / ``validation`` / ``test`` interleave on 0.1 m/s bins; ``ood`` is (max, 1.5 max].",
        args="``max_velocity`` (default 2.0), ",
    )

    def __init__(self, max_velocity: float = 2.0, render_mode: str | None = None) -> None:
        family = CheetahVelFamily(max_velocity)
        super().__init__(render_mode, MujocoDynamics(family, _mujoco("cheetah"), cheetah_vel_reward))


class HalfCheetahDirEnv(FamilyEnv[DirectionTask]):
    __doc__ = _DOC.format(
        env_id="HalfCheetahDir-v0",
        param="direction",
        split="train",
        what="HalfCheetah running forward or backward, as the hidden task says,",
        model="HalfCheetah",
        obs_note="",
        reward="direction x forward velocity - 0.05 |action|^2 (the MAML code's).",
        end="",
        tasks="Direction +1 or -1 with equal probability.",
        splits="``train`` only: holding out one of two tasks would leave nothing to learn.",
        args="",
    )

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode, MujocoDynamics(CheetahDirFamily(), _mujoco("cheetah"), cheetah_dir_reward))


class AntDirEnv(FamilyEnv[AngleTask]):
    __doc__ = _DOC.format(
        env_id="AntDir-v0",
        param="angle",
        split="test",
        what="Ant running in a hidden 2-D direction",
        model="Ant",
        obs_note=" without contact forces (27 numbers)",
        reward="velocity along the direction + Gymnasium's survive, control and contact terms.",
        end=", or terminated when the ant is unhealthy (Gymnasium's rule)",
        tasks="Direction ~ U[0, 2 pi).",
        splits="``train`` / ``validation`` / ``test`` interleave on 10-degree sectors (20%, 10% held out); no ``ood``.",
        args="",
    )

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode, MujocoDynamics(AntDirFamily(), _mujoco("ant"), ant_dir_reward))
