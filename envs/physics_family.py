"""Families of physical parameters around a default: interleaved train/test, ood outside.

Each parameter has Gymnasium's value as default, a training range (default x [0.5, 1.5]) and a
wider ood range (default x [0.25, 2.5]). ``train``, ``validation`` and ``test`` interleave on a
10-per-axis grid of the training box (by a stable hash of the cell: 70/10/20%); ``ood`` tasks lie in the
ood box with at least one parameter outside the training range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    TaskFamily,
    Uniforms,
    draw_in_split,
    hash_splits,
    split_code,
)

TRAIN_SCALE = (0.5, 1.5)
OOD_SCALE = (0.25, 2.5)
SPLIT_BINS = 10

P = TypeVar("P", bound=Task)


@dataclasses.dataclass(frozen=True)
class Physical:
    """One physical parameter: its default (Gymnasium's), meaning and unit."""

    name: str
    default: float
    doc: str

    @property
    def train(self) -> tuple[float, float]:
        return (self.default * TRAIN_SCALE[0], self.default * TRAIN_SCALE[1])

    @property
    def ood(self) -> tuple[float, float]:
        return (self.default * OOD_SCALE[0], self.default * OOD_SCALE[1])


class PhysicsFamily(TaskFamily[P]):
    """Tasks of float fields, one per :class:`Physical`, sampled in boxes around the defaults.

    Args:
        name: Display name.
        task_type: The frozen dataclass whose fields are the parameters, in order.
        physicals: One entry per field.
        horizon: Steps per episode.
        oracle: Makes the family's task oracle.
    """

    def __init__(
        self,
        name: str,
        task_type: type[P],
        physicals: tuple[Physical, ...],
        horizon: int,
        oracle: Callable[[], Policy],
        reward_bounds: tuple[float, float],
    ) -> None:
        fields = [f.name for f in dataclasses.fields(task_type)]
        if fields != [p.name for p in physicals]:
            raise ArgumentError("physicals", f"expected one per field of {task_type.__name__} in order, {fields}")
        self.name, self.task_type, self.physicals = name, task_type, physicals
        self._make: type[P] = task_type
        self._horizon, self._oracle, self._reward_bounds = horizon, oracle, reward_bounds
        self._train_low = np.array([p.train[0] for p in physicals])
        self._train_high = np.array([p.train[1] for p in physicals])
        self._ood_low = np.array([p.ood[0] for p in physicals])
        self._ood_high = np.array([p.ood[1] for p in physicals])

    def __repr__(self) -> str:
        return f"PhysicsFamily({self.name!r})"

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(
            Param(p.name, "float", f"{p.doc}; train/test in [{p.train[0]:g}, {p.train[1]:g}]", *p.ood, p.default)
            for p in self.physicals
        )

    @property
    def default_task(self) -> P:
        return self._make(*(p.default for p in self.physicals))

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def reward_bounds(self) -> tuple[float, float]:
        return self._reward_bounds

    def oracle_policy(self) -> Policy:
        return self._oracle()

    def values(self, task: P) -> np.ndarray:
        """The task's parameters as an array, in field order."""
        return np.array([getattr(task, p.name) for p in self.physicals], dtype=np.float64)

    def _codes(self, values: np.ndarray) -> np.ndarray:
        """Split codes of parameter rows (k, P): ``ood`` (-1) outside the training box, else
        the hash of the row's cell on the 10-per-axis grid of the box."""
        outside = ((values < self._train_low) | (values > self._train_high)).any(axis=1)
        frac = (values - self._train_low) / (self._train_high - self._train_low)
        cells = np.clip((frac * SPLIT_BINS).astype(np.int64), 0, SPLIT_BINS - 1)
        return np.where(outside, -1, hash_splits(self.name, cells)).astype(np.int8)

    def split_of(self, task: P) -> str:
        self.validate(task)
        code = int(self._codes(self.values(task)[None])[0])
        return "ood" if code < 0 else SPLIT_CODES[code]

    def draw_from(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        low, high = (self._ood_low, self._ood_high) if split == "ood" else (self._train_low, self._train_high)
        code = -1 if split == "ood" else split_code(split)
        rows = draw_in_split(uniforms, len(low), lambda u: low + (high - low) * u, self._codes, code, n)
        return {p.name: rows[:, j] for j, p in enumerate(self.physicals)}

    def _check(self, task: P, argument: str) -> None:
        for p in self.physicals:
            value: Any = getattr(task, p.name)
            if isinstance(value, bool) or not isinstance(value, float | int) or not np.isfinite(value):
                raise ArgumentError(f"{argument}.{p.name}", f"expected a finite number, got {value!r}")
            if not p.ood[0] <= value <= p.ood[1]:
                raise ArgumentError(
                    f"{argument}.{p.name}", f"expected a value in [{p.ood[0]:g}, {p.ood[1]:g}], got {value}"
                )


def param_matrix(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """A batch of tasks as arrays (:meth:`PhysicsFamily.to_arrays`) as an (n, P) float matrix,
    one column per parameter in field order."""
    return np.stack([np.asarray(column, dtype=np.float64) for column in arrays.values()], axis=1)


class GymnasiumRenderer:
    """Draws frames with a Gymnasium classic-control env's own ``render()``.

    The env is made once, lazily, in ``rgb_array`` mode; :meth:`frame` sets the attributes that
    its drawing reads (state, lengths) and returns its frame, so metagym's variants look
    exactly like Gymnasium's.

    Args:
        make: Builds the Gymnasium env (called with ``render_mode="rgb_array"``).
    """

    def __init__(self, make: Callable[..., Any]) -> None:
        self._make = make
        self._env: Any = None

    def frame(self, **attributes: Any) -> np.ndarray:
        if self._env is None:
            self._env = self._make(render_mode="rgb_array")
        for key, value in attributes.items():
            setattr(self._env, key, value)
        return np.asarray(self._env.render())

    def __getstate__(self) -> dict[str, Any]:
        return {"_make": self._make, "_env": None}
