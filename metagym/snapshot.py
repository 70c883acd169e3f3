"""An env's state as plain data (arrays, numbers, strings), and back: checkpoints without pickle.

A training checkpoint must hold the batched env in flight (positions, tasks, random streams,
step counters) to resume bit for bit, and must load without running code. :func:`env_state`
walks an env (vector env, wrappers, dynamics, Gymnasium and MuJoCo internals) and keeps what
can change: numpy arrays, random generators (as their JSON state), tasks (as task JSON), MuJoCo
data (as ``mj_getState``'s integration state), numbers and strings, in lists, string-keyed
dicts and nested objects. Configuration that the env's constructor rebuilds (spaces, families, specs, models,
renderers) is left out. :func:`restore_env_state` writes such a state into a freshly made env
of the same configuration, checking every name, type, shape and dtype on the way: a crafted or
foreign state gets a ValueError naming the field, never an arbitrary object.

Example:
    >>> import gymnasium as gym
    >>> import metagym
    >>> envs = gym.make_vec("MetaBandit-v0", num_envs=2)
    >>> _ = envs.reset(seed=0)
    >>> copy = gym.make_vec("MetaBandit-v0", num_envs=2)
    >>> restore_env_state(copy, env_state(envs))
    >>> bool((copy.step([0, 1])[1] == envs.step([0, 1])[1]).all())
    True
"""

from __future__ import annotations

import enum
import json
from typing import Any

import gymnasium as gym
import numpy as np

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.tasks import Task, TaskFamily

#: Attributes that hold configuration or resources the constructor rebuilds, never state.
SKIPPED = frozenset(
    {
        "spec",
        "metadata",
        "_metadata",
        "family",
        "layout_family",
        "model",
        "mujoco_renderer",
        "_renderer",
        "_window",
        "env_fns",
        "_saved_kwargs",
        "obs_slices",
        "_cached_spec",
        "_previous_data",  # PassiveEnvChecker's copy of the last step, for its warnings
    }
)
_SCALARS = (bool, int, float, str)
#: MjData fields computed by the last step that a reward may read before the next one recomputes
#: them (Gymnasium's Ant reads the torso's ``xpos`` before stepping); the rest of MjData is the
#: integration state (``mj_getState``) or recomputed by ``mj_step``.
MUJOCO_DERIVED = (
    "xpos", "xquat", "xmat", "xipos", "ximat", "geom_xpos", "geom_xmat", "site_xpos", "site_xmat",
    "subtree_com", "cvel", "cacc", "cfrc_int", "cfrc_ext", "sensordata",
)  # fmt: skip


def _walkable(value: Any) -> bool:
    """An object of metagym's or Gymnasium's own classes, whose attributes are walked."""
    module = type(value).__module__
    return hasattr(value, "__dict__") and module.startswith(("metagym", "gymnasium"))


def _is_mujoco_data(value: Any) -> bool:
    return type(value).__name__ == "MjData" and type(value).__module__.startswith("mujoco")


