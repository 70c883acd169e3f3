"""The batched family env: ``N`` envs of one family stepped in one numpy call.

Registered as each family's ``vector_entry_point``, so ``gymnasium.make_vec(id, num_envs=N)``
returns it. Sub-env ``i`` reset with ``seed`` behaves exactly like the single env
(:class:`metagym.batched.FamilyEnv`) reset with ``seed + i``; the task rules are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from metagym.batched import RENDER_MODES, BatchedDynamics, build_dynamics, check_options, seed_list
from metagym.errors import ArgumentError
from metagym.render import Window, mosaic
from metagym.streams import STREAM_EPISODE, STREAM_TASK, Streams
from metagym.tasks import T, Task, TaskFamily


class FamilyVectorEnv(gym.vector.VectorEnv, Generic[T]):
    """``N`` envs of one family stepped in one numpy call, one task per sub-env.

    Args:
        num_envs: Number of sub-envs (with ``dynamics_type``; else ``dynamics`` says).
        render_mode: ``None``, ``"rgb_array"`` (a tuple of every sub-env's frame) or
            ``"human"`` (a window with a mosaic of the first 16 sub-envs).
        autoreset_mode: Gymnasium's :class:`~gymnasium.vector.AutoresetMode` (or its value
            string). ``NEXT_STEP`` (default) and ``SAME_STEP`` as Gymnasium defines them; with
            ``DISABLED``, reset finished sub-envs with ``options={"reset_mask": mask}``.
        max_episode_steps: Optional extra cap on episode length (the family's horizon applies
            regardless), as ``gymnasium.make(..., max_episode_steps=k)`` does for one env.
        dynamics: The family's batched dynamics (subclasses with make kwargs build it).
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 8}
    #: Builds the dynamics of ``num_envs`` envs, for families with no make kwargs of their own.
    dynamics_type: Callable[[int], BatchedDynamics[Any]] | None = None

    def __init__(
        self,
        num_envs: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        dynamics: BatchedDynamics[T] | None = None,
    ) -> None:
        dynamics = build_dynamics(type(self), dynamics, num_envs)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ArgumentError("render_mode", f"{render_mode!r} is not allowed; allowed: None, {RENDER_MODES}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            allowed = [m.value for m in AutoresetMode]
            raise ArgumentError("autoreset_mode", f"{autoreset_mode!r} is not allowed; allowed: {allowed}") from None
        if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
            raise ArgumentError("max_episode_steps", f"expected None or an integer >= 1, got {max_episode_steps!r}")
        self._dyn = dynamics
        self.family: TaskFamily[T] = dynamics.family
        self.num_envs = dynamics.num_envs
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = dynamics.observation_space
        self.single_action_space = dynamics.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        n = self.num_envs
        self._all = np.arange(n)
        # Every sub-env's task as arrays (the hot path), and as a dataclass where one was given
        # or has been asked for (None: build it from the arrays when asked).
        default = self.family.default_task
        self._task_rows = {k: _writable(v) for k, v in self.family.to_arrays([default] * n).items()}
        self._task_objs: list[T | None] = [default] * n  # a list: checkpoints keep the tasks as JSON
        self._pinned: list[T | None] = [None] * n
        self._is_pinned = np.zeros(n, dtype=bool)
        # Until a seeded reset, each sub-env's streams come from fresh entropy, as Gymnasium's do.
        self._streams = Streams(n)
        self._task_streams = Streams(n)
        self._streams.seed_from_entropy(self._all)
        self._task_streams.seed_from_entropy(self._all)
        # Each sub-env's next fresh task, drawn ahead from its task stream with the others' (see
        # _draw), and where its stream will stand after it; valid until the stream is reseeded
        # or read otherwise.
        self._ahead = {key: column.copy() for key, column in self._task_rows.items()}
        self._ahead_counter = np.zeros(n, dtype=np.uint64)
        self._ahead_ok = np.zeros(n, dtype=bool)
        self._started = False
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._nobody, self._everybody = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)  # masks, read-only
        self._nobody.flags.writeable = self._everybody.flags.writeable = False
        self._window: Window | None = None
        self._dyn.set_tasks(self._all, [default] * n)

    # -- tasks ------------------------------------------------------------------------------
    @property
    def position_grid(self) -> tuple[int, int] | None:
        """See :attr:`metagym.batched.BatchedDynamics.position_grid`."""
        return self._dyn.position_grid

    @property
    def position_view(self) -> tuple[float, float, float, float] | None:
        """See :attr:`metagym.batched.BatchedDynamics.position_view`."""
        return self._dyn.position_view

    @property
    def tasks(self) -> list[T]:
        """Every sub-env's current task."""
        return [self.get_task(i) for i in range(self.num_envs)]

    def set_tasks(self, tasks: T | Sequence[T | None] | None) -> None:
        """Pin one task (broadcast) or one per sub-env (``None`` entries unpin)."""
        self._pinned = tasks_per_env(self.family, self.num_envs, tasks, "task", none="unpin")
        self._is_pinned = np.array([t is not None for t in self._pinned], dtype=bool)
        keep = np.flatnonzero(self._is_pinned)
        self._install(keep, [self._pinned[i] for i in keep])  # type: ignore[misc]

    def set_task(self, task: T | dict[str, Any] | None, index: int | None = None) -> None:
        """learn2learn / Meta-World-style: pin ``task`` (a task or its dict) in sub-env ``index``,
        or in every sub-env when ``index`` is None; ``None`` unpins."""
        if index is None:
            self.set_tasks(task)  # type: ignore[arg-type]
            return
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < self.num_envs:
            raise ArgumentError("index", f"expected a sub-env index from 0 to {self.num_envs - 1}, got {index!r}")
        pinned: list[Any] = list(self._pinned)
        pinned[int(index)] = task
        self.set_tasks(pinned)  # validates every entry (``task[index]`` in messages)

    def get_task(self, index: int = 0) -> T:
        """The current task of sub-env ``index`` (``tasks`` has them all)."""
        task = self._task_objs[index]
        if task is None:
            task = self._task_objs[index] = self.family.from_arrays(self._task_rows, index)
        return task

    def sample_tasks(self, n: int, split: str = "train") -> list[T]:
        """Draw ``n`` tasks of ``split`` from sub-env 0's task stream."""
        self._ahead_ok[0] = False  # the stream moves on: its next task is another
        return self.family.sample(self._task_streams[0], n, split)

    def _install(self, idx: np.ndarray, tasks: Sequence[T]) -> None:
        """Install given (validated) tasks, skipping sub-envs that already play them."""
        objs = self._task_objs
        changed = [j for j, i in enumerate(idx.tolist()) if (t := objs[i]) is not tasks[j] and t != tasks[j]]
        if not changed:
            return
        where, given = idx[changed], [tasks[j] for j in changed]
        for i, task in zip(where.tolist(), given, strict=True):
            objs[i] = task
        for key, column in self.family.to_arrays(given).items():
            self._task_rows[key][where] = column
        self._dyn.set_tasks(where, given)

    def _draw(self, idx: np.ndarray) -> None:
        """A fresh train task in each of sub-envs ``idx``, from their own task streams.

        A sub-env's next task depends only on its task stream's key and counter, so it can be
        drawn before it is needed: when one sub-env needs a task it has not drawn ahead, every
        sub-env without one draws its next task too, in the same call (:meth:`_draw_ahead`).
        Episodes end a few at a time, so this makes one large draw out of many small ones (a
        numpy call costs about as much for 40 rows as for 1,000), with the same tasks and streams.
        """
        if not self._ahead_ok[idx].all():
            self._draw_ahead()
        arrays = {key: column[idx] for key, column in self._ahead.items()}
        self._task_streams.counters[idx] = self._ahead_counter[idx]
        self._ahead_ok[idx] = False
        for key, column in arrays.items():
            self._task_rows[key][idx] = column
        if len(idx) == self.num_envs:
            self._task_objs = [None] * self.num_envs
        else:
            objs = self._task_objs
            for i in idx.tolist():
                objs[i] = None
        self._dyn.set_task_arrays(idx, arrays)

    def _draw_ahead(self) -> None:
        """Draw the next task of every sub-env that has none drawn ahead, leaving the task
        streams where they are (a copy of them draws)."""
        rows = np.flatnonzero(~self._ahead_ok)
        probe = Streams(len(rows))
        probe.keys[:], probe.counters[:] = self._task_streams.keys[rows], self._task_streams.counters[rows]
        for key, column in self.family.draw_arrays(probe, np.arange(len(rows)), "train").items():
            self._ahead[key][rows] = column
        self._ahead_counter[rows] = probe.counters
        self._ahead_ok[rows] = True

    def _seed_envs(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        """Give sub-envs ``idx`` new episode and task streams from their seeds (None: keep)."""
        if seeds[0] is None and seeds.count(None) == len(seeds):
            return
        seeded = [i for i in idx.tolist() if seeds[i] is not None]
        if seeded:
            where, values = np.array(seeded, dtype=np.int64), [seeds[i] for i in seeded]
            for value in values:
                if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                    raise ArgumentError("seed", f"expected non-negative integers, got {value!r}")
            self._streams.seed(where, values, STREAM_EPISODE)
            self._task_streams.seed(where, values, STREAM_TASK)
            self._ahead_ok[where] = False

    def _reset_envs(self, idx: np.ndarray, tasks: Sequence[T | None] | None = None, keep_task: bool = False) -> None:
        """New episodes in ``idx``: the current task (``keep_task``), else the given task, else
        the pinned one, else a fresh draw."""
        if keep_task:
            idx_rest = idx[:0]
        elif tasks is not None:
            given = [j for j, t in enumerate(tasks) if t is not None]
            self._install(idx[given], [tasks[j] for j in given])  # type: ignore[misc]
            rest = np.ones(len(idx), dtype=bool)
            rest[given] = False
            idx_rest = idx[rest]
        else:
            idx_rest = idx
        pinned = self._is_pinned[idx_rest]
        if pinned.any():
            where = idx_rest[pinned]
            self._install(where, [self._pinned[i] for i in where.tolist()])
        fresh = idx_rest[~pinned]
        if len(fresh):
            self._draw(fresh)
        self._start_episodes(idx)

    def _start_episodes(self, idx: np.ndarray) -> None:
        """Episode starts in ``idx`` on the tasks they hold."""
        self._dyn.reset_envs(idx, self._streams)
        self._elapsed[idx] = 0
        self._needs_reset[idx] = False

    def restart_episodes(self, mask: np.ndarray) -> np.ndarray:
        """New episodes on the same tasks in sub-envs ``mask``; the observations of all sub-envs.
        What ``reset(options={"reset_mask": mask, "keep_task": True})`` does, without its
        option checks: trial wrappers call it at every inner episode's end."""
        self._start_episodes(np.flatnonzero(mask))
        return self._dyn.observe()

    def restart_next_step(self, mask: np.ndarray) -> None:
        """With ``NEXT_STEP`` autoreset: sub-envs ``mask`` start a new episode at the next step
        (their action ignored), as if their episode had just ended. Trial wrappers use it
        when they cut a trial short in the middle of an episode."""
        self._needs_reset = self._needs_reset | mask

    def _limits(self) -> np.ndarray:
        if self.max_episode_steps is None:
            return self._dyn.horizons
        return np.minimum(self._dyn.horizons, self.max_episode_steps)

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        opts = check_options(options, {"task", "keep_task", "reset_mask"})
        mask = opts.get("reset_mask")
        if mask is None:
            idx = self._all
        else:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ArgumentError("options['reset_mask']", f"expected a bool array of shape ({self.num_envs},)")
            idx = np.flatnonzero(mask)
        self._seed_envs(idx, seed_list(seed, self.num_envs))
        self._started = True
        if opts.get("keep_task"):
            self._reset_envs(idx, keep_task=True)
        elif opts.get("task") is not None:
            given = tasks_per_env(self.family, self.num_envs, opts["task"], "options['task']", none="draw")
            self._reset_envs(idx, [given[i] for i in idx])
        else:
            self._reset_envs(idx)
        if self.render_mode == "human":
            self.render()
        return self._dyn.observe(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("step: call reset() before step()")
        actions = self._dyn.check_actions(actions)
        infos: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            resetting = self._needs_reset.copy()
            active = ~resetting
        else:
            if self.autoreset_mode == AutoresetMode.DISABLED and self._needs_reset.any():
                # As Gymnasium's SyncVectorEnv, which asserts it: a finished episode is not stepped.
                finished = np.flatnonzero(self._needs_reset).tolist()
                raise gym.error.ResetNeeded(
                    f"step: sub-env(s) {finished} finished their episode; with autoreset_mode DISABLED, "
                    "reset them first: reset(options={'reset_mask': mask})"
                )
            resetting, active = self._nobody, self._everybody
        reward, terminated = self._dyn.step(actions, active, self._streams)
        reward = np.where(active, reward, 0.0)
        terminated = terminated & active
        self._elapsed += active
        truncated = active & (self._elapsed >= self._limits()) & ~terminated
        done = terminated | truncated
        if self._dyn.success is not None:  # Gymnasium's vector info layout: values and a mask
            infos["success"], infos["_success"] = self._dyn.success & active, active.copy()
        if resetting.any():
            self._reset_envs(np.flatnonzero(resetting))
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            infos["final_obs"] = self._dyn.observe()
            infos["_final_obs"] = done
            infos["final_info"] = {}
            infos["_final_info"] = done
            self._reset_envs(np.flatnonzero(done))
        if self.autoreset_mode != AutoresetMode.SAME_STEP:
            self._needs_reset = done
        if self.render_mode == "human":
            self.render()
        return self._dyn.observe(), reward, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render: called with render_mode=None; make the env with render_mode='rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            return tuple(self._dyn.render_frame(i) for i in range(self.num_envs))
        if self._window is None:
            self._window = Window(type(self).__name__, self.metadata["render_fps"])
        self._window.show(mosaic([self._dyn.render_frame(i) for i in range(min(16, self.num_envs))]))
        return None

    def close_extras(self, **kwargs: Any) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    # -- SyncVectorEnv-style attribute access ------------------------------------------------
    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Per-sub-env values: ``"task"`` gives each sub-env's task; other names the shared value."""
        if name == "task":
            return tuple(self.tasks)
        if name.startswith("_") or not hasattr(self, name):
            raise AttributeError(f"name: {type(self).__name__} has no public attribute {name!r}")
        return (getattr(self, name),) * self.num_envs

    def set_attr(self, name: str, values: Any) -> None:
        """Only ``"task"`` is settable: one task (broadcast) or one per sub-env; pins them."""
        if name != "task":
            raise ArgumentError("name", f"only 'task' can be set on {type(self).__name__}, got {name!r}")
        self.set_tasks(values)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a shared method (e.g. ``"sample_tasks"``) once; its result for every sub-env."""
        if name.startswith("_") or not callable(getattr(self, name, None)):
            raise AttributeError(f"name: {type(self).__name__} has no public method {name!r}")
        return (getattr(self, name)(*args, **kwargs),) * self.num_envs

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_window"] = None
        return state


def tasks_per_env(family: TaskFamily[Any], num_envs: int, tasks: Any, argument: str, *, none: str) -> list[Any]:
    """Validate ``None``, one task (broadcast to every sub-env) or a sequence of one task or None
    per sub-env, as a list of ``num_envs`` validated tasks and Nones; ``none`` says in the error
    what a None entry means (``"unpin"`` or ``"draw"``)."""
    if tasks is None or isinstance(tasks, Task | Mapping):
        return [None if tasks is None else family.validate(tasks, argument)] * num_envs
    if not isinstance(tasks, Sequence) or isinstance(tasks, str) or len(tasks) != num_envs:
        raise ArgumentError(argument, f"expected a task or a sequence of {num_envs} tasks (None: {none})")
    return [None if t is None else family.validate(t, f"{argument}[{i}]") for i, t in enumerate(tasks)]


def _writable(column: np.ndarray) -> np.ndarray:
    """A task column that takes any value of its field: strings as objects (a fixed-width
    numpy string would cut longer ones)."""
    return column.astype(object) if column.dtype.kind == "U" else column.copy()
