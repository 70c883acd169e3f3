"""Meta-World (Farama's ``metaworld`` 3.x, Meta-World+) benchmarks as metagym task families.

ML1 (one family per Meta-World v3 environment: its 50 train and 50 test variations), ML10 and
ML45 (train environments for training, test environments never seen in training). A task is an
environment name and Meta-World's parametric variation of it (``rand_vec``: object and goal
positions), so a task is a plain, JSON round-trippable metagym task; it is installed in
Meta-World's own env with Meta-World's own ``set_task``. Splits: ``train`` and ``test`` are the
benchmark's train and test tasks (built by Meta-World with ``benchmark_seed``, so equal in every
process); ``validation`` is a fixed part of the train tasks (the last 5 of each train
environment's 50), taken out of ``train``.

Needs the ``metaworld`` extra (``pip install 'metagym-rl[metaworld]'``). ``import metagym``
reads the environment names from the installed package's source without importing it; nothing
imports Meta-World until one of its ids is made.

MuJoCo steps one model at a time, so the single env is the family env and the vector form
(``gymnasium.make_vec(id, num_envs=N)``) is Gymnasium's AsyncVectorEnv of them (one process per
sub-env; ``vectorization="sync"`` keeps them in this process).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from metagym.batched import RENDER_MODES, BatchedDynamics, FamilyEnv
from metagym.envs.mujoco_gl import import_mujoco, render_frame
from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.meta_world_names import BENCHMARKS, INSTALL_HINT, benchmark_names
from metagym.policies import Policy
from metagym.snapshot import env_state, object_fields, restore_env_state, restore_fields
from metagym.streams import Streams
from metagym.tasks import Param, Task, TaskFamily
from metagym.vector import tasks_per_env

#: Meta-World's episode length (``max_path_length``), the default horizon.
MAX_PATH_LENGTH = 500
#: The reward function every family uses (Meta-World 3's default), stated in results.
REWARD_VERSION = "v2"
#: ``vectorization="auto"``: one process per sub-env up to this many sub-envs per CPU.
ASYNC_PER_CPU = 8
#: Validation tasks per train environment: the last of its train variations (10% of 50).
VALIDATION_PER_ENV = 5


def _import_metaworld() -> Any:
    try:
        return import_mujoco(lambda: importlib.import_module("metaworld"))
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error


@dataclasses.dataclass(frozen=True)
class MetaWorldTask(Task):
    """One Meta-World task: an environment and its parametric variation.

    Attributes:
        env_name: Meta-World's name of the environment, e.g. ``"reach-v3"``.
        rand_vec: Meta-World's variation of it (object and/or goal positions, metres).
    """

    env_name: str
    rand_vec: tuple[float, ...]


@functools.lru_cache(maxsize=64)
def benchmark_tasks(benchmark: str, env_name: str | None, seed: int) -> dict[str, tuple[MetaWorldTask, ...]]:
    """The tasks of each split, built by Meta-World's own benchmark class with ``seed``
    (``metaworld.ML1(env_name, seed=seed)``, ``ML10(seed=seed)``, ``ML45(seed=seed)``; it
    restores numpy's global random state afterwards). Cached per process."""
    metaworld = _import_metaworld()
    bench = metaworld.ML1(env_name, seed=seed) if benchmark == "ML1" else getattr(metaworld, benchmark)(seed=seed)

    def convert(tasks: Sequence[Any]) -> list[MetaWorldTask]:
        # The data is the pickle Meta-World's benchmark made a moment ago in this process.
        return [MetaWorldTask(t.env_name, tuple(float(x) for x in pickle.loads(t.data)["rand_vec"])) for t in tasks]

    train = convert(bench.train_tasks)
    names = list(dict.fromkeys(t.env_name for t in train))
    fit: list[MetaWorldTask] = []
    held: list[MetaWorldTask] = []
    for name in names:
        mine = [t for t in train if t.env_name == name]
        fit += mine[:-VALIDATION_PER_ENV]
        held += mine[-VALIDATION_PER_ENV:]
    return {"train": tuple(fit), "validation": tuple(held), "test": tuple(convert(bench.test_tasks))}


class MetaWorldFamily(TaskFamily[MetaWorldTask]):
    """A Meta-World benchmark's tasks with metagym's splits (see the module docstring).

    Args:
        benchmark: ``"ML1"``, ``"ML10"`` or ``"ML45"``.
        env_name: For ML1, the environment (one of Meta-World's v3 names; None: ``"reach-v3"``).
            ML10 and ML45 hold their own environments and refuse one.
        benchmark_seed: The seed Meta-World's benchmark class builds its tasks with.
        horizon: Steps per episode, at most Meta-World's 500 (its default).
    """

    task_type = MetaWorldTask
    splits = ("train", "validation", "test")
    #: Meta-World's reward function these families use (its default), recorded in results.
    reward_version = REWARD_VERSION

    def __init__(
        self, benchmark: str = "ML1", env_name: str | None = None, benchmark_seed: int = 0, horizon: int = 500
    ) -> None:
        if benchmark not in BENCHMARKS:
            raise ArgumentError("benchmark", f"expected one of {list(BENCHMARKS)}, got {benchmark!r}")
        names = benchmark_names()
        if not names:
            raise ImportError(INSTALL_HINT)
        if benchmark == "ML1":
            env_name = "reach-v3" if env_name is None else env_name
            if env_name not in names["ML1"]:
                raise ArgumentError(
                    "env_name", f"expected one of Meta-World's v3 environments {list(names['ML1'])}, got {env_name!r}"
                )
            self.train_envs: tuple[str, ...] = (str(env_name),)
            self.test_envs: tuple[str, ...] = (str(env_name),)
        else:
            if env_name is not None:
                raise ArgumentError(
                    "env_name",
                    f"{benchmark} has its own {len(names[f'{benchmark}-train'])} training environments; "
                    f"env_name picks ML1's one environment, got {env_name!r}",
                )
            self.train_envs, self.test_envs = names[f"{benchmark}-train"], names[f"{benchmark}-test"]
        if isinstance(benchmark_seed, bool) or not isinstance(benchmark_seed, int) or not 0 <= benchmark_seed < 2**31:
            raise ArgumentError("benchmark_seed", f"expected an integer in [0, 2**31), got {benchmark_seed!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_PATH_LENGTH:
            raise ArgumentError("horizon", f"expected an integer in [1, {MAX_PATH_LENGTH}], got {horizon!r}")
        self.benchmark, self.env_name, self.benchmark_seed, self._horizon = benchmark, env_name, benchmark_seed, horizon
        self.env_names = tuple(dict.fromkeys(self.train_envs + self.test_envs))
        self.name = f"MetaWorld-{benchmark}" + (f"[{env_name}]" if env_name else "")
        self._tables: dict[str, tuple[MetaWorldTask, ...]] | None = None
        self._splits: dict[MetaWorldTask, str] = {}

    def __repr__(self) -> str:
        return (
            f"MetaWorldFamily(benchmark={self.benchmark!r}, env_name={self.env_name!r}, "
            f"benchmark_seed={self.benchmark_seed}, horizon={self._horizon})"
        )

    def tables(self) -> dict[str, tuple[MetaWorldTask, ...]]:
        """Every split's tasks (built by Meta-World on first use, a few seconds per 100 tasks)."""
        if self._tables is None:
            self._tables = benchmark_tasks(self.benchmark, self.env_name, self.benchmark_seed)
            self._splits = {task: split for split, tasks in self._tables.items() for task in tasks}
        return self._tables

    @property
    def params(self) -> tuple[Param, ...]:
        default = self.default_task
        return (
            Param("env_name", "str", "Meta-World environment", choices=self.env_names, default=default.env_name),
            Param(
                "rand_vec",
                "vector",
                "Meta-World's variation: object and/or goal positions, m",
                default=default.rand_vec,
            ),
        )

    @property
    def default_task(self) -> MetaWorldTask:
        return self.tables()["train"][0]

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def reward_bounds(self) -> tuple[float, float]:
        return (0.0, 10.0)  # Meta-World's v2 rewards

    def oracle_policy(self) -> Policy:
        return ScriptedPolicy(self)

    def task_set(self, split: str) -> tuple[MetaWorldTask, ...]:
        self.check_split(split)
        return self.tables()[split]

    def split_of(self, task: MetaWorldTask) -> str:
        self.validate(task)
        return self._splits[task]

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[MetaWorldTask]:
        tasks = self.tables()[split]
        return [tasks[int(i)] for i in rng.integers(len(tasks), size=n)]

    def to_arrays(self, tasks: Sequence[MetaWorldTask]) -> dict[str, np.ndarray]:
        rand_vecs = np.empty(len(tasks), dtype=object)  # ML10/ML45 variations differ in length
        for j, task in enumerate(tasks):
            rand_vecs[j] = task.rand_vec
        return {"env_name": np.array([t.env_name for t in tasks]), "rand_vec": rand_vecs}

    def _check(self, task: MetaWorldTask, argument: str) -> None:
        if task.env_name not in self.env_names:
            raise ArgumentError(
                f"{argument}.env_name", f"expected one of {list(self.env_names)}, got {task.env_name!r}"
            )
        self.tables()
        if task not in self._splits:
            raise ArgumentError(
                argument,
                f"not one of {self.name}'s tasks (Meta-World's {self.benchmark} with benchmark_seed "
                f"{self.benchmark_seed}); take tasks from family.sample(...) or family.task_set(split)",
            )


class MetaWorldDynamics(BatchedDynamics[MetaWorldTask]):
    """Meta-World's env for the current task's environment (one per environment name, made on
    first use), with the task installed by Meta-World's ``set_task`` (N is always 1).

    Args:
        family: The family.
        size: Rendered frames' width and height, pixels.
        camera: Meta-World's camera for rendered frames.
    """

    def __init__(self, family: MetaWorldFamily, size: int = 256, camera: str = "corner2") -> None:
        super().__init__(family, 1)
        self._metaworld = _import_metaworld()
        self.size, self.camera = size, camera
        self._envs: dict[str, Any] = {}
        self.task = family.default_task
        self.env = self._install(self.task)
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.success = np.zeros(1, dtype=bool)
        self._obs: np.ndarray = np.zeros(self.env.observation_space.shape, dtype=np.float64)

    def _install(self, task: MetaWorldTask) -> Any:
        env = self._envs.get(task.env_name)
        if env is None:
            cls = self._metaworld.env_dict.ALL_V3_ENVIRONMENTS[task.env_name]
            env = cls(render_mode="rgb_array", camera_name=self.camera, width=self.size, height=self.size)
            self._envs[task.env_name] = env
        data = {"rand_vec": np.array(task.rand_vec), "env_cls": type(env), "partially_observable": True}
        env.set_task(self._metaworld.Task(env_name=task.env_name, data=pickle.dumps(data)))
        return env

    def set_tasks(self, idx: np.ndarray, tasks: Sequence[MetaWorldTask]) -> None:
        self.task = tasks[0]
        self.env = self._install(self.task)

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        # Meta-World's reset is deterministic given the task: it draws nothing.
        self._obs, _ = self.env.reset()
        self.success = np.zeros(1, dtype=bool)

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        self._obs, reward, terminated, _, info = self.env.step(actions[0])
        self.success = np.array([bool(info["success"])])
        return np.array([float(reward)]), np.array([bool(terminated)])

    def observe(self) -> np.ndarray:
        return np.asarray(self._obs, dtype=np.float64)[None]

    def render_frame(self, i: int) -> np.ndarray:
        frame = np.asarray(render_frame(self.env))
        # Meta-World's corner cameras come out upside down through Gymnasium's renderer.
        return np.ascontiguousarray(frame[::-1]) if self.camera.startswith("corner") else frame

    def close(self) -> None:
        for env in self._envs.values():
            env.close()

    # Checkpoints (metagym.snapshot): the walk cannot see into Meta-World's env, so the current
    # one's attributes and MuJoCo state are saved explicitly, and restored after installing the
    # task and resetting (which gives every attribute its type).
    def snapshot_state(self) -> dict[str, Any]:
        return {"fields": object_fields(self), "sim": object_fields(self.env)}

    def restore_snapshot_state(self, state: Any, where: str) -> None:
        if not isinstance(state, dict) or set(state) != {"fields", "sim"}:
            raise ArgumentError(where, "expected a saved Meta-World env (fields and sim)")
        saved_task = state["fields"].get("task") if isinstance(state["fields"], dict) else None
        if not isinstance(saved_task, dict) or not isinstance(saved_task.get("task"), str):
            raise ArgumentError(f"{where}.task", "expected a saved task")
        task = self.family.validate(MetaWorldTask.from_json(saved_task["task"]), f"{where}.task")
        self.set_tasks(np.zeros(1, dtype=np.int64), [task])
        self.env.reset()
        restore_fields(self, state["fields"], where, self.family)
        sim = state["sim"]
        if not isinstance(sim, dict):
            raise ArgumentError(f"{where}.sim", "expected a saved Meta-World env")
        for name, saved in sim.items():  # caches Meta-World fills on the first step (None until then)
            current = vars(self.env).get(name)
            if hasattr(saved, "numpy") and not isinstance(saved, np.ndarray):  # a tensor from torch.load
                saved = saved.numpy()
            if name in vars(self.env) and (current is None) != (saved is None):
                if saved is None or isinstance(saved, np.ndarray):
                    setattr(self.env, name, None if saved is None else saved.copy())
        restore_fields(self.env, sim, f"{where}.sim")


class ScriptedPolicy(Policy):
    """Task oracle: Meta-World's own scripted policy for the task's environment, shown the goal
    the observation hides (read from a private copy of the env with the task installed)."""

    name = "oracle"

    def __init__(self, family: MetaWorldFamily) -> None:
        self.family = family
        self._sim: MetaWorldDynamics | None = None
        self.policy: Any = None
        self.goal = np.zeros(3)

    def reset_trial(self, task: Any, rng: np.random.Generator) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        if self._sim is None:
            self._sim = MetaWorldDynamics(self.family)
        self._sim.set_tasks(np.zeros(1, dtype=np.int64), [task])
        self._sim.reset_envs(np.zeros(1, dtype=np.int64), Streams(1))
        self.goal = np.array(self._sim.env._get_pos_goal(), dtype=np.float64)
        scripted: Any = ENV_POLICY_MAP[task.env_name]
        self.policy = scripted()

    def act(self, obs: Any) -> np.ndarray:
        full = np.array(obs, dtype=np.float64)
        full[36:39] = self.goal
        with warnings.catch_warnings():  # Meta-World's gains exceed [-1, 1] by design; clipped here as the env would
            warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
            action = self.policy.get_action(full)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


class MetaWorldEnv(FamilyEnv[MetaWorldTask]):
    """## Description

    A Meta-World benchmark as a metagym family: Meta-World's Sawyer arm env for the task's
    environment, with the task's variation installed by Meta-World's ``set_task``, the goal
    hidden from the observation (Meta-World's ML setting). ``info["success"]`` each step.

    ## Action Space

    Box(-1, 1, (4,)): end-effector displacement (3) and gripper effort (Meta-World's).

    ## Observation Space

    Box(39,) float64: hand, gripper and object poses now and one step ago; the goal slots
    (the last 3) are zero.

    ## Rewards

    Meta-World's v2 reward, in [0, 10].

    ## Starting State

    Meta-World's reset for the task (deterministic).

    ## Episode End

    Truncated after ``horizon`` steps (Meta-World's 500 by default); never terminated.

    ## Task Distribution

    Meta-World's own variations: ``benchmark_seed`` builds the benchmark's 50 variations per
    environment, as ``metaworld.ML1(name, seed=...)`` / ``ML10`` / ``ML45`` do.

    ## Splits

    ``train`` and ``test``: the benchmark's train and test tasks; ``validation``: the last 5 of
    each train environment's 50 train tasks (not in ``train``).

    ## Arguments

    ``benchmark`` (``"ML1"``, ``"ML10"``, ``"ML45"``), ``env_name`` (ML1), ``benchmark_seed``
    (default 0), ``horizon`` (default 500), ``render_mode``.

    ## Version History

    * v0: first release (Meta-World 3.1.1, MuJoCo 3.3.0).

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaWorld-ML1-Reach-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['env_name', 'rand_vec']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> sorted(info)
    ['success']
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 40}

    def __init__(
        self,
        benchmark: str = "ML1",
        env_name: str | None = None,
        benchmark_seed: int = 0,
        horizon: int = MAX_PATH_LENGTH,
        render_mode: str | None = None,
        family: MetaWorldFamily | None = None,
    ) -> None:
        if family is None:
            family = MetaWorldFamily(benchmark, env_name, benchmark_seed, horizon)
        elif not isinstance(family, MetaWorldFamily):
            raise ArgumentTypeError("family", f"expected a MetaWorldFamily, got {type(family).__name__}")
        super().__init__(render_mode, MetaWorldDynamics(family))
        self._next_task: MetaWorldTask | None = None

    @property
    def next_task(self) -> MetaWorldTask | None:
        """A task the next reset installs, once, where its options name none (how a vector env
        hands each sub-env its own task: ``reset(options={"task": [task, ...]})``)."""
        return self._next_task

    @next_task.setter
    def next_task(self, value: MetaWorldTask | None) -> None:
        self._next_task = None if value is None else self.family.validate(value, "next_task")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        task, self._next_task = self._next_task, None
        if task is not None and not (options or {}).get("task") and not (options or {}).get("keep_task"):
            options = {**(options or {}), "task": task}
        return super().reset(seed=seed, options=options)

    @property
    def snapshot(self) -> dict[str, Any]:
        """This env's state as plain data (:func:`metagym.snapshot.env_state`); setting it
        restores one (how a checkpoint reaches envs in worker processes)."""
        return env_state(self)

    @snapshot.setter
    def snapshot(self, state: dict[str, Any]) -> None:
        restore_env_state(self, state, "envs")

    def close(self) -> None:
        super().close()
        dynamics = self._dyn
        assert isinstance(dynamics, MetaWorldDynamics)
        dynamics.close()


class _TaskVector:
    """metagym's task methods on a Gymnasium vector env of family envs (per-env tasks)."""

    family: MetaWorldFamily
    num_envs: int
    metadata: dict[str, Any]

    @property
    def tasks(self) -> list[MetaWorldTask]:
        """Every sub-env's current task."""
        return list(self.get_attr("task"))  # type: ignore[attr-defined]

    def set_tasks(self, tasks: MetaWorldTask | Sequence[MetaWorldTask | None] | None) -> None:
        """Pin one task (broadcast) or one per sub-env, as metagym's own vector envs (later resets
        keep it; ``None`` unpins)."""
        self.set_attr("task", tasks_per_env(self.family, self.num_envs, tasks, "task", none="unpin"))  # type: ignore[attr-defined]

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Gymnasium's reset; ``options["task"]`` may also be a sequence of one task (or None: the
        sub-env's usual draw or pin) per sub-env, as metagym's own vector envs take it."""
        given = (options or {}).get("task")
        if given is None or isinstance(given, Task | Mapping):
            return super().reset(seed=seed, options=options)  # type: ignore[misc]
        assert options is not None
        tasks = tasks_per_env(self.family, self.num_envs, given, "options['task']", none="draw")
        mask = options.get("reset_mask")
        if mask is not None:  # sub-envs that do not reset keep their task and take none for later
            tasks = [t if bool(m) else None for t, m in zip(tasks, np.asarray(mask), strict=True)]
        self.set_attr("next_task", tasks)  # type: ignore[attr-defined]
        rest = {key: value for key, value in options.items() if key != "task"}
        return super().reset(seed=seed, options=rest)  # type: ignore[misc]

    def sample_tasks(self, n: int, split: str = "train", seed: int | None = None) -> list[MetaWorldTask]:
        """``n`` tasks of ``split`` drawn from a generator seeded with ``seed``."""
        return self.family.sample(np.random.default_rng(seed), n, split)

    def snapshot_state(self) -> dict[str, Any]:
        """Every sub-env's state (from its process, for a checkpoint)."""
        if self.metadata.get("autoreset_mode") == AutoresetMode.NEXT_STEP and isinstance(
            self, gym.vector.AsyncVectorEnv
        ):
            # Gymnasium keeps which sub-envs reset at the next step in its workers' locals.
            raise ArgumentError(
                "envs",
                "an AsyncVectorEnv with autoreset_mode NEXT_STEP cannot be saved; use SAME_STEP or DISABLED "
                "(as metagym's trainers do) or vectorization='sync'",
            )
        state: dict[str, Any] = {"envs": list(self.get_attr("snapshot"))}  # type: ignore[attr-defined]
        autoreset = getattr(self, "_autoreset_envs", None)
        if autoreset is not None:
            state["autoreset"] = autoreset.copy()
        return state

    def restore_snapshot_state(self, state: Any, where: str) -> None:
        """Restore :meth:`snapshot_state`'s output into every sub-env."""
        envs = state.get("envs") if isinstance(state, dict) else None
        if not isinstance(envs, list) or len(envs) != self.num_envs:
            raise ArgumentError(where, f"expected the saved state of {self.num_envs} Meta-World envs")
        self.set_attr("snapshot", envs)  # type: ignore[attr-defined]
        autoreset = getattr(self, "_autoreset_envs", None)
        if autoreset is not None:
            saved = state.get("autoreset")
            if not isinstance(saved, np.ndarray) or saved.shape != autoreset.shape or saved.dtype != autoreset.dtype:
                raise ArgumentError(f"{where}.autoreset", f"expected a bool array of shape {autoreset.shape}")
            np.copyto(autoreset, saved)


class MetaWorldVectorEnv(_TaskVector, gym.vector.AsyncVectorEnv):
    """Gymnasium's AsyncVectorEnv of :class:`MetaWorldEnv` (one process per sub-env)."""


class MetaWorldSyncVectorEnv(_TaskVector, gym.vector.SyncVectorEnv):
    """Gymnasium's SyncVectorEnv of :class:`MetaWorldEnv` (every sub-env in this process)."""


def make_vector(
    num_envs: int = 1,
    benchmark: str = "ML1",
    env_name: str | None = None,
    benchmark_seed: int = 0,
    horizon: int = MAX_PATH_LENGTH,
    render_mode: str | None = None,
    autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    max_episode_steps: int | None = None,
    vectorization: str = "auto",
) -> MetaWorldVectorEnv | MetaWorldSyncVectorEnv:
    """Vector entry point of the Meta-World ids: ``num_envs`` :class:`MetaWorldEnv` in
    Gymnasium's AsyncVectorEnv (``vectorization="async"``: one process per sub-env) or
    SyncVectorEnv (``"sync"``); ``"auto"`` (default) is async up to :data:`ASYNC_PER_CPU` sub-envs
    per CPU and sync beyond (RL²'s default 256 envs would start 256 processes). Both step alike,
    bit for bit. The family's tasks are built once here and handed to every sub-env."""
    if vectorization not in ("auto", "async", "sync"):
        raise ArgumentError("vectorization", f"expected 'auto', 'async' or 'sync', got {vectorization!r}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ArgumentError("num_envs", f"expected an integer >= 1, got {num_envs!r}")
    if max_episode_steps is not None and (
        isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
    ):
        raise ArgumentError("max_episode_steps", f"expected None or an integer >= 1, got {max_episode_steps!r}")
    family = MetaWorldFamily(benchmark, env_name, benchmark_seed, horizon)
    family.tables()
    fn: Callable[[], gym.Env[Any, Any]] = functools.partial(_make_one, family, render_mode, max_episode_steps)
    if vectorization == "auto":
        vectorization = "async" if num_envs <= ASYNC_PER_CPU * (os.cpu_count() or 1) else "sync"
    cls = MetaWorldVectorEnv if vectorization == "async" else MetaWorldSyncVectorEnv
    envs = cls([fn] * num_envs, autoreset_mode=autoreset_mode)
    envs.family = family
    return envs


def _make_one(family: MetaWorldFamily, render_mode: str | None, max_episode_steps: int | None) -> gym.Env[Any, Any]:
    env: gym.Env[Any, Any] = MetaWorldEnv(family=family, render_mode=render_mode)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env
