"""Dynamics written once over a leading env axis, seen as a Gymnasium Env and VectorEnv.

A family implements :class:`BatchedDynamics`: numpy state for ``N`` envs, one task each.
:class:`FamilyEnv` is the ``N = 1`` view (a :class:`gymnasium.Env`); ``metagym.vector.FamilyVectorEnv``
steps all ``N`` in one call (a :class:`gymnasium.vector.VectorEnv`, registered as the
``vector_entry_point``). Both keep, per env, an episode stream and a separate task stream
(:class:`metagym.streams.Streams`), both keyed by the reset seed, so sub-env ``i`` of a vector
env reset with ``seed`` behaves exactly like a single env reset with ``seed + i``.

Task rules, the same in both views:

* ``reset(options={"task": t})`` plays ``t`` for that episode.
* ``reset(options={"keep_task": True})`` plays the current task again (trials use this).
* Setting ``env.task = t`` (or ``set_task(t)``, or ``set_attr("task", ...)`` on the vector env)
  *pins* ``t``: later resets keep it, as learn2learn-style code expects. ``env.task = None``
  unpins.
* Otherwise each reset draws a new ``"train"`` task from the task RNG.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.render import Window
from metagym.streams import STREAM_EPISODE, STREAM_TASK, Streams
from metagym.tasks import T, TaskFamily

RENDER_MODES = ["human", "rgb_array"]
_ONE = np.ones(1, dtype=bool)  # the single env's "active" mask (read-only)
_ONE.flags.writeable = False
_ZERO = np.zeros(1, dtype=np.int64)  # the single env's index (read-only)
_ZERO.flags.writeable = False


#: The most sub-envs one batched env holds (each has its own random streams): beyond it, a
#: typo such as ``num_envs=10**9`` would allocate for minutes before failing.
MAX_ENVS = 1_000_000


class BatchedDynamics(ABC, Generic[T]):
    """Numpy state and dynamics of ``num_envs`` envs of one family, each with its own task.

    Subclasses define the spaces, keep per-env task arrays up to date in :meth:`set_tasks` or
    :meth:`set_task_arrays`, and implement :meth:`reset_envs`, :meth:`step`, :meth:`observe`
    and :meth:`render_frame`. Random draws use only the per-env streams passed in
    (:class:`metagym.streams.Streams`), so that the batch matches ``num_envs`` independent
    single envs draw for draw.
    """

    observation_space: spaces.Space[Any]
    action_space: spaces.Space[Any]
    #: For families with a goal: (N,) bool, whether each env's last step reached it, set by
    #: :meth:`step`; the envs report it as ``info["success"]`` (as Meta-World does). None: no goal.
    success: np.ndarray | None = None
    #: For grid families: (rows, cols) when the observation's first two entries are the agent's
    #: (row, col) and the reward depends only on the cell reached (VariBAD decodes one reward per
    #: cell there). None: no such position.
    position_grid: tuple[int, int] | None = None
    #: For families in the plane: (x_low, x_high, y_low, y_high), the region a rendered frame
    #: shows, when the observation's first two entries are the agent's (x, y) and the reward
    #: depends on the position reached (VariBAD draws its decoded reward field over it). None:
    #: no such position.
    position_view: tuple[float, float, float, float] | None = None

    def __init__(self, family: TaskFamily[T], num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or not 1 <= num_envs <= MAX_ENVS:
            raise ArgumentError("num_envs", f"expected an integer from 1 to {MAX_ENVS:,}, got {num_envs!r}")
        self.family = family
        self.num_envs = int(num_envs)
        #: Steps after which each env's episode is truncated; set by :meth:`set_tasks`.
        self.horizons = np.full(self.num_envs, family.horizon, dtype=np.int64)
        self._everyone = np.arange(self.num_envs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.set_tasks is BatchedDynamics.set_tasks and cls.set_task_arrays is BatchedDynamics.set_task_arrays:
            raise ArgumentTypeError(cls.__name__, "implement set_tasks or set_task_arrays (or both)")

    def set_tasks(self, idx: np.ndarray, tasks: Sequence[T]) -> None:
        """Install ``tasks[j]`` in env ``idx[j]`` and recompute every derived quantity.

        Implement this or :meth:`set_task_arrays`; each defaults to the other."""
        self.set_task_arrays(idx, self.family.to_arrays(tasks))

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        """:meth:`set_tasks` for tasks as arrays (:meth:`TaskFamily.to_arrays`'s form), the
        batched envs' hot path: a family that implements it installs a fresh batch of tasks
        without building one dataclass per env."""
        self.set_tasks(idx, [self.family.from_arrays(arrays, j) for j in range(len(idx))])

    @abstractmethod
    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        """Start a new episode in envs ``idx``, drawing from their episode streams ``rngs``
        (``rngs.random(idx, k)`` for all of them at once, or ``rngs[i]``, a numpy Generator,
        for one)."""

    @abstractmethod
    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        """Advance the envs where ``active`` is True; return ``(reward, terminated)``, each (N,).

        Inactive envs keep their state and draw no random numbers.
        """

    @abstractmethod
    def observe(self) -> np.ndarray:
        """A new array of all envs' observations, shape ``(N, *observation_space.shape)``."""

    @abstractmethod
    def render_frame(self, i: int) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8 of env ``i``, hidden task included (for the viewer)."""

    def active_rows(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray | slice]:
        """The active envs as an index array, and as what indexes their rows cheapest: a
        slice when every env is active (the usual case; index arrays cost a copy per use)."""
        if active.all():
            return self._everyone, slice(None)
        idx = np.flatnonzero(active)
        return idx, idx

    def check_actions(self, actions: Any) -> np.ndarray:
        """Return ``actions`` as an array of shape (N, ...), or raise ValueError naming it."""
        space = self.action_space
        arr = np.asarray(actions)
        if isinstance(space, spaces.Discrete):
            if arr.shape != (self.num_envs,) or arr.dtype.kind not in "iu":
                raise ArgumentError(
                    "action", f"expected {self.num_envs} integer action(s), got {actions!r} (shape {arr.shape})"
                )
            low, high = int(space.start), int(space.start + space.n)
            # one env: a Python comparison is several times cheaper than numpy's
            ok = low <= int(arr[0]) < high if self.num_envs == 1 else low <= arr.min() and arr.max() < high
            if not ok:
                bad = arr[(arr < low) | (arr >= high)][0]
                raise ArgumentError("action", f"{bad} is not in {{{low}, ..., {high - 1}}}")
            return arr
        if isinstance(space, spaces.Box):
            shape = (self.num_envs, *space.shape)
            if arr.shape != shape:
                raise ArgumentError("action", f"expected shape {shape}, got {arr.shape}")
            if arr.dtype.kind not in "iuf":  # complex, bool, strings, objects: never cast quietly
                raise ArgumentError("action", f"expected real numbers, got dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                raise ArgumentError("action", f"values must be finite, got {actions!r}")
            # Clipped to the bounds, as Gymnasium's Pendulum and MountainCarContinuous clip theirs.
            return np.clip(arr.astype(space.dtype, copy=False), space.low, space.high)
        raise NotImplementedError(f"check_actions: no check for {type(space).__name__}; override it")


def build_dynamics(cls: Any, dynamics: Any, num_envs: int | None) -> Any:
    """The dynamics given, else the class's ``dynamics_type(num_envs)``."""
    if dynamics is not None:
        if not isinstance(dynamics, BatchedDynamics):
            raise ArgumentTypeError("dynamics", f"expected a BatchedDynamics instance, got {type(dynamics).__name__}")
        return dynamics
    if cls.dynamics_type is None or num_envs is None:
        raise ArgumentTypeError(cls.__name__, "pass dynamics=..., or set dynamics_type on the class and pass num_envs")
    return cls.dynamics_type(num_envs)


def seed_list(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return [int(seed) + i for i in range(num_envs)]
    if isinstance(seed, Sequence) and len(seed) == num_envs:
        return list(seed)
    raise ArgumentError("seed", f"expected None, an int, or a list of {num_envs} ints/None, got {seed!r}")


def check_options(options: dict[str, Any] | None, allowed: set[str]) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise ArgumentTypeError("options", f"expected a dict or None, got {type(options).__name__}")
    options = dict(options or {})
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ArgumentError("options", f"unknown keys {unknown}; allowed: {sorted(allowed)}")
    return options


class FamilyEnv(gym.Env[np.ndarray, Any], Generic[T]):
    """One env of a task family: the ``N = 1`` view of its :class:`BatchedDynamics`.

    Subclasses either set ``dynamics_type`` (no make kwargs but ``render_mode``) or build their
    dynamics in ``__init__`` from their make kwargs and pass them here; they add nothing but
    arguments and documentation.
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 8}
    #: Builds one env's dynamics, for families whose only make kwarg is ``render_mode``.
    dynamics_type: Callable[[int], BatchedDynamics[Any]] | None = None

    def __init__(self, render_mode: str | None = None, dynamics: BatchedDynamics[T] | None = None) -> None:
        dynamics = build_dynamics(type(self), dynamics, 1)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ArgumentError("render_mode", f"{render_mode!r} is not allowed; allowed: None, {RENDER_MODES}")
        if dynamics.num_envs != 1:
            raise ArgumentError("dynamics", f"FamilyEnv needs num_envs=1, got {dynamics.num_envs}")
        self._dyn = dynamics
        self.family: TaskFamily[T] = dynamics.family
        self.observation_space = dynamics.observation_space
        self.action_space = dynamics.action_space
        self.render_mode = render_mode
        self._task: T = self.family.default_task
        self._pinned: T | None = None
        #: The episode stream (initial states, noise) and the task stream, keyed by the reset
        #: seed; unseeded until the first reset or sample_tasks (then from Gymnasium's seed).
        self._streams = Streams(1)
        self._task_streams = Streams(1)
        self._seeded = False
        self._elapsed = 0
        self._window: Window | None = None
        self._dyn.set_tasks(_ZERO, [self._task])

    # -- tasks ------------------------------------------------------------------------------
    @property
    def position_grid(self) -> tuple[int, int] | None:
        """See :attr:`BatchedDynamics.position_grid`."""
        return self._dyn.position_grid

    @property
    def position_view(self) -> tuple[float, float, float, float] | None:
        """See :attr:`BatchedDynamics.position_view`."""
        return self._dyn.position_view

    @property
    def task(self) -> T:
        """The current task. Setting it pins it (later resets keep it); ``None`` unpins."""
        return self._task

    @task.setter
    def task(self, value: T | None) -> None:
        if value is None:
            self._pinned = None
            return
        self._pinned = self._install(value, "task")

    def set_task(self, task: T | None) -> None:
        """learn2learn-style alias of ``env.task = task``."""
        self.task = task

    def get_task(self) -> T:
        """learn2learn-style alias of ``env.task``."""
        return self._task

    def sample_tasks(self, n: int, split: str = "train") -> list[T]:
        """Draw ``n`` tasks of ``split`` from this env's task stream (it moves on: the next call
        draws other tasks)."""
        if not self._seeded:
            self._seed_streams()
        return self.family.sample(self._task_streams[0], n, split)

    def _seed_streams(self) -> None:
        """Key both streams from Gymnasium's seed (a seed it drew itself if none was given)."""
        seed = self.np_random_seed  # -1 if np_random was replaced: then a seed drawn from it
        seed = seed if seed >= 0 else int(self.np_random.integers(2**63))
        self._streams.seed(_ZERO, [seed], STREAM_EPISODE)
        self._task_streams.seed(_ZERO, [seed], STREAM_TASK)
        self._seeded = True

    def _install(self, task: Any, argument: str) -> T:
        task = self.family.validate(task, argument)
        if task is not self._task and task != self._task:
            self._dyn.set_tasks(_ZERO, [task])
            self._task = task
        return task

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        opts = check_options(options, {"task", "keep_task"})
        if seed is not None or not self._seeded:
            self._seed_streams()
        if opts.get("task") is not None:
            self._install(opts["task"], "options['task']")
        elif opts.get("keep_task"):
            pass
        elif self._pinned is not None:
            self._install(self._pinned, "task")
        else:
            arrays = self.family.draw_arrays(self._task_streams, _ZERO, "train")
            self._dyn.set_task_arrays(_ZERO, arrays)
            self._task = self.family.from_arrays(arrays, 0)
        self._dyn.reset_envs(_ZERO, self._streams)
        self._elapsed = 0
        if self.render_mode == "human":
            self.render()
        return self._dyn.observe()[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        actions = self._dyn.check_actions(np.asarray(action)[None])
        reward, terminated = self._dyn.step(actions, _ONE, self._streams)
        self._elapsed += 1
        # Truncated means "cut short": a step that terminates is never also truncated.
        truncated = self._elapsed >= int(self._dyn.horizons[0]) and not terminated[0]
        if self.render_mode == "human":
            self.render()
        info = {} if self._dyn.success is None else {"success": bool(self._dyn.success[0])}
        return self._dyn.observe()[0], float(reward[0]), bool(terminated[0]), bool(truncated), info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render: called with render_mode=None; make the env with render_mode='rgb_array'")
            return None
        frame = self._dyn.render_frame(0)
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = Window(type(self).__name__, self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_window"] = None
        return state
