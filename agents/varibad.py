"""VariBAD (Zintgraf et al. 2020): a policy conditioned on a learned posterior over the task.

RL² keeps what a trial has shown in an opaque hidden state. VariBAD keeps an explicit belief: an
encoder (a GRU over the trial, one step at a time) gives a Gaussian posterior q(m | tau_{:t})
over a latent task variable m at every step, trained as a VAE to reconstruct the rewards (and
optionally the next states) of the *whole* trial, past and future, from m; the policy acts on
the current state and the posterior's mean and log-variance. The belief is carried across the
episodes of a trial and reset only where a new trial (a new task) starts.

VariBAD is a network and a loss on the shared on-policy seam
(:class:`metagym.agents.common.memory.OnPolicy`): PPO, rollouts, logs and exact resume are the
learner's. Its own parts:

- :class:`VariBADNetwork`: the encoder (state, previous action and previous reward embeddings
  -> GRU -> mean and log-variance), the decoders and the policy body (state embedding, belief
  embedding -> MLP -> RL²'s actor and critic heads). The memory state is the encoder's GRU
  state. By default the policy sees the belief detached (``rlloss_through_encoder=False``, as
  the reference code): PPO never trains the encoder;
- the reward decoder p(r | s', m): on grid families (whose dynamics declare a
  ``position_grid``) one Bernoulli head per cell, as the reference's ``multihead_for_reward``
  (the target is the reward scaled to [0, 1] between the family's reward bounds: exactly "is
  this the goal" on GridNavi); elsewhere an MLP of (m, s, a, s') with a squared error. An
  optional state decoder p(s' | s, a, m) adds a squared error on the next observation;
- :func:`elbo_terms`: the negative ELBO of a batch of trials, for every posterior of the trial
  (the prior at its first step included) decoding every transition of the trial, plus the KL of
  each posterior to the one before (the first to N(0, I));
- :class:`TrialBuffer`: the recent complete trials the VAE trains on, with its own Adam
  optimiser, ``vae_updates`` batches of ``vae_batch_trials`` trials after every PPO update.

A token of the trial observation at step t carries (s_t, a_{t-1}, r_{t-1}): the transition that
led here, so the posterior after token t has seen t transitions (the first token, the start
state, gives the prior). The decoder needs the state each transition *reached*, which the
token after an inner episode's end does not show (it shows the next episode's start): the
trial wrapper reports it as ``info["inner_final_obs"]``.

Example:
    >>> from metagym.agents.varibad import VariBADConfig
    >>> from metagym.agents.common.trainer import Trainer
    >>> trainer = Trainer(VariBADConfig(num_envs=16, rollout_steps=60), "runs/x")
    >>> trainer.run(progress=False, stop_after=1)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from metagym.agents.common.memory import MemoryAgent, MemoryConfig, MemoryNetwork, OnPolicy, Rollout, gru_unroll
from metagym.agents.common.settings import setting
from metagym.agents.common.trials import TrialBuffer, TrialRecorder
from metagym.agents.common.validation import check_config
from metagym.errors import ArgumentError
from metagym.registration import family_of

FIELD = 16  # a plane family's decoded reward field is drawn on FIELD x FIELD points
BELIEF_SAMPLES = 100  # latent draws the cells belief averages over (the reference's 100)

__all__ = ["Belief", "VariBAD", "VariBADAgent", "VariBADConfig", "VariBADNetwork", "elbo_terms"]


@dataclasses.dataclass(frozen=True)
class VariBADConfig(MemoryConfig):
    """Everything that defines a VariBAD run (saved as ``config.json``): the fields every memory
    agent shares and VariBAD's own (defaults: the reference code's GridNavi settings)."""

    agent: ClassVar[str] = "varibad"
    own_counts: ClassVar[tuple[str, ...]] = (
        "latent_dim",
        "encoder_hidden",
        "state_embedding",
        "reward_embedding",
        "policy_hidden",
        "policy_embedding",
        "decoder_hidden",
        "vae_buffer_trials",
        "vae_batch_trials",
    )

    latent_dim: int = setting(5, "Size of the latent task variable m.")
    encoder_hidden: int = setting(64, "Width of the encoder's GRU (the memory state).")
    state_embedding: int = setting(8, "Embedding of the state (and episode flags) in the encoder and decoder.")
    action_embedding: int = setting(
        8, "Embedding of the previous action in the encoder (0: not fed, as the reference on grids)."
    )
    reward_embedding: int = setting(8, "Embedding of the previous reward in the encoder.")
    policy_hidden: int = setting(32, "Width of the policy's hidden layer (over the state and belief embeddings).")
    policy_embedding: int = setting(16, "Width of the policy's embedding of the state, and of the belief.")
    reward_decoder: Literal["auto", "cells", "mlp"] = setting(
        "auto",
        "p(r | s', m): 'cells' one Bernoulli head per cell (grid families), 'mlp' an MLP of (m, s, a, s') with "
        "a squared error; 'auto' picks cells where the family declares a position grid.",
    )
    reward_likelihood: Literal["bernoulli", "categorical"] = setting(
        "bernoulli",
        "The cells decoder's reward model: 'bernoulli' an independent p(reward) per cell (the reference's default), "
        "'categorical' one goal cell, p(goal = cell) a softmax over the cells (the reference's 'categorical'; "
        "families with one rewarding cell, e.g. GridNavi: the belief is then a distribution over the goal's cell).",
    )
    decoder_hidden: int = setting(32, "Width of the decoders' two hidden layers.")
    decode_state: bool = setting(False, "Also decode the next observation, p(s' | s, a, m) (squared error).")
    state_loss_coef: float = setting(1.0, "Weight of the state reconstruction in the VAE loss.")
    kl_weight: float = setting(0.01, "Weight of the KL terms in the VAE loss.")
    vae_learning_rate: float = setting(1e-3, "Adam's step size for the encoder and decoders.")
    vae_anneal_lr: bool = setting(
        False, "Scale the VAE's step size by the policy's schedule (anneal_lr); the reference keeps it fixed."
    )
    vae_buffer_trials: int = setting(10_000, "Recent complete trials kept for the VAE.")
    vae_batch_trials: int = setting(25, "Trials per VAE batch.")
    vae_updates: int = setting(3, "VAE batches after every PPO update (0: the belief is not trained).")
    vae_subsample_elbos: int | None = setting(
        None, "Posteriors per trial the ELBO decodes from, drawn at random (none: every one)."
    )
    vae_subsample_decodes: int | None = setting(
        None, "Transitions per trial each posterior decodes, drawn at random (none: every one)."
    )
    rlloss_through_encoder: bool = setting(
        False, "Let PPO's gradient train the encoder too (the belief is not detached)."
    )
    policy_belief: Literal["latent", "decoded"] = setting(
        "latent",
        "What the policy reads of the belief: 'latent' the posterior's mean and log-variance (the reference), "
        "'decoded' the probability of reward at every cell that the mean decodes to (families with a position grid).",
    )

    def validate(self) -> Any:
        super().validate()
        check_config(self, (), ("vae_learning_rate",), (), ("kl_weight", "state_loss_coef"))
        for name in ("action_embedding", "vae_updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ArgumentError(name, f"expected an integer >= 0, got {value!r}")
        for name in ("vae_subsample_elbos", "vae_subsample_decodes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ArgumentError(name, f"expected none or an integer >= 1, got {value!r}")
        if self.reward_decoder not in ("auto", "cells", "mlp"):
            raise ArgumentError(
                "reward_decoder", f"expected one of ['auto', 'cells', 'mlp'], got {self.reward_decoder!r}"
            )
        if self.reward_likelihood not in ("bernoulli", "categorical"):
            raise ArgumentError(
                "reward_likelihood", f"expected one of ['bernoulli', 'categorical'], got {self.reward_likelihood!r}"
            )
        if self.reward_likelihood == "categorical" and self.reward_decoder == "mlp":
            raise ArgumentError("reward_likelihood", "'categorical' needs the cells decoder; reward_decoder is 'mlp'")
        return self


class Belief(NamedTuple):
    """A Gaussian posterior over the latent task variable: mean and log-variance, (..., latent_dim)."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def entropy(self) -> torch.Tensor:
        """Differential entropy in nats, (...)."""
        return 0.5 * (self.logvar + float(np.log(2 * np.pi * np.e))).sum(-1)


