"""A user's memory agent, written as a user would: an LSTM network on metagym's seam, registered
by name. ``metagym --import user_agent train --agent user-lstm ...`` trains it (tests/test_seam.py).

Its config has a non-scalar field (``encoder``: a tuple of widths, given as JSON on the command
line) so that the CLI is shown to take every field, not only numbers and strings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metagym.agents.common.memory import MemoryConfig, MemoryNetwork, OnPolicy
from metagym.agents.common.settings import setting
from metagym.agents.registry import register_agent


@dataclasses.dataclass(frozen=True)
class LSTMConfig(MemoryConfig):
    agent: ClassVar[str] = "user-lstm"

    width: int = setting(16, "Width of the LSTM.")
    encoder: tuple[int, ...] = setting((16,), "Widths of the encoder's layers (JSON list).")

    def __post_init__(self) -> None:  # JSON gives a list; the config keeps a tuple (hashable, frozen)
        object.__setattr__(self, "encoder", tuple(self.encoder))

    def validate(self) -> LSTMConfig:
        super().validate()
        if not self.encoder or not all(isinstance(w, int) and w >= 1 for w in self.encoder):
            raise ValueError(f"encoder: expected a list of integers >= 1, got {list(self.encoder)}")
        return self


class LSTMNetwork(MemoryNetwork):
    """Encoder -> LSTM -> heads; the memory state is (h, c) side by side."""

    def __init__(self, obs_dim: int, action_space: spaces.Space[Any], config: LSTMConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in config.encoder:
            layers += [nn.Linear(obs_dim, width), nn.Tanh()]
            obs_dim = width
        self.encoder = nn.Sequential(*layers)
        self.lstm = nn.LSTM(obs_dim, config.width)
        self.width = config.width
        self.add_heads(action_space, config.width)

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, 2 * self.width), dtype=np.float32)

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, out = self.encoder(obs), []
        h, c = state[None, :, : self.width], state[None, :, self.width :]
        for t in range(obs.shape[0]):  # step by step: simple, and fine for a test
            keep = (1.0 - starts[t])[None, :, None]
            y, (h, c) = self.lstm(x[t : t + 1], (h * keep, c * keep))
            out.append(y)
        return torch.cat(out), torch.cat([h[0], c[0]], dim=-1)


class UserLSTM(OnPolicy):
    Config = LSTMConfig

    @classmethod
    def build_network(cls, config: Any, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> Any:
        return LSTMNetwork(int(np.prod(observation_space.shape)), action_space, config)


register_agent("user-lstm", "user_agent:UserLSTM", "memory", "user LSTM", replace=True)


# Mistakes a user can make on the seam; tests/test_seam.py registers each for one test only.
class KeepsAGenerator(UserLSTM):
    """Saves a numpy Generator object: torch.save pickles it, torch.load(weights_only=True) refuses it."""

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"rng": np.random.default_rng(0)}


class LogsAList(UserLSTM):
    """``learn`` returns a list, not the dict of numbers the seam asks for."""

    def learn(self, update: int) -> Any:
        return list(super().learn(update).values())


class LogsUnlisted(UserLSTM):
    """``learn`` returns a number its ``log_fields`` does not list (the CSV would drop it)."""

    def learn(self, update: int) -> dict[str, float]:
        return super().learn(update) | {"surprise": 1.0}
