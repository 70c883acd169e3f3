"""Every metagym id, as data. ``import metagym`` registers them all; nothing heavy is imported.

Each family id also gets a trial id (``MetaGrid-v0`` -> ``MetaGrid-Trial-v0``), whose
``episodes_per_trial`` make kwarg sets K. Ids without ``max_episode_steps``: the family's
horizon (which depends on the level and task) ends episodes, in the single and the vector env.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.tasks import TaskFamily

_GRID = {
    "entry_point": "metagym.envs.metagrid:MetaGridEnv",
    "vector_entry_point": "metagym.envs.metagrid:MetaGridVectorEnv",
}

_BANDIT = {
    "entry_point": "metagym.envs.bandit:MetaBanditEnv",
    "vector_entry_point": "metagym.envs.bandit:MetaBanditVectorEnv",
}

_MDP = {
    "entry_point": "metagym.envs.tabular_mdp:MetaTabularMDPEnv",
    "vector_entry_point": "metagym.envs.tabular_mdp:MetaTabularMDPVectorEnv",
}

_NAV = {
    "entry_point": "metagym.envs.point_nav:PointNav2DEnv",
    "vector_entry_point": "metagym.envs.point_nav:PointNav2DVectorEnv",
}

# MuJoCo families: single envs (the vector form is Gymnasium's Sync/AsyncVectorEnv).
_LOCOMOTION = "metagym.envs.locomotion"

#: One row per family id: the id, its entry points and the make kwargs that set it apart.
FAMILY_ENVS: list[dict[str, Any]] = [
    {"id": "MetaGrid-v0", **_GRID, "kwargs": {"level": "procedural"}},
    {"id": "MetaGrid-GridNavi-v0", **_GRID, "kwargs": {"level": "gridnavi"}},
    # The out-of-support experiment: 4 of the 21 goal cells held out as test, 2 as validation.
    {"id": "MetaGrid-GridNavi-HeldOutGoals-v0", **_GRID, "kwargs": {"level": "gridnavi", "held_out_goals": True}},
    {"id": "MetaGrid-OpenRoom-v0", **_GRID, "kwargs": {"level": "open_room"}},
    {"id": "MetaGrid-FourRooms-v0", **_GRID, "kwargs": {"level": "four_rooms"}},
    {
        "id": "MetaMaze-v0",
        "entry_point": "metagym.envs.metamaze:MetaMazeEnv",
        "vector_entry_point": "metagym.envs.metamaze:MetaMazeVectorEnv",
        "kwargs": {},
    },
    {"id": "MetaBandit-v0", **_BANDIT, "kwargs": {"arms": 5, "prior": "uniform", "pulls_per_trial": 10}},
    {"id": "MetaBandit-Independent-v0", **_BANDIT, "kwargs": {"arms": 2, "pulls_per_trial": 100}},
    {"id": "MetaBandit-Dependent-v0", **_BANDIT, "kwargs": {"arms": 2, "prior": "dependent", "pulls_per_trial": 100}},
    {
        "id": "MetaBandit-DependentEasy-v0",
        **_BANDIT,
        "kwargs": {"arms": 2, "prior": "dependent_easy", "pulls_per_trial": 100},
    },
    {
        "id": "MetaBandit-DependentMedium-v0",
        **_BANDIT,
        "kwargs": {"arms": 2, "prior": "dependent_medium", "pulls_per_trial": 100},
    },
    {
        "id": "MetaBandit-DependentHard-v0",
        **_BANDIT,
        "kwargs": {"arms": 2, "prior": "dependent_hard", "pulls_per_trial": 100},
    },
    {"id": "MetaTabularMDP-v0", **_MDP, "kwargs": {"states": 10, "actions": 5, "episode_length": 10}},
    {"id": "PointNav2D-v0", **_NAV, "kwargs": {}},
    {
        "id": "MetaCartPole-v0",
        "entry_point": "metagym.envs.cartpole:MetaCartPoleEnv",
        "vector_entry_point": "metagym.envs.cartpole:MetaCartPoleVectorEnv",
        "kwargs": {},
    },
    {
        "id": "MetaPendulum-v0",
        "entry_point": "metagym.envs.pendulum:MetaPendulumEnv",
        "vector_entry_point": "metagym.envs.pendulum:MetaPendulumVectorEnv",
        "kwargs": {},
    },
    {
        "id": "MetaMountainCar-v0",
        "entry_point": "metagym.envs.mountain_car:MetaMountainCarEnv",
        "vector_entry_point": "metagym.envs.mountain_car:MetaMountainCarVectorEnv",
        "kwargs": {},
    },
    {
        "id": "MetaAcrobot-v0",
        "entry_point": "metagym.envs.acrobot:MetaAcrobotEnv",
        "vector_entry_point": "metagym.envs.acrobot:MetaAcrobotVectorEnv",
        "kwargs": {},
    },
    {"id": "HalfCheetahVel-v0", "entry_point": f"{_LOCOMOTION}:HalfCheetahVelEnv", "kwargs": {"max_velocity": 2.0}},
    {"id": "HalfCheetahDir-v0", "entry_point": f"{_LOCOMOTION}:HalfCheetahDirEnv", "kwargs": {}},
    {"id": "AntDir-v0", "entry_point": f"{_LOCOMOTION}:AntDirEnv", "kwargs": {}},
]

_METAWORLD = {
    "entry_point": "metagym.envs.meta_world:MetaWorldEnv",
    "vector_entry_point": "metagym.envs.meta_world:make_vector",
}


def metaworld_envs() -> list[dict[str, Any]]:
    """The Meta-World rows (the ``metaworld`` extra): ML10 and ML45 always (made without the
    extra, they say which extra to install), and one ML1 id per environment of the installed
    Meta-World's own list (read from its source, not imported)."""
    from metagym.meta_world_names import benchmark_names, ml1_id

    rows = [
        {"id": f"MetaWorld-{bench}-v0", **_METAWORLD, "kwargs": {"benchmark": bench, "env_name": None}}
        for bench in ("ML10", "ML45")
    ]
    for name in benchmark_names().get("ML1", ()):
        rows.append({"id": ml1_id(name), **_METAWORLD, "kwargs": {"benchmark": "ML1", "env_name": name}})
    return rows