class Layout(NamedTuple):
    """Where the parts of a trial token lie, and what the family says of its rewards."""

    obs: int  # width of the family's flattened observation (the token's first columns)
    action: int  # width of the previous-action part (one-hot or Box)
    reward_low: float
    reward_high: float
    grid: tuple[int, int] | None  # the declared position grid (a cells decoder), else None
    view: tuple[float, float, float, float] | None = None  # a plane family's declared view (x, y bounds)

    def parts(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(state with the done flag and episode index, previous action, previous reward (..., 1),
        state alone) of trial tokens (..., D)."""
        o, a = self.obs, self.action
        state = tokens[..., :o]
        flags = tokens[..., o + a + 1 :]
        return torch.cat([state, flags], -1), tokens[..., o : o + a], tokens[..., o + a : o + a + 1], state


def layout_of(
    env_id: str, action_space: spaces.Space[Any], token_dim: int, reward_decoder: str, env_kwargs: Any = None
) -> Layout:
    """The token layout of ``env_id``'s trials (made with ``env_kwargs``), asked of the family
    env (its reward bounds and position grid)."""
    env = gym.make(env_id, disable_env_checker=True, **(env_kwargs or {}))
    family = family_of(env)
    grid = getattr(env.unwrapped, "position_grid", None)
    view = getattr(env.unwrapped, "position_view", None)
    env.close()
    action = spaces.flatdim(action_space)
    low, high = (float(b) for b in family.reward_bounds)
    if reward_decoder == "cells" and grid is None:
        raise ArgumentError("reward_decoder", f"'cells' needs a family with a position grid; {env_id} declares none")
    if reward_decoder == "mlp":
        grid = None
    if grid is not None and not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ArgumentError("reward_decoder", f"'cells' needs finite reward bounds; {env_id} has ({low}, {high})")
    cells = None if grid is None else (int(grid[0]), int(grid[1]))
    box = None if view is None else (float(view[0]), float(view[1]), float(view[2]), float(view[3]))
    return Layout(token_dim - action - 3, action, low, high, cells, box)


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class VariBADNetwork(MemoryNetwork):
    """Encoder (GRU belief), decoders and policy body; the memory state is the encoder's GRU state."""

    # Buffers (register_buffer), declared for the type checker: the policy's input statistics.
    belief_center: torch.Tensor
    belief_var: torch.Tensor
    belief_updates: torch.Tensor

    def __init__(self, layout: Layout, action_space: spaces.Space[Any], config: VariBADConfig) -> None:
        super().__init__()
        c, lay = config, layout
        self.layout, self.latent_dim, self.hidden_size = lay, c.latent_dim, c.encoder_hidden
        self.through_encoder = c.rlloss_through_encoder
        # Encoder q(m | tau_{:t}).
        self.embed_state = nn.Sequential(nn.Linear(lay.obs + 2, c.state_embedding), nn.Tanh())
        self.embed_action = (
            nn.Sequential(nn.Linear(lay.action, c.action_embedding), nn.ReLU()) if c.action_embedding else None
        )
        self.embed_reward = nn.Sequential(nn.Linear(1, c.reward_embedding), nn.Tanh())
        self.gru = nn.GRU(c.state_embedding + c.action_embedding + c.reward_embedding, c.encoder_hidden)
        self.to_mean = nn.Linear(c.encoder_hidden, c.latent_dim)
        self.to_logvar = nn.Linear(c.encoder_hidden, c.latent_dim)
        # Decoders p(r | s', m) and, optionally, p(s' | s, a, m).
        h = c.decoder_hidden
        self.categorical = c.reward_likelihood == "categorical"
        if self.categorical and lay.grid is None:
            raise ArgumentError(
                "reward_likelihood",
                f"'categorical' needs a family with a position grid (a MetaGrid family), "
                f"and {c.env_id} declares none; use 'bernoulli'",
            )
        if lay.grid is not None:
            cells = lay.grid[0] * lay.grid[1]
            self.reward_head = mlp([c.latent_dim, h, h, cells])
            # Start from "the reward is at one cell in `cells`" (log-odds 1 : cells - 1), not at
            # p = 1/2 everywhere: from there, the fastest way to the rare rewards' low odds was to
            # saturate the encoder's GRU into one constant latent, which never recovered. (A
            # softmax over the cells starts there with equal logits.)
            out = self.reward_head[-1]
            assert isinstance(out, nn.Linear)
            nn.init.constant_(out.bias, 0.0 if self.categorical else -float(np.log(max(cells - 1, 1))))
        else:
            self.decode_embed_state = nn.Sequential(nn.Linear(lay.obs, c.state_embedding), nn.ReLU())
            self.decode_embed_action = nn.Sequential(nn.Linear(lay.action, c.state_embedding), nn.ReLU())
            self.reward_head = mlp([c.latent_dim + 3 * c.state_embedding, h, h, 1])
        self.state_head = mlp([c.latent_dim + 2 * c.state_embedding, h, h, lay.obs]) if c.decode_state else None
        if self.state_head is not None and lay.grid is not None:
            self.decode_embed_state = nn.Sequential(nn.Linear(lay.obs, c.state_embedding), nn.ReLU())
            self.decode_embed_action = nn.Sequential(nn.Linear(lay.action, c.state_embedding), nn.ReLU())
        # Policy pi(a | s, q(m)).
        self.policy_state = nn.Sequential(nn.Linear(lay.obs + 2, c.policy_embedding), nn.Tanh())
        # The posterior's mean and log-variance drift far from unit scale as the VAE trains; the
        # policy reads them standardised per feature by statistics of recent rollouts (as the
        # reference's running normalisation; buffers, so they are in the checkpoint).
        self.register_buffer("belief_center", torch.zeros(2 * c.latent_dim))
        self.register_buffer("belief_var", torch.ones(2 * c.latent_dim))
        self.register_buffer("belief_updates", torch.zeros((), dtype=torch.long))
        self.decoded_policy = c.policy_belief == "decoded"
        belief_inputs = 2 * c.latent_dim
        if self.decoded_policy:
            if lay.grid is None:
                raise ArgumentError(
                    "policy_belief",
                    f"'decoded' needs a family with a position grid (a MetaGrid family), "
                    f"and {c.env_id} declares none; use 'latent'",
                )
            belief_inputs = lay.grid[0] * lay.grid[1]
        self.policy_belief = nn.Sequential(nn.Linear(belief_inputs, c.policy_embedding), nn.Tanh())
        self.policy = nn.Sequential(nn.Linear(2 * c.policy_embedding, c.policy_hidden), nn.Tanh())
        self.add_heads(action_space, c.policy_hidden)

    # -- the memory agent's interface --------------------------------------------------------
    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, self.hidden_size), dtype=np.float32)

    def encode(self, tokens: torch.Tensor, hidden: torch.Tensor, starts: torch.Tensor) -> tuple[Belief, torch.Tensor]:
        """Posteriors (T, N, latent) after each token of ``tokens`` (T, N, D) from ``hidden``,
        reset where ``starts`` is 1; and the last GRU state."""
        state, action, reward, _ = self.layout.parts(tokens)
        parts = [self.embed_state(state), self.embed_reward(reward)]
        if self.embed_action is not None:
            parts.insert(1, self.embed_action(action))
        out, last = gru_unroll(self.gru, torch.cat(parts, -1), hidden, starts)
        return self.belief_of(out), last

    def belief_of(self, hidden: torch.Tensor) -> Belief:
        """The posterior that GRU states ``hidden`` (..., H) stand for."""
        return Belief(self.to_mean(hidden), self.to_logvar(hidden))

    def act_features(self, tokens: torch.Tensor, belief: Belief) -> torch.Tensor:
        """The policy body's features of tokens and their beliefs."""
        state = self.layout.parts(tokens)[0]
        if self.decoded_policy:  # the decoded map: probabilities, no statistics needed
            with torch.set_grad_enabled(self.through_encoder and torch.is_grad_enabled()):
                b = self.cell_probs(belief.mean)
        else:
            b = torch.cat([belief.mean, belief.logvar], -1)
            b = (b - self.belief_center) / torch.sqrt(self.belief_var + 1e-8)
        return self.policy(torch.cat([self.policy_state(state), self.policy_belief(b)], -1))

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.through_encoder:
            belief, last = self.encode(obs, state, starts)
        else:  # PPO does not train the encoder: the belief is an input, as the state is
            with torch.no_grad():
                belief, last = self.encode(obs, state, starts)
        return self.act_features(obs, belief), last

    @torch.no_grad()
    def track_beliefs(self, belief: Belief, horizon: int = 20) -> None:
        """Move the policy's belief statistics toward those of ``belief`` (..., latent): their
        running average over the first ``horizon`` calls, then an average over about the last
        ``horizon`` (the encoder keeps training, so old statistics go stale)."""
        b = torch.cat([belief.mean, belief.logvar], -1).reshape(-1, 2 * self.latent_dim)
        self.belief_updates += 1
        weight = max(1.0 / float(self.belief_updates), 1.0 / horizon)
        self.belief_center.lerp_(b.mean(0), weight)
        self.belief_var.lerp_(b.var(0, unbiased=False), weight)

    # -- decoding ------------------------------------------------------------------------------
    def reward_nll(
        self, z: torch.Tensor, state: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, reached: torch.Tensor
    ) -> torch.Tensor:
        """-log p(r | s', m) (up to a constant for the squared error) of every transition under
        every latent: ``z`` (E, B, L); transitions (M, B, ...); returns (E, M, B)."""
        lay = self.layout
        if lay.grid is not None:
            logits = self.reward_head(z)  # (E, B, cells)
            if self.categorical:  # log p(goal = cell): p(reward at the reached cell) is that cell's share
                logits = F.log_softmax(logits, -1)
            cell = (reached[..., 0] * lay.grid[1] + reached[..., 1]).round().long()  # (M, B)
            index = cell.T[None].expand(z.shape[0], -1, -1)  # (E, B, M)
            picked = logits.gather(-1, index).permute(0, 2, 1)  # (E, M, B)
            target = ((reward[..., 0] - lay.reward_low) / (lay.reward_high - lay.reward_low)).clamp(0, 1)
            target = target[None].expand_as(picked)
            if self.categorical:  # Bernoulli NLL of p = e^picked: log(1 - p) as log(-expm1(log p)), kept finite
                miss = torch.log(-torch.expm1(picked.clamp(max=-1e-6)))
                return -(target * picked + (1 - target) * miss)
            return F.binary_cross_entropy_with_logits(picked, target, reduction="none")
        e, m = z.shape[0], reached.shape[0]
        inputs = torch.cat(
            [self.decode_embed_state(reached), self.decode_embed_state(state), self.decode_embed_action(action)], -1
        )
        x = torch.cat([z[:, None].expand(e, m, *z.shape[1:]), inputs[None].expand(e, *inputs.shape)], -1)
        return (self.reward_head(x)[..., 0] - reward[..., 0]) ** 2

    def state_nll(
        self, z: torch.Tensor, state: torch.Tensor, action: torch.Tensor, reached: torch.Tensor
    ) -> torch.Tensor:
        """Squared error of the decoded next observation, (E, M, B)."""
        assert self.state_head is not None
        e, m = z.shape[0], reached.shape[0]
        inputs = torch.cat([self.decode_embed_state(state), self.decode_embed_action(action)], -1)
        x = torch.cat([z[:, None].expand(e, m, *z.shape[1:]), inputs[None].expand(e, *inputs.shape)], -1)
        return ((self.state_head(x) - reached[None]) ** 2).mean(-1)

    def cell_probs(self, z: torch.Tensor) -> torch.Tensor:
        """The cells decoder's probabilities under latents ``z`` (..., latent): (..., cells); with a
        categorical likelihood p(goal = cell), a distribution over the cells, else p(reward) per cell."""
        logits = self.reward_head(z)
        return torch.softmax(logits, -1) if self.categorical else torch.sigmoid(logits)

    def cells_belief(self, belief: Belief) -> torch.Tensor:
        """The cells decoder's probabilities averaged over the posterior (the belief's predictive,
        as the reference draws it): ``BELIEF_SAMPLES`` fixed standard-normal draws, the same at
        every call (a render or an evaluation is repeatable), (..., cells)."""
        draws = torch.randn(
            (BELIEF_SAMPLES, self.latent_dim), generator=torch.Generator().manual_seed(0), dtype=belief.mean.dtype
        ).to(belief.mean.device)
        shape = (BELIEF_SAMPLES,) + (1,) * (belief.mean.dim() - 1) + (self.latent_dim,)
        z = belief.mean[None] + (0.5 * belief.logvar[None]).exp() * draws.reshape(shape)
        return self.cell_probs(z).mean(0)

    def reward_map(self, belief: Belief) -> np.ndarray | None:
        """What the belief decodes, as a heat map in [0, 1]: on a position grid the probability
        of the goal at every cell (a categorical likelihood: a distribution, summing to 1) or of
        reward at every cell (Bernoulli), averaged over the posterior, (rows, cols); in a plane
        family's view the mean's decoded reward at the centres of a ``FIELD`` x ``FIELD`` grid over
        it (row 0 at the top, as the frame; the agent standing still there), scaled from its lowest
        to its highest value; else None."""
        lay = self.layout
        with torch.no_grad():
            if lay.grid is not None:
                return self.cells_belief(Belief(belief.mean[:1], belief.logvar[:1])).reshape(lay.grid).cpu().numpy()
            if lay.view is None:
                return None
            x_low, x_high, y_low, y_high = lay.view
            device = belief.mean.device
            xs = torch.linspace(x_low, x_high, 2 * FIELD + 1, device=device)[1::2]
            ys = torch.linspace(y_high, y_low, 2 * FIELD + 1, device=device)[1::2]
            points = torch.zeros(FIELD * FIELD, lay.obs, device=device)
            points[:, 1], points[:, 0] = ys.repeat_interleave(FIELD), xs.repeat(FIELD)
            still = torch.zeros(FIELD * FIELD, lay.action, device=device)
            field = self.reward_field(belief.mean[:1], points, still).reshape(FIELD, FIELD)
            span = field.max() - field.min()
            return ((field - field.min()) / span if span > 0 else torch.zeros_like(field)).cpu().numpy()

    def reward_field(self, z: torch.Tensor, points: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The MLP decoder's reward for reaching each of ``points`` (P, obs) from itself with
        ``action`` (P, action) under latent ``z`` (1, latent); (P,)."""
        inputs = torch.cat(
            [self.decode_embed_state(points), self.decode_embed_state(points), self.decode_embed_action(action)], -1
        )
        return self.reward_head(torch.cat([z.expand(len(points), -1), inputs], -1))[..., 0]

    def map_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """The (row, col) of :meth:`reward_map` that observation ``obs`` stands at, None outside."""
        lay = self.layout
        if lay.grid is not None:
            return round(float(obs[0])), round(float(obs[1]))
        if lay.view is None:
            return None
        x_low, x_high, y_low, y_high = lay.view
        row = int((y_high - float(obs[1])) / (y_high - y_low) * FIELD)
        col = int((float(obs[0]) - x_low) / (x_high - x_low) * FIELD)
        return (row, col) if 0 <= row < FIELD and 0 <= col < FIELD else None


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, mean0: torch.Tensor, logvar0: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(mean0, e^logvar0)) of diagonal Gaussians, summed over the last axis."""
    return 0.5 * (logvar0 - logvar - 1 + (logvar.exp() + (mean - mean0) ** 2) / logvar0.exp()).sum(-1)


def elbo_terms(
    net: VariBADNetwork,
    tokens: torch.Tensor,
    reached: torch.Tensor,
    lengths: torch.Tensor,
    noise: torch.Tensor,
    elbo_index: torch.Tensor | None = None,
    decode_index: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The negative ELBO's terms for a batch of B trials, each averaged over the trials.

    Args:
        net: The network (its encoder and decoders).
        tokens: (H + 1, B, D) trial tokens: trial b's ``lengths[b] + 1`` tokens, then padding.
        reached: (H, B, obs) the state each transition reached.
        lengths: (B,) transitions per trial.
        noise: (H + 1, B, latent) standard normal draws, one latent sample per posterior.
        elbo_index: (K, B) posteriors to decode from (none: all valid ones).
        decode_index: (M, B) transitions to decode (none: all valid ones).

    Returns:
        ``reward`` (sum over posteriors and transitions of -log p(r | s', m)), ``state`` (the
        same for the next state, 0 without a state decoder) and ``kl`` (sum over posteriors of
        KL to the previous one, the first's to N(0, I)).
    """
    steps, batch = reached.shape[0], tokens.shape[1]
    starts = torch.zeros(steps + 1, batch, device=tokens.device)
    starts[0] = 1
    hidden = torch.zeros(batch, net.hidden_size, device=tokens.device)
    belief, _ = net.encode(tokens, hidden, starts)
    valid_elbo = (torch.arange(steps + 1, device=tokens.device)[:, None] <= lengths[None]).float()  # (H+1, B)
    prior_mean = torch.cat([torch.zeros_like(belief.mean[:1]), belief.mean[:-1]])
    prior_logvar = torch.cat([torch.zeros_like(belief.logvar[:1]), belief.logvar[:-1]])
    kl = (gaussian_kl(belief.mean, belief.logvar, prior_mean, prior_logvar) * valid_elbo).sum(0).mean()
    z = belief.mean + (0.5 * belief.logvar).exp() * noise  # (H+1, B, latent)
    _, action, reward, obs = net.layout.parts(tokens)
    # Transition t: the state of token t, the action and reward that token t + 1 reports.
    transitions = {"state": obs[:-1], "action": action[1:], "reward": reward[1:], "reached": reached}
    valid_decode = valid_elbo[1:]  # transition t of trial b exists where t < lengths[b]
    columns = torch.arange(batch, device=tokens.device)
    if elbo_index is not None:
        z, valid_elbo = z[elbo_index, columns], torch.ones(elbo_index.shape, device=tokens.device)
    if decode_index is not None:
        transitions = {key: value[decode_index, columns] for key, value in transitions.items()}
        valid_decode = torch.ones(decode_index.shape, device=tokens.device)
    mask = valid_elbo[:, None] * valid_decode[None]  # (E, M, B)
    rec = net.reward_nll(z, transitions["state"], transitions["action"], transitions["reward"], transitions["reached"])
    out = {"reward": (rec * mask).sum((0, 1)).mean(), "kl": kl, "state": torch.zeros((), device=tokens.device)}
    if net.state_head is not None:
        nll = net.state_nll(z, transitions["state"], transitions["action"], transitions["reached"])
        out["state"] = (nll * mask).sum((0, 1)).mean()
    return out


class VariBADAgent(MemoryAgent):
    """The acting VariBAD agent (SB3's ``predict``), which also shows its belief."""

    network: VariBADNetwork

    def belief(self, state: np.ndarray) -> Belief:
        """The posterior that memory ``state`` (as ``predict`` returns it) stands for."""
        h = torch.as_tensor(np.asarray(state, np.float32), device=self.network.actor.weight.device)
        with torch.no_grad():
            return self.network.belief_of(h)

    @property
    def belief_kind(self) -> str:
        """What :meth:`belief_entropy` measures: ``"goal"`` the entropy of the belief over the
        goal's cell (a categorical cells decoder), else ``"latent"`` the Gaussian posterior's
        differential entropy."""
        return "goal" if self.network.categorical else "latent"

    def belief_entropy(self, state: np.ndarray) -> np.ndarray:
        """Each row's belief entropy in nats (what ``metagym evaluate`` records per step): of the
        distribution over the goal's cell where the decoder has one, else of the latent posterior."""
        goal = self.goal_belief(state)
        if goal is not None:
            p = goal.reshape(len(goal), -1)
            return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)
        return self.belief(state).entropy().cpu().numpy()

    def goal_belief(self, state: np.ndarray) -> np.ndarray | None:
        """Each row's belief over the goal's cell, (N, rows, cols) summing to 1 per row, with a
        categorical cells decoder (``reward_likelihood='categorical'``); else None."""
        net = self.network
        if not net.categorical or net.layout.grid is None:
            return None
        with torch.no_grad():
            probs = net.cells_belief(self.belief(state)).double().cpu().numpy()
        probs /= probs.sum(-1, keepdims=True)  # float32 softmax sums to 1 within 1e-6
        return probs.reshape(len(probs), *net.layout.grid)

    def reward_map(self, state: np.ndarray) -> np.ndarray | None:
        """Row 0's decoded reward map (:meth:`VariBADNetwork.reward_map`); None where the family
        declares neither a position grid nor a view."""
        return self.network.reward_map(self.belief(np.asarray(state)[:1]))

    def map_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """Where observation ``obs`` lies on :meth:`reward_map` (row, col); None outside it."""
        return self.network.map_cell(obs)


class VariBAD(OnPolicy):
    """VariBAD: :class:`VariBADNetwork` trained by the shared on-policy learner (PPO on the
    policy) and, after every PPO update, ``vae_updates`` VAE steps on recent trials."""

    Config = VariBADConfig
    config: VariBADConfig
    stateful: ClassVar[tuple[str, ...]] = (*OnPolicy.stateful, "vae_optimizer", "vae_noise", "vae_rng", "buffer")

    def __init__(self, config: VariBADConfig, device: str = "cpu") -> None:
        super().__init__(config, device)
        net = self.agent.network
        vae_seq = np.random.SeedSequence([config.seed, 2])  # apart from the learner's own streams
        noise_seq, draw_seq = vae_seq.spawn(2)
        self.vae_noise = torch.Generator(self.device).manual_seed(int(noise_seq.generate_state(1)[0]))
        self.vae_rng = np.random.default_rng(draw_seq)
        policy = ("policy", "actor", "critic", "log_std")
        self.vae_optimizer = torch.optim.Adam(
            [p for name, p in net.named_parameters() if not name.startswith(policy)], lr=config.vae_learning_rate
        )
        self.buffer = TrialBuffer(config.vae_buffer_trials, self.obs.shape[1], net.layout.obs)
        self.recorder = TrialRecorder(self.buffer, config.num_envs, config.rollout_steps)

    @classmethod
    def build_network(
        cls, config: VariBADConfig, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> VariBADNetwork:
        dim = int(np.prod(observation_space.shape or (1,)))
        layout = layout_of(config.env_id, action_space, dim, config.reward_decoder, config.env_kwargs)
        return VariBADNetwork(layout, action_space, config)

    @classmethod
    def build_agent(cls, config: Any, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> Any:
        network = cls.build_network(config, observation_space, action_space)
        return VariBADAgent(config, network, observation_space, action_space)

    @property
    def log_fields(self) -> list[str]:
        return [*super().log_fields, "vae_reward_loss", "vae_state_loss", "vae_kl"]

    def learn(self, update: int) -> dict[str, float]:
        # With vae_anneal_lr the VAE's step size follows the policy's schedule: late in a run the
        # encoder stops moving when the policy, at a small step size, could no longer follow a
        # change in what the latent means.
        c = self.config
        if c.vae_anneal_lr:
            self.vae_optimizer.param_groups[0]["lr"] = (
                c.vae_learning_rate * self.learning_rate(update) / c.learning_rate
            )
        return super().learn(update)

    # -- recording trials ------------------------------------------------------------------------
    def observed(self, t: int, obs: np.ndarray, reward: np.ndarray, ended: np.ndarray, infos: dict[str, Any]) -> None:
        self.recorder.observed(t, obs, ended, infos)

    def collect(self) -> Rollout[np.ndarray]:
        buf = super().collect()
        self.recorder.file(buf.obs)
        return buf

    # -- training ----------------------------------------------------------------------------------
    def train_on(self, buf: Rollout[np.ndarray]) -> dict[str, float]:
        stats = super().train_on(buf)
        # The statistics move after PPO (which must see the inputs the rollout acted on) and
        # before the VAE moves the encoder: the next rollout acts on the updated ones.
        net = self.agent.network
        with torch.no_grad():
            obs = torch.as_tensor(buf.obs, device=self.device)
            hidden = torch.as_tensor(buf.hidden0, device=self.device)
            belief, _ = net.encode(obs, hidden, torch.as_tensor(buf.starts, device=self.device))
        net.track_beliefs(belief)
        if not self.buffer.count:  # no trial has ended yet: nothing to learn the belief from (blank in the log)
            return stats
        terms: dict[str, float] = {}
        for _ in range(self.config.vae_updates):
            terms = self.vae_step()
        if not terms:
            return stats
        return stats | {"vae_reward_loss": terms["reward"], "vae_state_loss": terms["state"], "vae_kl": terms["kl"]}

    def vae_step(self) -> dict[str, float]:
        """One VAE step on a batch of buffered trials; the loss terms."""
        c, net, device = self.config, self.agent.network, self.device
        assert isinstance(c, VariBADConfig)
        tokens, reached, lengths = self.buffer.sample(self.vae_rng, c.vae_batch_trials)
        batch = len(lengths)
        elbo_index = decode_index = None
        if c.vae_subsample_elbos is not None:
            u = self.vae_rng.random((c.vae_subsample_elbos, batch))
            elbo_index = torch.as_tensor((u * (lengths + 1)).astype(np.int64), device=device)
        if c.vae_subsample_decodes is not None:
            u = self.vae_rng.random((c.vae_subsample_decodes, batch))
            decode_index = torch.as_tensor((u * lengths).astype(np.int64), device=device)
        shape = (tokens.shape[0], batch, c.latent_dim)
        noise = torch.randn(shape, generator=self.vae_noise, device=device)
        terms = elbo_terms(
            net,
            torch.as_tensor(tokens, device=device),
            torch.as_tensor(reached, device=device),
            torch.as_tensor(lengths, device=device),
            noise,
            elbo_index,
            decode_index,
        )
        loss = terms["reward"] + c.state_loss_coef * terms["state"] + c.kl_weight * terms["kl"]
        self.vae_optimizer.zero_grad()
        loss.backward()
        self.vae_optimizer.step()
        return {key: value.item() for key, value in terms.items()}

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.recorder.state_dict()}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        super().load_state_dict(state, path)
        self.recorder.load_state_dict(state, path)
