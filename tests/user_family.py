"""A family written the way a user writes one: outside metagym, registered with plain
``gymnasium.register`` when this module is imported (``metagym --import user_family``, or the
``user_family:GuessDigit-v0`` id form).

GuessDigit: the hidden task is a digit 0-9; each episode is one guess (reward 1 when right), and
a trial of 3 guesses rewards remembering which guesses failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.policies import Policy
from metagym.tasks import Param, Task, TaskFamily, ranked_split
from metagym.vector import FamilyVectorEnv

DIGITS = 10
SPLIT_OF = dict(zip(range(DIGITS), ranked_split([f"digit-{d}" for d in range(DIGITS)]), strict=True))


@dataclasses.dataclass(frozen=True)
class DigitTask(Task):
    digit: int = 0


class Oracle(Policy):
    name = "oracle"

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, DigitTask)
        self.digit = task.digit

    def act(self, obs: Any) -> int:
        return self.digit


class GuessDigitFamily(TaskFamily[DigitTask]):
    name = "GuessDigit"
    task_type = DigitTask
    params = (Param("digit", "int", "the digit to guess", 0, DIGITS - 1, 0),)
    default_task = DigitTask()
    horizon = 1
    episodes_per_trial = 3

    def oracle_policy(self) -> Policy:
        return Oracle()

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[DigitTask]:
        digits = [d for d, s in SPLIT_OF.items() if s == split]
        return [DigitTask(int(d)) for d in rng.choice(digits, size=n)]

    def split_of(self, task: DigitTask) -> str:
        return SPLIT_OF[self.validate(task).digit]

    def _check(self, task: DigitTask, argument: str) -> None:
        if not isinstance(task.digit, int) or not 0 <= task.digit < DIGITS:
            raise ValueError(f"{argument}.digit: expected an integer 0-9, got {task.digit!r}")


class GuessDigitDynamics(BatchedDynamics[DigitTask]):
    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(DIGITS)

    def __init__(self, num_envs: int) -> None:
        super().__init__(GuessDigitFamily(), num_envs)
        self.digits = np.zeros(num_envs, dtype=np.int64)

    def set_tasks(self, idx: np.ndarray, tasks: Sequence[DigitTask]) -> None:
        self.digits[idx] = [t.digit for t in tasks]

    def reset_envs(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        pass

    def step(
        self, actions: np.ndarray, active: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray]:
        return (actions == self.digits).astype(np.float64) * active, active.copy()

    def observe(self) -> np.ndarray:
        return np.zeros((self.num_envs, 1), dtype=np.float32)

    def render_frame(self, i: int) -> np.ndarray:
        return np.zeros((8, 8, 3), dtype=np.uint8)


class GuessDigitEnv(FamilyEnv[DigitTask]):
    dynamics_type = GuessDigitDynamics


class GuessDigitVectorEnv(FamilyVectorEnv[DigitTask]):
    dynamics_type = GuessDigitDynamics


if "GuessDigit-v0" not in gym.registry:
    gym.register(
        "GuessDigit-v0",
        entry_point=GuessDigitEnv,
        vector_entry_point=GuessDigitVectorEnv,
    )
