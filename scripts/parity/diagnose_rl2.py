"""One-seed diagnostics of our RL² under a parity pair's reference settings: change one thing at a
time toward the reference's code and watch the score, to find which difference matters.

Settings come from ``parity.py``'s ``equivalent`` for the pair, then ``--set KEY=JSON`` (e.g.
``--set norm_adv=false``: unnormalised advantages, the reference's ``standardize_advs 0``). Two
changes are not settings of metagym and are patched in for the run only:

- ``--xavier-head``: the actor head re-drawn Xavier-normal, as the reference's ``LinearPolicyHead``;
- ``--two-networks``: separate policy and value networks (each an encoder and a GRU), as the
  reference's ``StatefulPolicyNet`` and ``StatefulValueNet``.

It prints the frames trained and the sampled trial return on 1,000 tasks after every update:

    python scripts/parity/diagnose_rl2.py rl2-tabular --out /tmp/d --set actor_gain=0.01 --set norm_adv=false
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import parity


def two_networks() -> None:
    """RL² built with a second encoder and GRU for the critic (features: the two concatenated)."""
    from metagym.agents import rl2
    from metagym.agents.common.memory import gru_unroll

    class TwoNetworks(rl2.RL2Network):
        def __init__(self, obs_dim: int, action_space: Any, hidden: int) -> None:
            nn.Module.__init__(self)
            self.hidden_size = hidden
            self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh())
            self.gru = nn.GRU(hidden, hidden)
            self.value_encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh())
            self.value_gru = nn.GRU(hidden, hidden)
            self.add_heads(action_space, hidden)

        def initial_state(self, n: int) -> np.ndarray:
            return np.zeros((n, 2 * self.hidden_size), dtype=np.float32)

        def unroll(self, obs: torch.Tensor, hidden: torch.Tensor, starts: torch.Tensor) -> Any:
            h = self.hidden_size
            policy, hp = gru_unroll(self.gru, self.encoder(obs), hidden[..., :h].contiguous(), starts)
            value, hv = gru_unroll(self.value_gru, self.value_encoder(obs), hidden[..., h:].contiguous(), starts)
            return torch.cat([policy, value], -1), torch.cat([hp, hv], -1)

        def value(self, features: torch.Tensor) -> torch.Tensor:
            return super().value(features[..., self.hidden_size :])

        def distribution(self, features: torch.Tensor) -> Any:
            return super().distribution(features[..., : self.hidden_size])

    def build(cls: Any, config: Any, observation_space: Any, action_space: Any) -> TwoNetworks:
        return TwoNetworks(int(np.prod(observation_space.shape or (1,))), action_space, config.hidden_size)

    rl2.RL2.build_network = classmethod(build)  # type: ignore[method-assign, assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=[n for n, r in parity.REFERENCES.items() if r.preset.startswith("rl2-")])
    parser.add_argument("--out", required=True, help="the run folder (must not hold a run)")
    parser.add_argument("--frames", type=int, default=1_200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a setting over the pair's")
    parser.add_argument("--xavier-head", action="store_true")
    parser.add_argument("--two-networks", action="store_true")
    args = parser.parse_args()

    from metagym.agents.common.trainer import Trainer
    from metagym.agents.runs import new_run, run_config
    from metagym.presets import presets

    changed = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changed[key] = json.loads(value)
    if args.two_networks:
        two_networks()
    ref = parity.REFERENCES[args.name]
    preset = presets()[ref.preset]
    config = run_config(preset.agent, preset.env, args.frames, args.seed, None, ref.equivalent | changed)
    trainer: Trainer = new_run(config, args.out)
    if args.xavier_head:
        torch.manual_seed(args.seed)
        nn.init.xavier_normal_(trainer.agent.network.actor.weight)
    while trainer.global_step < args.frames:
        trainer.run(progress=False, stop_after=1)
        print(trainer.global_step, round(parity.score(trainer.agent, 1000, False), 4), flush=True)


if __name__ == "__main__":
    main()
