"""Whole trials for agents that learn from more than the current rollout (VariBAD's VAE).

A rollout of the on-policy learner cuts trials wherever ``rollout_steps`` ends; a
:class:`TrialRecorder` stitches each sub-env's pieces back into complete trials and files them in
a :class:`TrialBuffer`, a ring of the most recent trials. A trial is its tokens (the trial
observations, plus the last one, which the next trial's start replaces in the env's output) and
the state each transition *reached*: the token after an inner episode's end shows the next
episode's start instead, so the recorder reads the reached state from the trial wrapper's
``info["inner_final_obs"]`` (and from ``final_obs`` where the trial ended).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from metagym.agents.common.checkpoint import field, to_array
from metagym.errors import ArgumentError
from metagym.wrappers import reached_states


class TrialBuffer:
    """The last ``capacity`` complete trials (a ring), kept as padded arrays: tokens
    (capacity, H + 1, D), reached states (capacity, H, obs) and lengths (transitions per trial).
    Rows and the padded length grow as trials arrive, so a short-trial family keeps short rows."""

    def __init__(self, capacity: int, token_dim: int, obs_dim: int) -> None:
        self.capacity = capacity
        self.tokens = np.zeros((0, 1, token_dim), np.float32)
        self.reached = np.zeros((0, 0, obs_dim), np.float32)
        self.lengths = np.zeros(0, np.int64)
        self.next = 0  # the row the next trial replaces once the ring is full
        self.count = 0

    def add(self, tokens: np.ndarray, reached: np.ndarray) -> None:
        """Keep one trial: its ``len(reached) + 1`` tokens and the state each transition reached."""
        steps = len(reached)
        rows, width = self.tokens.shape[:2]
        if self.count == rows and rows < self.capacity:  # room for more rows
            grow = min(self.capacity, max(64, 2 * rows)) - rows
            self.tokens = np.concatenate([self.tokens, np.zeros((grow, *self.tokens.shape[1:]), np.float32)])
            self.reached = np.concatenate([self.reached, np.zeros((grow, *self.reached.shape[1:]), np.float32)])
            self.lengths = np.concatenate([self.lengths, np.zeros(grow, np.int64)])
        if steps + 1 > width:  # a longer trial than any before: pad every row to it
            self.tokens = np.pad(self.tokens, ((0, 0), (0, steps + 1 - width), (0, 0)))
            self.reached = np.pad(self.reached, ((0, 0), (0, steps + 1 - width), (0, 0)))
        row = self.count if self.count < self.capacity else self.next
        self.tokens[row], self.reached[row], self.lengths[row] = 0.0, 0.0, steps
        self.tokens[row, : steps + 1], self.reached[row, :steps] = tokens, reached
        self.count = min(self.count + 1, self.capacity)
        self.next = (row + 1) % self.capacity

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``size`` trials drawn uniformly (with replacement): tokens (H + 1, size, D), reached
        (H, size, obs), lengths (size,), cut to the longest trial drawn."""
        rows = rng.integers(0, self.count, size)
        lengths = self.lengths[rows]
        steps = int(lengths.max())
        tokens = self.tokens[rows, : steps + 1].transpose(1, 0, 2)
        return (
            np.ascontiguousarray(tokens),
            np.ascontiguousarray(self.reached[rows, :steps].transpose(1, 0, 2)),
            lengths,
        )

    def state_dict(self) -> dict[str, Any]:
        n = self.count
        return {"tokens": self.tokens[:n], "reached": self.reached[:n], "lengths": self.lengths[:n], "next": self.next}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        lengths = to_array(state.get("lengths"), f"{path}: buffer lengths", dtype=np.int64)
        n = len(lengths)
        tokens = to_array(state.get("tokens"), f"{path}: buffer tokens", dtype=np.float32)
        reached = to_array(state.get("reached"), f"{path}: buffer reached", dtype=np.float32)
        if n > self.capacity or tokens.shape[0] != n or tokens.shape[2] != self.tokens.shape[2]:
            raise ArgumentError(
                "checkpoint", f"{path}: the VAE buffer does not fit this run ({tokens.shape[0]} trials)"
            )
        if reached.shape[:2] != (n, tokens.shape[1] - 1) or reached.shape[2] != self.reached.shape[2]:
            raise ArgumentError("checkpoint", f"{path}: the VAE buffer's reached states do not fit its tokens")
        self.tokens, self.reached, self.lengths = tokens.copy(), reached.copy(), lengths.copy()
        self.count, self.next = n, int(field(state, "next", int, path))