def trial_id(env_id: str) -> str:
    """``"MetaGrid-GridNavi-v0"`` -> ``"MetaGrid-GridNavi-Trial-v0"``."""
    name, version = env_id.rsplit("-", 1)
    return f"{name}-Trial-{version}"


def env_ids(trials: bool = True, metaworld: bool = False) -> list[str]:
    """Every family id, and with ``trials`` every trial id too; with ``metaworld`` the
    Meta-World ids as well (:func:`metaworld_envs`: they need an extra, and each builds its
    benchmark's tasks with MuJoCo when made, so listings over every id leave them out unless asked)."""
    ids = [row["id"] for row in FAMILY_ENVS + (metaworld_envs() if metaworld else [])]
    return ids + [trial_id(i) for i in ids] if trials else ids


def register_envs() -> None:
    """Register every id with Gymnasium (ids already registered are left as they are)."""
    for row in FAMILY_ENVS + metaworld_envs():
        if row["id"] not in gym.registry:
            gym.register(**row)
        tid = trial_id(row["id"])
        if tid not in gym.registry:
            gym.register(
                id=tid,
                entry_point="metagym.wrappers:make_trial",
                vector_entry_point="metagym.wrappers:make_trial_vector",
                kwargs={"env_id": row["id"]},
            )


def register_family(env_id: str, dynamics: Callable[[int], Any], trial: bool = True, **register_kwargs: Any) -> None:
    """Register a family from its batched dynamics alone, as metagym's own are registered.

    Builds the single env class (``FamilyEnv``) and the batched vector env class
    (``FamilyVectorEnv``) around ``dynamics``, registers ``env_id`` with Gymnasium with both
    entry points and, with ``trial``, its trial id (``trial_id(env_id)``). The shortest route for a
    family author; plain ``gymnasium.register`` of your own env classes works as well.

    Args:
        env_id: The id, e.g. ``"GuessDigit-v0"``.
        dynamics: ``dynamics(num_envs)`` builds the family's ``BatchedDynamics`` (its class).
        trial: Also register the trial id.
        register_kwargs: Passed on to ``gymnasium.register`` (``kwargs``, ``max_episode_steps``, ...).
    """
    from metagym.batched import FamilyEnv
    from metagym.vector import FamilyVectorEnv

    if not isinstance(env_id, str) or "-v" not in env_id or ":" in env_id:
        raise ArgumentError("env_id", f"expected an id such as 'MyFamily-v0', got {env_id!r}")
    if not callable(dynamics):
        raise ArgumentTypeError(
            "dynamics", f"expected a BatchedDynamics class (called with num_envs), got {dynamics!r}"
        )
    name = "".join(ch for ch in env_id.rsplit("-", 1)[0] if ch.isalnum())
    body = {"dynamics_type": staticmethod(dynamics), "__module__": getattr(dynamics, "__module__", __name__)}
    single: Any = type(f"{name}Env", (FamilyEnv,), {**body, "__doc__": f"One env of {env_id} (register_family)."})
    vector: Any = type(f"{name}VectorEnv", (FamilyVectorEnv,), {**body, "__doc__": f"Batched {env_id} envs."})
    gym.register(env_id, entry_point=single, vector_entry_point=vector, **register_kwargs)
    if trial:
        gym.register(
            trial_id(env_id),
            entry_point="metagym.wrappers:make_trial",
            vector_entry_point="metagym.wrappers:make_trial_vector",
            kwargs={"env_id": env_id},
        )


