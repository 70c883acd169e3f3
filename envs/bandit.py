"""MetaBandit: Bernoulli multi-armed bandits (Duan et al. 2016; Wang et al. 2016)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from metagym.batched import BatchedDynamics, FamilyEnv
from metagym.errors import ArgumentError
from metagym.policies import Policy
from metagym.streams import Streams
from metagym.tasks import (
    SPLIT_CODES,
    Param,
    Task,
    TaskFamily,
    Uniforms,
    draw_in_split,
    hash_splits,
    ranked_split,
    split_code,
)
from metagym.vector import FamilyVectorEnv

#: Task priors. "uniform": every p_i ~ U[0, 1] independently. "dependent": two arms with
#: p_2 = 1 - p_1 and p_1 ~ U[0, 1]; the easy / medium / hard presets draw p_1 from a pair.
PRIORS = ("uniform", "dependent", "dependent_easy", "dependent_medium", "dependent_hard")
_PAIRS = {"dependent_easy": (0.1, 0.9), "dependent_medium": (0.25, 0.75), "dependent_hard": (0.4, 0.6)}
#: Cells per probability axis for the train/validation/test hash split of continuous priors.
SPLIT_BINS = 20
#: The dependent prior's split code of each mirrored pair of cells {c, 19 - c}, c < 10.
_DEPENDENT_CODES = np.array(
    [split_code(s) for s in ranked_split([f"bandit-dependent:{c}" for c in range(SPLIT_BINS // 2)])], dtype=np.int8
)


@dataclasses.dataclass(frozen=True)
class BanditTask(Task):
    """Success probability of each arm."""

    probs: tuple[float, ...]


class BanditFamily(TaskFamily[BanditTask]):
    """Bernoulli bandits with ``arms`` arms and arm probabilities drawn from ``prior``.

    Splits of continuous priors: the probability vector's cell on a 20-per-axis grid, taken as
    a multiset (the cells sorted), is hashed stably: 20% of cells are ``test``, 10%
    ``validation``. Sorting makes every split symmetric under swapping the arms: a task and its
    arm-permuted twin share a split, so no arm is favoured in any split. The two-task presets
    (``dependent_easy`` etc.) have only a ``train`` split: holding one of their two tasks out
    would leave nothing to learn; evaluation enumerates both.

    Args:
        arms: Number of arms k (2 to 100; 2 for the dependent priors).
        prior: One of :data:`PRIORS`.
        pulls_per_trial: Default trial length n (one pull per episode).
    """

    task_type = BanditTask

    def __init__(self, arms: int = 5, prior: str = "uniform", pulls_per_trial: int = 10) -> None:
        if prior not in PRIORS:
            raise ArgumentError("prior", f"unknown prior {prior!r}; allowed: {list(PRIORS)}")
        if isinstance(arms, bool) or not isinstance(arms, int) or not 2 <= arms <= 100:
            raise ArgumentError("arms", f"expected an integer from 2 to 100, got {arms!r}")
        if prior != "uniform" and arms != 2:
            raise ArgumentError("arms", f"prior {prior!r} has exactly 2 arms, got {arms}")
        if isinstance(pulls_per_trial, bool) or not isinstance(pulls_per_trial, int) or pulls_per_trial < 1:
            raise ArgumentError("pulls_per_trial", f"expected an integer >= 1, got {pulls_per_trial!r}")
        self.arms, self.prior, self.pulls_per_trial = arms, prior, pulls_per_trial
        self.name = f"MetaBandit[{prior}, k={arms}]"
        self.splits = ("train",) if prior in _PAIRS else ("train", "validation", "test")

    def __repr__(self) -> str:
        return f"BanditFamily(arms={self.arms}, prior={self.prior!r}, pulls_per_trial={self.pulls_per_trial})"

    @property
    def params(self) -> tuple[Param, ...]:
        doc = "success probability of each arm"
        if self.prior in _PAIRS:
            return (Param("probs", "vector", doc, choices=self._pair_tasks(), default=self._pair_tasks()[0]),)
        return (Param("probs", "vector", doc, low=0.0, high=1.0, default=self.default_task.probs),)

    @property
    def default_task(self) -> BanditTask:
        if self.prior in _PAIRS:
            return BanditTask(self._pair_tasks()[0])
        return BanditTask(tuple(float(p) for p in np.linspace(0.1, 0.9, self.arms)))

    @property
    def horizon(self) -> int:
        return 1

    @property
    def episodes_per_trial(self) -> int:
        return self.pulls_per_trial

    @property
    def reward_bounds(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def oracle_policy(self) -> Policy:
        return BestArm()

    def bayes_optimal_policy(self, split: str = "train", episodes: int | None = None) -> Policy | None:
        """Exact Bayes-optimal play for the family's prior (on a ``test`` or ``validation``
        split, which interleaves with ``train``, it is optimal for the prior, not the split);
        None where the uniform prior's table would be too large (e.g. n = 100)."""
        from metagym.envs.bandit_bayes import BanditBayesOptimal, tractable

        self.check_split(split)
        pulls = self.pulls_per_trial if episodes is None else episodes
        if not tractable(self.prior, self.arms, pulls):
            return None
        pair = _PAIRS.get(self.prior)
        return BanditBayesOptimal(self.arms, pulls, pair, dependent=self.prior != "uniform")

    def _width(self) -> int:
        """Uniforms one candidate task takes."""
        return self.arms if self.prior == "uniform" else 1

    def _candidates(self, u: np.ndarray) -> np.ndarray:
        """Candidate probability vectors (k, arms) from uniforms (k, width)."""
        if self.prior == "uniform":
            return u
        if self.prior == "dependent":
            return np.concatenate([u, 1.0 - u], axis=1)
        return np.asarray(self._pair_tasks())[(u[:, 0] < 0.5).astype(np.int64)]

    def _pair_tasks(self) -> tuple[tuple[float, float], ...]:
        low, high = _PAIRS[self.prior]
        return ((low, high), (high, low))

    def _codes(self, probs: np.ndarray) -> np.ndarray:
        """Split codes (:data:`~metagym.tasks.SPLIT_CODES`) of probability vectors (k, arms)."""
        cells = np.minimum((np.asarray(probs) * SPLIT_BINS).astype(np.int64), SPLIT_BINS - 1)
        if self.prior in _PAIRS:
            return np.zeros(len(cells), dtype=np.int8)
        if self.prior == "dependent":  # p_2 = 1 - p_1: 10 mirrored pairs of cells, ranked
            return _DEPENDENT_CODES[np.minimum(cells[:, 0], SPLIT_BINS - 1 - cells[:, 0])]
        return hash_splits("bandit", np.sort(cells, axis=1))

    def task_set(self, split: str) -> tuple[BanditTask, ...] | None:
        self.check_split(split)
        return tuple(BanditTask(p) for p in self._pair_tasks()) if self.prior in _PAIRS else None

    def split_of(self, task: BanditTask) -> str:
        self.validate(task)
        return SPLIT_CODES[int(self._codes(np.array([task.probs]))[0])]

    def draw_from(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        return {"probs": draw_in_split(uniforms, self._width(), self._candidates, self._codes, split_code(split), n)}

    def _check(self, task: BanditTask, argument: str) -> None:
        probs = task.probs
        if not isinstance(probs, tuple) or len(probs) != self.arms:
            raise ArgumentError(f"{argument}.probs", f"expected {self.arms} probabilities, got {probs!r}")
        if not all(isinstance(p, float | int) and 0.0 <= p <= 1.0 for p in probs):
            raise ArgumentError(f"{argument}.probs", f"every probability must lie in [0, 1], got {probs!r}")
        if self.prior != "uniform" and abs(probs[0] + probs[1] - 1.0) > 1e-9:
            raise ArgumentError(f"{argument}.probs", f"prior {self.prior!r} needs p_2 = 1 - p_1, got {probs!r}")
        if self.prior in _PAIRS and probs not in self._pair_tasks():
            raise ArgumentError(f"{argument}.probs", f"prior {self.prior!r} allows only {self._pair_tasks()}")


class BestArm(Policy):
    """Task oracle: always pulls the arm with the highest success probability."""

    name = "oracle"

    def __init__(self) -> None:
        self.arm = 0

    def reset_trial(self, task: Task, rng: np.random.Generator) -> None:
        assert isinstance(task, BanditTask)
        self.arm = int(np.argmax(task.probs))

    def act(self, obs: Any) -> int:
        return self.arm


class BanditDynamics(BatchedDynamics[BanditTask]):
    """N bandits: one pull per episode, a Bernoulli reward drawn from each env's own RNG."""

    def __init__(self, family: BanditFamily, num_envs: int) -> None:
        super().__init__(family, num_envs)
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(family.arms)
        self.probs = np.zeros((self.num_envs, family.arms))
        self.last_action = np.full(self.num_envs, -1, dtype=np.int64)
        self.last_reward = np.zeros(self.num_envs)
        # What a viewer needs to follow a trial (an episode is one pull): pulls and wins per arm
        # since the task was set; nothing here is observed or changes the dynamics.
        self.pulls = np.zeros((self.num_envs, family.arms), dtype=np.int64)
        self.wins = np.zeros((self.num_envs, family.arms), dtype=np.int64)

    def set_task_arrays(self, idx: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        self.probs[idx] = arrays["probs"]
        self.pulls[idx], self.wins[idx], self.last_action[idx] = 0, 0, -1

    def reset_envs(self, idx: np.ndarray, rngs: Streams) -> None:
        pass  # one pull per episode: nothing to reset (the last pull stays on screen)

    def step(self, actions: np.ndarray, active: np.ndarray, rngs: Streams) -> tuple[np.ndarray, np.ndarray]:
        idx, rows = self.active_rows(active)
        pulled = actions[rows]
        flat = idx * self.probs.shape[1] + pulled  # (env, arm) entries, one per env
        won = rngs.random(rows)[:, 0] < self.probs.ravel()[flat]
        reward = np.zeros(self.num_envs)
        reward[rows] = won
        self.last_action[rows], self.last_reward[rows] = pulled, won
        self.pulls.ravel()[flat] += 1
        self.wins.ravel()[flat] += won
        return reward, active.copy()

    def observe(self) -> np.ndarray:
        return np.zeros(self.num_envs, dtype=np.int64)

    def render_frame(self, i: int, width: int = 320, height: int = 200) -> np.ndarray:
        """Per arm: its hidden probability (outline; green for the best arm), the agent's running
        estimate wins/pulls (filled) with the counts, and the last pull marked with its reward."""
        import pygame  # lazy

        pygame.font.init()
        font = pygame.font.Font(None, 16)
        k = self.probs.shape[1]
        surface = pygame.Surface((width, height))
        surface.fill((245, 245, 240))
        bar_w, top, bottom = width // k, 18, height - 26
        best = int(np.argmax(self.probs[i]))
        for arm in range(k):
            x = arm * bar_w + 4
            pulls, wins = int(self.pulls[i, arm]), int(self.wins[i, arm])
            if pulls:
                h = int(wins / pulls * (bottom - top))
                pygame.draw.rect(surface, (110, 140, 210), pygame.Rect(x, bottom - h, bar_w - 8, h))
            h = int(self.probs[i, arm] * (bottom - top))
            outline = (60, 180, 75) if arm == best else (120, 120, 130)
            pygame.draw.rect(surface, outline, pygame.Rect(x, bottom - h, bar_w - 8, max(h, 2)), width=2)
            label = font.render(f"{wins}/{pulls}", True, (40, 40, 40))
            surface.blit(label, (x + (bar_w - 8 - label.get_width()) // 2, 3))
            name = font.render(f"arm {arm}", True, (40, 40, 40))
            surface.blit(name, (x + (bar_w - 8 - name.get_width()) // 2, height - 14))
            if arm == self.last_action[i]:
                hit = (220, 50, 50) if self.last_reward[i] else (90, 90, 200)
                pygame.draw.circle(surface, hit, (x + (bar_w - 8) // 2, bottom + 6), 5)
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


class MetaBanditEnv(FamilyEnv[BanditTask]):
    """## Description

    A Bernoulli multi-armed bandit whose arm probabilities are the hidden task. Each episode is
    one pull; a trial of n pulls on one task is the setting of Duan et al. 2016 (RL², Table 1:
    n = 10, 100, 500; k = 5, 10, 50) and of Wang et al. 2016 (two arms, 100 pulls).

    ## Action Space

    ``Discrete(k)``: the arm to pull.

    ## Observation Space

    ``Discrete(1)``: there is nothing to see; what matters is in the trial's previous action and
    reward.

    ## Rewards

    1 with the pulled arm's probability, else 0.

    ## Starting State

    Nothing to start from.

    ## Episode End

    Terminated after the one pull (horizon 1, so also truncated).

    ## Task Distribution

    ``uniform``: p_i ~ U[0, 1] for each of k arms. ``dependent``: p_2 = 1 - p_1, p_1 ~ U[0, 1].
    ``dependent_easy`` / ``_medium`` / ``_hard``: p_1 from {0.1, 0.9} / {0.25, 0.75} /
    {0.4, 0.6}.

    ## Splits

    Continuous priors: ``train`` / ``validation`` / ``test`` by a stable hash of the
    probabilities' cells on a 20-per-axis grid, taken as a multiset (20% test, 10% validation;
    symmetric under swapping arms). Two-task presets: ``train`` only.

    ## Arguments

    ``arms`` (k, default 5), ``prior`` (default ``"uniform"``), ``pulls_per_trial`` (default
    trial length, default 10), ``render_mode``.

    ## Version History

    * v0: first release.

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> import metagym
    >>> env = gym.make("MetaBandit-v0")
    >>> family = env.unwrapped.family
    >>> [param.name for param in family.params]
    ['probs']
    >>> task = family.sample(np.random.default_rng(0), 1, split="test")[0]
    >>> obs, info = env.reset(seed=0, options={"task": task})
    >>> family.split_of(task), env.unwrapped.task == task
    ('test', True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> env.observation_space.contains(obs)
    True
    """

    def __init__(
        self, arms: int = 5, prior: str = "uniform", pulls_per_trial: int = 10, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode, BanditDynamics(BanditFamily(arms, prior, pulls_per_trial), 1))


class MetaBanditVectorEnv(FamilyVectorEnv[BanditTask]):
    """``num_envs`` bandits in one call; see :class:`MetaBanditEnv`."""

    def __init__(
        self,
        num_envs: int,
        arms: int = 5,
        prior: str = "uniform",
        pulls_per_trial: int = 10,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ) -> None:
        dynamics = BanditDynamics(BanditFamily(arms, prior, pulls_per_trial), num_envs)
        super().__init__(num_envs, render_mode, autoreset_mode, max_episode_steps, dynamics)
