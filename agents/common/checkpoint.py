"""Checkpoints that load without running code, written atomically.

A checkpoint holds only what ``torch.load(weights_only=True)`` accepts: tensors, plain containers,
numbers and strings. numpy arrays are stored as tensors and come back as arrays; env and random
states are plain data (see :mod:`metagym.snapshot`), never pickled objects. A crafted or foreign
file gets a one-line ValueError naming it, and no code of it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from metagym.atomic import replaced_atomically
from metagym.errors import ArgumentError, ArgumentTypeError, error_line


def to_storable(obj: Any) -> Any:
    """``obj`` with numpy arrays as tensors and numpy scalars as Python numbers (for weights_only)."""
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {key: to_storable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_storable(value) for value in obj]
    return obj


def check_loadable(obj: Mapping[str, Any], who: str) -> None:
    """An ArgumentTypeError of the ``agent`` naming ``who`` and the entry at fault if ``obj`` could not be saved, or not
    loaded back as :func:`load` loads a checkpoint (an object ``weights_only`` refuses: a user's
    class, a numpy Generator).

    The trainer asks this after a run's first update, so that such a state stops the run at once
    instead of after training, when resuming or evaluating it would fail.
    """
    why = _round_trip(obj)
    if why is None:
        return
    where = "its state"
    for key, value in obj.items():  # name the entry at fault where one alone is
        reason = _round_trip(value)
        if reason is not None:
            where, why = f"its {key!r} entry", reason
            break
    raise ArgumentTypeError(
        "agent",
        f"{who}: {where} could not be loaded back from a checkpoint ({why}); "
        "a state holds only tensors, numpy arrays, numbers, strings, and lists and dicts of them",
    )


def _round_trip(obj: Any) -> str | None:
    """Why ``obj`` cannot be saved and read back with ``weights_only=True``, or None if it can."""
    import io
    import re

    import torch

    buffer = io.BytesIO()
    try:
        torch.save(to_storable(obj), buffer)
        torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle refuses a lambda; weights_only refuses any object
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(error))
        return f"it holds a {found.group(1)} object" if found else error_line(error)
    return None


def save_atomic(obj: Any, path: str | Path) -> None:
    """Save ``obj`` to ``path`` so that a reader sees the old file or the new one, whole.

    The checkpoint is serialised in memory first and then written as plain bytes, so a full
    disk is an ``OSError`` (ENOSPC) naming ``path``, not torch's ``RuntimeError`` from inside
    its zip writer; the old checkpoint stays as it was.
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(to_storable(obj), buffer)
    with replaced_atomically(path, binary=True) as handle:
        handle.write(buffer.getbuffer())


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, or a ValueError naming the file if it is missing, corrupt or unsafe.

    The file is read with ``weights_only=True``: a pickled object (a crafted file, or a checkpoint
    of metagym 0.1, which pickled the env) is refused before any of its code can run.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ArgumentError("checkpoint", f"no file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged or unsafe file
        text = str(error)
        if "GLOBAL" in text or "Unsupported global" in text:
            reason = "it holds pickled objects, which metagym never loads: only tensors, numbers and strings"
        elif "Weights only load failed" in text:
            reason = "damaged, or not a torch file"
        else:
            reason = error_line(error)
        raise ArgumentError("checkpoint", f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict) or "config" not in state:
        raise ArgumentError("checkpoint", f"{path} is not a metagym checkpoint (no config)")
    where = non_finite(state)
    if where is not None:  # the trainer never saves such a state (it stops at a diverged update)
        raise ArgumentError("checkpoint", f"{path}: {where} holds NaN or infinite values (the file is damaged)")
    counters = [(name, state[name]) for name in ("update", "iteration", "global_step") if name in state]
    for name, value in counters:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError("checkpoint", f"{path}: {name!r} has the wrong type ({type(value).__name__})")
        if not 0 <= value < 2**53:
            damaged = "not a count (0 to 2**53; the file is damaged)"
            raise ArgumentError("checkpoint", f"{path}: {name!r} is {value:,}, {damaged}")
    return state


def non_finite(value: Any, where: str = "") -> str | None:
    """Where in a checkpoint's state a floating-point tensor holds NaN or infinite values, or None."""
    import torch

    if isinstance(value, torch.Tensor):
        return where or "the state" if value.is_floating_point() and not torch.isfinite(value).all() else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, part in items:
        found = non_finite(part, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def field(state: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str | Path) -> Any:
    """``state[name]``, checked to be a ``kind``; a ValueError naming the file otherwise."""
    if name not in state:
        raise ArgumentError("checkpoint", f"{path} has no {name!r}")
    value = state[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise ArgumentError("checkpoint", f"{path}: {name!r} has the wrong type ({type(value).__name__})")
    return value


def to_array(value: Any, where: str, shape: tuple[int, ...] | None = None, dtype: Any = None) -> np.ndarray:
    """A saved tensor back as a numpy array, checked against ``shape`` and ``dtype`` when given."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise ArgumentError("checkpoint", f"{where} is not an array")
    array = value.numpy()
    if (shape is not None and array.shape != shape) or (dtype is not None and array.dtype != np.dtype(dtype)):
        raise ArgumentError(
            "checkpoint", f"{where} is {array.dtype}{list(array.shape)}, expected {np.dtype(dtype)}{list(shape or ())}"
        )
    return array


def load_weights(module: Any, weights: Any, path: str | Path) -> None:
    """``module.load_state_dict(weights)``, with a one-line error naming the file on a mismatch."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ArgumentError("checkpoint", f"{path}: weights do not fit the network ({detail})") from None


def checked_env_id(env_id: Any, path: str | Path) -> str:
    """The run's env id, if it names a registered Gymnasium id. Loading never imports: a
    ``module:Id`` passes only when ``module`` is imported already (``metagym --import module``)."""
    import sys

    import gymnasium as gym

    if not isinstance(env_id, str):
        raise ArgumentError("checkpoint", f"{path}: env id {env_id!r} is not a registered Gymnasium id")
    module, _, name = env_id.rpartition(":")
    if (module and module not in sys.modules) or name not in gym.registry:
        hint = f" (import the code that registers it first: metagym --import {module or 'MODULE'} ...)"
        raise ArgumentError("checkpoint", f"{path}: env id {env_id!r} is not a registered Gymnasium id{hint}")
    return env_id


def config_from(cls: Any, state: Mapping[str, Any], path: str | Path) -> Any:
    """The run's config (a dataclass ``cls``), checked field by field and validated."""
    import dataclasses

    raw = field(state, "config", dict, path)
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ArgumentError("checkpoint", f"{path}: config has unknown fields {', '.join(map(str, unknown))}")
    checked_env_id(raw.get("env_id"), path)
    try:
        return cls(**raw).validate()
    except (TypeError, ValueError) as error:
        raise ArgumentError("checkpoint", f"{path}: {error}") from None


def extended(config: Any, total_steps: int, done: Any, path: str | Path) -> Any:
    """``config`` with ``total_steps`` raised to continue a run that has trained ``done`` steps."""
    import dataclasses

    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or not isinstance(done, int):
        raise ArgumentError("steps", f"expected an integer, got {total_steps!r}")
    if total_steps <= done:
        raise ArgumentError(
            "steps",
            f"the run in {Path(path).parent} has trained {done:,} steps already; "
            f"ask for more than that to extend it, got {total_steps:,}",
        )
    return dataclasses.replace(config, total_steps=total_steps).validate()


def generator_from(text: str, where: str) -> np.random.Generator:
    """A numpy Generator from its bit generator's JSON state (as saved by the trainers)."""
    from metagym.snapshot import generator_from_json

    try:
        return generator_from_json(text)
    except ValueError as error:
        raise ArgumentError("checkpoint", f"{where} is not a random generator state ({error})") from None


def saved(value: Any) -> Any:
    """A stateful attribute as a checkpoint holds it (:attr:`Algorithm.stateful`): a torch module's
    or optimizer's ``state_dict()``, a torch generator's state tensor, a numpy generator's bit
    generator state as JSON, or any other object's own ``state_dict()``."""
    import json

    import torch

    if isinstance(value, torch.Generator):
        return value.get_state()
    if isinstance(value, np.random.Generator):
        return json.dumps(value.bit_generator.state)
    if callable(getattr(value, "state_dict", None)):
        return value.state_dict()
    raise ArgumentTypeError("stateful", f"a {type(value).__name__} is not saved by type; save it in state_dict")


def restored(current: Any, state: Mapping[str, Any], name: str, path: str | Path) -> Any:
    """``current`` (attribute ``name`` of a freshly built algorithm) with the checkpoint's
    ``state[name]`` written into it, by its type as :func:`saved` wrote it; a numpy generator is
    returned anew. An ArgumentError naming ``path`` and ``name`` where the entry does not fit."""
    import torch

    if isinstance(current, torch.Generator):
        try:
            current.set_state(field(state, name, torch.Tensor, path))
        except (RuntimeError, TypeError) as error:  # a state of another size, or not bytes
            raise ArgumentError("checkpoint", f"{path}: {name!r} is not a torch generator state ({error})") from None
        return current
    if isinstance(current, np.random.Generator):
        return generator_from(field(state, name, str, path), f"{path}: {name}")
    if isinstance(current, torch.nn.Module | torch.optim.Optimizer):
        load_weights(current, field(state, name, dict, path), path)
    else:  # an object that saves itself, e.g. a replay buffer: load_state_dict(state, path)
        current.load_state_dict(field(state, name, dict, path), path)
    return current


#: Seconds between checkpoints when a run does not say (a resumed run keeps its own interval).
CHECKPOINT_SECONDS = 120.0


def check_interval(seconds: Any, path: str | Path | None = None) -> float:
    """A checkpoint interval: a finite number of seconds >= 0 (0 saves after every update)."""
    import math

    where = f"checkpoint: {path}: checkpoint_seconds" if path is not None else "checkpoint_seconds"
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not (math.isfinite(seconds) and seconds >= 0)
    ):
        raise ArgumentError(where, f"expected a finite number >= 0, got {seconds!r}")
    return float(seconds)