def _state(value: Any) -> Any:
    """The plain-data form of ``value``, or ``_SKIP`` where it holds no state."""
    if isinstance(value, np.generic):  # before the scalars: numpy's float64 is a Python float too
        return value.item()
    if value is None or (isinstance(value, _SCALARS) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype != object:
            return value.copy()
        items = value.ravel().tolist()  # a batched env's string task fields
        return {"objects": items} if all(i is None or isinstance(i, _SCALARS) for i in items) else _SKIP
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        entries = {k: _state(v) for k, v in value.items()}
        return _SKIP if any(e is _SKIP for e in entries.values()) else {"dict": entries}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return {"generator": json.dumps(value.bit_generator.state)}
    if isinstance(value, Task):
        return {"task": value.to_json()}
    if isinstance(value, (list, tuple)):
        items = [_state(v) for v in value]
        return _SKIP if any(i is _SKIP for i in items) else items
    if _is_mujoco_data(value):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        out = np.empty(mujoco.mj_stateSize(value.model, spec))
        mujoco.mj_getState(value.model, value, out, spec)
        return {"mujoco": {"integration": out, **{name: getattr(value, name).copy() for name in MUJOCO_DERIVED}}}
    if isinstance(value, (gym.Space, TaskFamily, type, enum.Enum)) or callable(value) or not _walkable(value):
        return _SKIP
    return {"object": _object_state(value)}


_SKIP = object()


def _object_state(obj: Any) -> dict[str, Any]:
    hook = getattr(type(obj), "snapshot_state", None)
    if callable(hook):  # an object whose state lives elsewhere (worker processes, a foreign simulator)
        return hook(obj)
    return object_fields(obj)


def object_fields(obj: Any) -> dict[str, Any]:
    """:func:`env_state`'s walk of ``obj``'s own attributes (any object, e.g. a foreign
    simulator whose attributes are arrays, numbers and MuJoCo data), ignoring its hooks.

    An object whose state the walk cannot see defines ``snapshot_state()`` (returning plain data
    as this function does) and ``restore_snapshot_state(state, where)``; both walks call them."""
    out = {}
    for name, value in vars(obj).items():
        if name in SKIPPED:
            continue
        state = _state(value)
        if state is not _SKIP:
            out[name] = state
    return out


def env_state(env: Any) -> dict[str, Any]:
    """Everything about ``env`` that stepping can change, as arrays, numbers, strings, lists and dicts."""
    if not _walkable(env):
        raise ArgumentTypeError("env", f"expected a metagym or Gymnasium env, got {type(env).__name__}")
    return _object_state(env)


def restore_env_state(env: Any, state: dict[str, Any], where: str = "envs") -> None:
    """Write ``state`` (from :func:`env_state` of an env made alike) into ``env``, in place.

    Raises:
        ValueError: naming the field (``where.attr[i]...``) whose name, type, shape or dtype
            does not match ``env``, or whose task is not a task of the env's family.
    """
    if not isinstance(state, dict):
        raise ArgumentError(where, f"expected a dict of env state, got {type(state).__name__}")
    _restore_object(env, state, where, None)


def _restore_object(obj: Any, state: dict[str, Any], where: str, family: TaskFamily[Any] | None) -> None:
    hook = getattr(type(obj), "restore_snapshot_state", None)
    if callable(hook):
        hook(obj, state, where)
        return
    restore_fields(obj, state, where, family)


def restore_fields(obj: Any, state: dict[str, Any], where: str, family: TaskFamily[Any] | None = None) -> None:
    """Write :func:`object_fields`' ``state`` into ``obj``'s attributes, checking each as
    :func:`restore_env_state` does (ignoring ``obj``'s hooks)."""
    own = vars(obj)
    if isinstance(own.get("family"), TaskFamily):
        family = own["family"]
    for name, saved in state.items():
        if not isinstance(name, str) or name in SKIPPED or name not in own:
            raise ArgumentError(where, f"unknown field {name!r} for {type(obj).__name__}")
        current = own[name]
        restored = _restore(current, saved, f"{where}.{name}", family)
        if restored is not current:
            setattr(obj, name, restored)


def _restore(current: Any, saved: Any, where: str, family: TaskFamily[Any] | None) -> Any:
    """``current`` updated in place from ``saved``, or the new value to assign."""
    if hasattr(saved, "numpy") and not isinstance(saved, np.ndarray):  # a tensor from torch.load
        saved = saved.numpy()
    if isinstance(current, np.ndarray) and current.dtype == object:
        items = _tagged(saved, "objects", where)
        if not isinstance(items, list) or len(items) != current.size:
            raise ArgumentError(where, f"expected a list of {current.size} values")
        for i, item in enumerate(items):
            if not (item is None or isinstance(item, _SCALARS)):
                raise ArgumentError(f"{where}[{i}]", f"expected a number, string or None, got {type(item).__name__}")
        restored = np.empty(current.shape, dtype=object)
        restored.ravel()[:] = items
        return restored
    if isinstance(current, dict):
        entries = _tagged(saved, "dict", where)
        if not isinstance(entries, dict) or set(entries) != set(current):
            raise ArgumentError(where, f"expected the keys {sorted(current)}")
        for key, value in entries.items():
            current[key] = _restore(current[key], value, f"{where}[{key!r}]", family)
        return current
    if isinstance(current, np.ndarray):
        if not isinstance(saved, np.ndarray) or saved.shape != current.shape or saved.dtype != current.dtype:
            got = f"{saved.dtype}{list(saved.shape)}" if isinstance(saved, np.ndarray) else type(saved).__name__
            raise ArgumentError(where, f"expected an array {current.dtype}{list(current.shape)}, got {got}")
        if current.flags.writeable:
            np.copyto(current, saved)  # in place: views of this array (padded grids) follow
            return current
        return saved.copy()
    if isinstance(current, np.random.Generator) or (current is None and _has_tag(saved, "generator")):
        return _restore_generator(current, _tagged(saved, "generator", where), where)
    if isinstance(current, Task) or (current is None and isinstance(saved, dict)):
        return _restore_task(current, saved, where, family)
    if _is_mujoco_data(current):
        return _restore_mujoco(current, _tagged(saved, "mujoco", where), where)
    if isinstance(current, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(current):
            raise ArgumentError(where, f"expected a list of {len(current)} items")
        items = [_restore(c, s, f"{where}[{i}]", family) for i, (c, s) in enumerate(zip(current, saved, strict=True))]
        return type(current)(items)
    if current is None or isinstance(current, (*_SCALARS, np.generic)):
        return _restore_scalar(current, saved, where)
    if _walkable(current):
        _restore_object(current, _tagged(saved, "object", where), where, family)
        return current
    raise ArgumentError(where, f"{type(current).__name__} holds no restorable state")


def _has_tag(saved: Any, tag: str) -> bool:
    return isinstance(saved, dict) and set(saved) == {tag}


def _tagged(saved: Any, tag: str, where: str) -> Any:
    if not isinstance(saved, dict) or set(saved) != {tag}:
        raise ArgumentError(where, f"expected a saved {tag}")
    return saved[tag]


def _restore_scalar(current: Any, saved: Any, where: str) -> Any:
    if current is None and saved is None:
        return None
    if isinstance(current, np.generic):
        expected: type = type(current.item())
        if type(saved) is not expected:
            raise ArgumentError(where, f"expected {expected.__name__}, got {type(saved).__name__}")
        return type(current)(saved)
    if saved is None or type(saved) is not type(current):
        if not (type(current) is float and type(saved) is int):
            raise ArgumentError(where, f"expected {type(current).__name__}, got {type(saved).__name__}")
    return type(current)(saved) if current is not None else saved


#: numpy's bit generators a saved generator may name (a fresh env may not have made its own yet).
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def generator_from_json(text: Any, current: np.random.Generator | None = None) -> np.random.Generator:
    """A Generator set to the bit generator state ``text`` (JSON): ``current`` updated in place,
    or a new one of a bit generator named in :data:`BIT_GENERATORS`. ValueError says why not."""
    try:
        state = json.loads(text)
        name = state["bit_generator"]
        if current is None:
            if name not in BIT_GENERATORS:
                raise ValueError(f"unknown bit generator {name!r}")
            current = np.random.Generator(getattr(np.random, name)())
        elif name != current.bit_generator.state["bit_generator"]:
            raise ValueError(f"bit generator {name!r}")
        current.bit_generator.state = state
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(str(error)) from None
    return current


def _restore_generator(current: np.random.Generator | None, text: Any, where: str) -> np.random.Generator:
    try:
        return generator_from_json(text, current)
    except ValueError as error:
        raise ArgumentError(where, f"not a saved random generator state ({error})") from None


def _restore_task(current: Any, saved: Any, where: str, family: TaskFamily[Any] | None) -> Any:
    if saved is None:
        return None
    kind = type(current) if isinstance(current, Task) else type(family.default_task) if family else None
    if kind is None:
        raise ArgumentError(where, "a task where the env has no family")
    text = _tagged(saved, "task", where)
    try:
        task = kind.from_json(text)
        return family.validate(task, where) if family is not None else task
    except (TypeError, ValueError) as error:
        raise ArgumentError(where, f"{error}") from None


def _restore_mujoco(current: Any, saved: Any, where: str) -> Any:
    import mujoco

    if not isinstance(saved, dict) or set(saved) != {"integration", *MUJOCO_DERIVED}:
        raise ArgumentError(where, f"expected MuJoCo state with fields integration, {', '.join(MUJOCO_DERIVED)}")
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    integration = _restore(np.empty(mujoco.mj_stateSize(current.model, spec)), saved["integration"], where, None)
    mujoco.mj_setState(current.model, current, integration, spec)
    for name in MUJOCO_DERIVED:
        _restore(getattr(current, name), saved[name], f"{where}.{name}", None)
    return current
