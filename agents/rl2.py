"""RL² (Duan et al. 2016; Wang et al. 2016): a GRU actor-critic trained with PPO over trials.

The agent sees a family's trial observation (the family's observation, previous action,
previous reward, inner-episode-done flag, episode index) and keeps its GRU state across the K
episodes of a trial, resetting it only when a new trial starts. Rollouts run on the batched
trial env (one task per sub-env, many trials in flight); PPO trains on each rollout segment by
truncated back-propagation through time from the segment's stored initial state.

RL² is a network on the shared seam: the rollout, GAE, PPO update and exact-resume state are
:class:`metagym.agents.common.memory.OnPolicy`'s, the loop, logs and checkpoints the
:class:`metagym.agents.common.trainer.Trainer`'s. What is RL²'s own is below: its config field
and its network (encoder -> GRU -> actor and critic heads).

Example:
    >>> from metagym.agents.rl2 import RL2Config, Trainer
    >>> trainer = Trainer(RL2Config(env_id="MetaBandit-v0", num_envs=8, rollout_steps=10), "runs/x")
    >>> trainer.run(progress=False, stop_after=1)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metagym.agents.common.memory import MemoryAgent, MemoryConfig, MemoryNetwork, OnPolicy, gru_unroll, make_envs
from metagym.agents.common.settings import setting
from metagym.agents.common.trainer import Trainer, load_agent

__all__ = ["RL2", "RL2Agent", "RL2Config", "RL2Network", "Trainer", "load_agent", "make_envs", "train"]


@dataclasses.dataclass(frozen=True)
class RL2Config(MemoryConfig):
    """Everything that defines an RL² run (saved as ``config.json`` in the run folder): the
    fields every memory agent shares (:class:`~metagym.agents.common.memory.MemoryConfig`) and
    the width of RL²'s network."""

    agent: ClassVar[str] = "rl2"
    own_counts: ClassVar[tuple[str, ...]] = ("hidden_size",)

    hidden_size: int = setting(128, "Width of the encoder and of the GRU.")


class RL2Network(MemoryNetwork):
    """Encoder -> GRU -> actor and critic heads. Categorical for Discrete, Gaussian for Box."""

    def __init__(self, obs_dim: int, action_space: spaces.Space[Any], hidden: int) -> None:
        super().__init__()
        self.hidden_size = hidden
        self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh())
        self.gru = nn.GRU(hidden, hidden)
        self.add_heads(action_space, hidden)

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, self.hidden_size), dtype=np.float32)

    def unroll(
        self, obs: torch.Tensor, hidden: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (T, N, H) of a sequence; the state resets where ``starts`` (T, N) is 1."""
        return gru_unroll(self.gru, self.encoder(obs), hidden, starts)


class RL2(OnPolicy):
    """RL²: :class:`RL2Network` trained by the shared on-policy learner."""

    Config = RL2Config

    @classmethod
    def build_network(
        cls, config: RL2Config, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> RL2Network:
        return RL2Network(int(np.prod(observation_space.shape or (1,))), action_space, config.hidden_size)


#: The acting RL² agent (SB3's ``predict``); ``load_agent(run_dir)`` reads one from a run.
RL2Agent = MemoryAgent


def train(config: RL2Config, run_dir: str | Path, resume: bool = False, **run_kwargs: Any) -> Any:
    """Train (or resume) an RL² run in ``run_dir`` and return the agent."""
    trainer = Trainer.resume(run_dir) if resume else Trainer(config, run_dir)
    trainer.run(**run_kwargs)
    return trainer.agent