def family_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registry entry of ``env_id``; ``"module:Id"`` imports ``module`` first, as
    ``gymnasium.make`` does (so ids registered by the user's own code work everywhere)."""
    module, _, name = env_id.rpartition(":")
    if module:
        import importlib

        importlib.import_module(module)
    return gym.spec(name)


def check_family_id(env_id: Any, argument: str = "env_id", env_kwargs: Any = None) -> str:
    """``env_id`` if it names a metagym family env (ours, or one registered by the user's own
    code with ``gymnasium.register``, also as ``"module:Id"``); else ValueError naming
    ``argument``. A trial id is refused: agents and evaluation build the trial form themselves.
    With ``env_kwargs`` (checked by :func:`check_env_kwargs`) the env is made with them, once: a
    kwarg the env refuses gives a ValueError naming ``env_kwargs``. An id that passed with the same
    kwargs and the same registry entry is not made again."""
    if not isinstance(env_id, str) or not env_id:
        raise ArgumentError(argument, f"expected a family id such as 'MetaGrid-v0', got {env_id!r}")
    try:
        spec = family_spec(env_id)
    except (ImportError, gym.error.Error) as error:
        raise ArgumentError(
            argument,
            f"{env_id!r} is not a registered Gymnasium id ({error}); metagym's "
            f"family ids: {', '.join(env_ids(trials=False))}",
        ) from None
    if spec.entry_point == "metagym.wrappers:make_trial":
        family = spec.kwargs.get("env_id")
        raise ArgumentError(
            argument,
            f"{env_id!r} is a trial id; pass its family id {family!r} "
            "(agents and evaluation make the trial form themselves)",
        )
    kwargs = check_env_kwargs(env_kwargs)
    key = (env_id, repr(sorted(kwargs.items())))
    if _CHECKED.get(key) is spec:  # made with these kwargs already, from this same registry entry
        return env_id
    try:
        env = gym.make(env_id, disable_env_checker=True, **kwargs)
    except (TypeError, ValueError) as error:
        if not kwargs:
            raise
        raise ArgumentError("env_kwargs", f"gymnasium.make({env_id!r}, **{kwargs!r}) failed: {error}") from None
    try:
        family_of(env)
    except TypeError:
        raise ArgumentError(
            argument,
            f"{env_id!r} is not a metagym family env (its unwrapped env has no "
            "TaskFamily .family; see docs/design.md, 'Bring your own family')",
        ) from None
    finally:
        env.close()
    _CHECKED[key] = spec
    return env_id


#: Ids (with their make kwargs) that :func:`check_family_id` made and found to be families, each
#: with the registry entry it made: a run's config is checked where it is built, validated and
#: trained, and an env is made once for all of them (an id registered again is made again).
_CHECKED: dict[tuple[str, str], gym.envs.registration.EnvSpec] = {}


#: Make kwargs a run's ``env_kwargs`` may not set: the trial wrapper, rendering and the vector
#: API set these themselves (``episodes_per_trial`` is the agent's own setting).
RESERVED_ENV_KWARGS = ("render_mode", "episodes_per_trial", "max_episode_steps", "num_envs", "autoreset_mode", "env_id")


def env_kwargs_of(config: Any) -> dict[str, Any]:
    """The make kwargs of a run (its config's ``env_kwargs``; {} for a config without them)."""
    return dict(getattr(config, "env_kwargs", None) or {})


def check_env_kwargs(env_kwargs: Any, argument: str = "env_kwargs") -> dict[str, Any]:
    """``env_kwargs`` as a dict of make kwargs (None is {}); else ValueError naming ``argument``.
    Whether the env takes them is checked where it is made (:func:`check_family_id`)."""
    if env_kwargs is None:
        return {}
    if not isinstance(env_kwargs, dict) or not all(isinstance(key, str) for key in env_kwargs):
        raise ArgumentError(argument, f"expected an object of make kwargs, e.g. {{'horizon': 100}}, got {env_kwargs!r}")
    for key in RESERVED_ENV_KWARGS:
        if key in env_kwargs:
            raise ArgumentError(argument, f"{key!r} is set by metagym itself (it sets {list(RESERVED_ENV_KWARGS)})")
    return dict(env_kwargs)


def family_of(env: gym.Env[Any, Any]) -> TaskFamily[Any]:
    """The task family of a metagym env (wrapped or not), or TypeError naming ``env``."""
    family = getattr(env.unwrapped, "family", None)
    if not isinstance(family, TaskFamily):
        raise ArgumentTypeError("env", f"expected a metagym family env (with .family), got {env.unwrapped!r}")
    return family


def families() -> dict[str, TaskFamily[Any]]:
    """Every family id with its task family (imports the family modules, not torch)."""
    return {env_id: family_of(gym.make(env_id, disable_env_checker=True)) for env_id in env_ids(trials=False)}