class TrialRecorder:
    """Complete trials out of rollouts, filed in a :class:`TrialBuffer`.

    Call :meth:`observed` after every rollout step (the learner's ``observed`` hook) and
    :meth:`file` with the rollout's tokens once it is collected. The trial in progress in each
    sub-env at a rollout's end is kept (and saved in checkpoints) until it ends.
    """

    def __init__(self, buffer: TrialBuffer, num_envs: int, rollout_steps: int) -> None:
        self.buffer = buffer
        dim, obs = buffer.tokens.shape[2], buffer.reached.shape[2]
        self.open = [(np.zeros((0, dim), np.float32), np.zeros((0, obs), np.float32)) for _ in range(num_envs)]
        self.reached = np.zeros((rollout_steps, num_envs, obs), np.float32)
        self.ended = np.zeros((rollout_steps, num_envs), bool)
        self.final = np.zeros((rollout_steps, num_envs, dim), np.float32)

    def observed(self, t: int, obs: np.ndarray, ended: np.ndarray, infos: dict[str, Any]) -> None:
        """Rollout step ``t``: the state each sub-env reached, and the last token of the trials
        that ended (``obs`` already starts their next trial)."""
        reached = reached_states(obs, infos, ended, self.reached.shape[2])
        if ended.any():
            self.final[t, ended] = np.asarray(infos["final_obs"], np.float32)[ended]
        self.reached[t], self.ended[t] = reached, ended

    def file(self, tokens: np.ndarray) -> None:
        """File the trials that ended in this rollout (``tokens``: its (T, N, D) observations)."""
        for i in range(tokens.shape[1]):
            first = 0
            open_tokens, open_reached = self.open[i]
            for last in np.flatnonzero(self.ended[:, i]):
                trial_tokens = np.concatenate([open_tokens, tokens[first : last + 1, i], self.final[last, i][None]])
                self.buffer.add(trial_tokens, np.concatenate([open_reached, self.reached[first : last + 1, i]]))
                open_tokens, open_reached = open_tokens[:0], open_reached[:0]
                first = int(last) + 1
            self.open[i] = (
                np.concatenate([open_tokens, tokens[first:, i]]),
                np.concatenate([open_reached, self.reached[first:, i]]),
            )

    def state_dict(self) -> dict[str, Any]:
        return {"open_tokens": [t for t, _ in self.open], "open_reached": [r for _, r in self.open]}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        tokens, reached = field(state, "open_tokens", list, path), field(state, "open_reached", list, path)
        n = len(self.open)
        if len(tokens) != n or len(reached) != n:
            raise ArgumentError("checkpoint", f"{path}: the open trials do not match num_envs ({n})")
        dim, obs = self.final.shape[2], self.reached.shape[2]
        self.open = []
        for i, (t, r) in enumerate(zip(tokens, reached, strict=True)):
            t = to_array(t, f"{path}: open_tokens[{i}]", dtype=np.float32)
            r = to_array(r, f"{path}: open_reached[{i}]", dtype=np.float32)
            if t.ndim != 2 or t.shape[1] != dim or r.shape != (len(t), obs):
                raise ArgumentError("checkpoint", f"{path}: open trial {i} does not fit this run")
            self.open.append((t.copy(), r.copy()))
