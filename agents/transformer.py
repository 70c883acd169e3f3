"""An in-context transformer agent: RL² with causal attention over the whole trial.

A GRU must squeeze everything a trial has shown into one hidden vector; this agent keeps every
step of the trial (up to ``context`` of them) and attends back over them (TrMRL, Melo 2022;
AMAGO, Grigsby et al. 2024). It sees the same trial observation as RL² (the family's
observation, previous action, previous reward, inner-episode-done flag, episode index), one
token per step, and is trained by the same on-policy learner
(:class:`metagym.agents.common.memory.OnPolicy`): PPO over whole trials. Its own parts are its
config fields and its network:

- a pre-norm causal transformer (``num_layers`` blocks of ``num_heads``-head attention and a
  4x MLP, width ``d_model``) over token embeddings, rotary positions (relative: a cached key
  keeps its meaning at any trial length), a final LayerNorm, then RL²'s actor and critic heads;
- the memory state is a **key/value cache**: per sub-env, the trial position of the next token
  and, for every layer, the rotated keys and the values of the last ``context - 1`` tokens of
  the current trial. Acting one step costs one token's attention over the cache; training runs
  a rollout segment as one batched causal pass that also attends to the segment's stored cache
  (the counterpart of RL²'s stored GRU state, truncated back-propagation: no gradient flows into
  the cache);
- each token attends to itself and at most ``context - 1`` earlier tokens **of its own trial**.
  A trial longer than ``context`` is seen through a sliding window of its last ``context``
  steps (:attr:`Transformer.note` says so when a run's trials can be longer).

Example:
    >>> from metagym.agents.transformer import TransformerConfig
    >>> from metagym.agents.common.trainer import Trainer
    >>> trainer = Trainer(TransformerConfig(env_id="MetaBandit-v0", num_envs=8, rollout_steps=10), "runs/x")
    >>> trainer.run(progress=False, stop_after=1)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metagym.agents.common.memory import MemoryConfig, MemoryNetwork, OnPolicy, Rollout
from metagym.agents.common.settings import setting
from metagym.agents.common.validation import check_config
from metagym.errors import ArgumentError

__all__ = ["Transformer", "TransformerConfig", "TransformerNetwork"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig(MemoryConfig):
    """Everything that defines a transformer run (saved as ``config.json``): the fields every
    memory agent shares (:class:`~metagym.agents.common.memory.MemoryConfig`) and the
    transformer's own."""

    agent: ClassVar[str] = "transformer"
    own_counts: ClassVar[tuple[str, ...]] = ("d_model", "num_layers", "num_heads", "context")

    d_model: int = setting(64, "Width of the token embeddings and of every block.")
    num_layers: int = setting(2, "Transformer blocks.")
    num_heads: int = setting(4, "Attention heads per block (must divide d_model into even head widths).")
    context: int = setting(
        128,
        "Tokens a step attends to (itself and the last context - 1 steps of its trial); a longer "
        "trial is seen through a sliding window of this many steps.",
    )
    dropout: float = setting(0.0, "Dropout on attention weights and residual branches while training.")
    warmup_updates: int = setting(0, "Updates over which the learning rate rises linearly from 0 (then anneals).")
    mlp_embedding: bool = setting(
        False,
        "Embed each step by a two-layer MLP (products such as 'this arm paid' exist before the first "
        "attention averages over the trial) instead of one linear map.",
    )

    def validate(self) -> Any:
        super().validate()
        check_config(self, (), (), ("dropout",))
        if isinstance(self.warmup_updates, bool) or not isinstance(self.warmup_updates, int) or self.warmup_updates < 0:
            raise ArgumentError("warmup_updates", f"expected an integer >= 0, got {self.warmup_updates!r}")
        if self.dropout >= 1:
            raise ArgumentError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.d_model % self.num_heads or (self.d_model // self.num_heads) % 2:
            raise ArgumentError(
                "num_heads",
                f"must divide d_model ({self.d_model}) into heads of even width (rotary "
                f"positions rotate pairs), got {self.num_heads}",
            )
        # The acting state holds every layer's keys and values of `context` tokens per sub-env:
        # refuse a cache larger than this machine's memory before anything allocates it.
        cache = 4 * self.num_envs * (1 + 2 * self.num_layers * self.d_model * self.context)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if cache > memory:
            raise ArgumentError(
                "context",
                f"{self.context:,} tokens of key/value cache for {self.num_envs:,} envs would take "
                f"{cache / 2**30:,.1f} GiB, more than this machine's {memory / 2**30:,.1f} GiB; a trial's length "
                f"(in steps) is enough",
            )
        return self


def rotary(positions: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines (..., width / 2) of rotary position encoding (Su et al. 2021) at
    integer ``positions`` (...)."""
    half = width // 2
    freq = 10000.0 ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angle = positions[..., None].float() * freq
    return angle.cos(), angle.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` (..., Dh) with its channel pairs (c, c + Dh/2) turned by the angles of ``cos`` and
    ``sin`` (broadcast to (..., Dh/2)): a query-key product then depends on their distance only."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, drop: Any) -> torch.Tensor:
    """Softmax attention of queries (N, H, T, Dh) over keys and values (N, H, S, Dh); ``bias``
    (N, 1, T, S) is 0 where a query may look and -inf where it may not; ``drop`` is the
    dropout applied to the attention weights."""
    weights = torch.baddbmm(
        bias.expand(-1, q.shape[1], -1, -1).reshape(-1, q.shape[2], k.shape[2]),
        (q * q.shape[-1] ** -0.5).reshape(-1, q.shape[2], q.shape[3]),
        k.reshape(-1, k.shape[2], k.shape[3]).transpose(1, 2),
    ).softmax(dim=-1)
    return (drop(weights) @ v.reshape(-1, v.shape[2], v.shape[3])).view(q.shape)


class Block(nn.Module):
    """Pre-norm block: x + attention(LN x), then x + MLP(LN x). The network runs the attention
    (over its cache); the block makes the queries, keys and values and finishes the residuals."""

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def qkv_of(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Rotated queries and keys, and values, (N, H, T, Dh) of ``x`` (N, T, D)."""
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        return rotate(q, cos, sin), rotate(k, cos, sin), v

    def finish(self, x: torch.Tensor, attended: torch.Tensor, drop: Any) -> torch.Tensor:
        """The block's output for input ``x`` (N, T, D) given its attention output (N, H, T, Dh),
        ``drop`` (dropout) applied to both residual branches."""
        n, t, d = x.shape
        x = x + drop(self.proj(attended.transpose(1, 2).reshape(n, t, d)))
        return x + drop(self.mlp(self.norm2(x)))


class TransformerNetwork(MemoryNetwork):
    """Token embedding -> causal transformer over the trial -> LayerNorm -> actor and critic.

    The memory state of a sub-env is one float32 row: the trial position ``p`` of its next
    token, then a ring of ``context`` slots holding, for every layer, the rotated key and the
    value of one token of the trial (:attr:`cache_shape`). The token at trial position ``q``
    lives in slot ``q mod context``; a slot is in use once the current trial has written it
    (``slot < p``), so a trial start needs no clearing: its position is 0. An acting step
    (:meth:`step`) writes its token's slot in place and attends over the ring.
    """

    def __init__(
        self,
        obs_dim: int,
        action_space: spaces.Space[Any],
        d_model: int,
        num_layers: int,
        num_heads: int,
        context: int,
        dropout: float = 0.0,
        mlp_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.d_model, self.num_layers, self.num_heads, self.context = d_model, num_layers, num_heads, context
        self.head_width, self.dropout = d_model // num_heads, dropout
        #: Dropout's draws (the learner sets its own seeded generator; None: torch's default).
        self.generator: torch.Generator | None = None
        self.embed: nn.Module = (
            nn.Sequential(nn.Linear(obs_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model))
            if mlp_embedding
            else nn.Linear(obs_dim, d_model)
        )
        self.blocks = nn.ModuleList(Block(d_model, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        for module in self.modules():  # GPT-2's initialisation; residual projections scaled by depth
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            assert isinstance(block, Block)
            for proj in (block.proj, block.mlp[2]):
                assert isinstance(proj, nn.Linear)
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * num_layers))
        self.add_heads(action_space, d_model)

    @property
    def cache_shape(self) -> tuple[int, int, int, int, int]:
        """(layers, keys and values, heads, slots, head width) of one sub-env's cache."""
        return (self.num_layers, 2, self.num_heads, self.context, self.head_width)

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, 1 + math.prod(self.cache_shape)), dtype=np.float32)

    def drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout while training, drawn from :attr:`generator` (so a resumed run draws the same)."""
        if not self.training or not self.dropout:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.dropout
        return x * keep / (1.0 - self.dropout)

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (T, N, D) of T steps of N sub-envs from their cache ``state``, a new trial
        starting where ``starts`` (T, N) is 1; and the state after the last step (a new tensor)."""
        features, written = self._sequence(obs, state, starts)
        return features, written(state.clone())

    def features(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        return self._sequence(obs, state, starts)[0]

    def step(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step (``obs`` (1, N, D)): writes the token's keys and values into ``state``'s
        ring, attends over the ring, and returns its features and ``state`` itself."""
        n, w = starts.shape[1], self.context
        cache = state[:, 1:].view(n, *self.cache_shape)
        p = torch.where(starts[0] > 0, 0, state[:, 0].round().long())  # (N,) this token's position
        first = int(p[0])
        slot: int | torch.Tensor  # one int when every sub-env writes the same slot, else (N,)
        if bool((p == first).all()):
            # Trials in step (bandits, tabular MDPs, GridNavi): one slot written by plain strided
            # copies, and every slot up to it holds a token of this trial in the window, so
            # attention runs over the slots in use with no mask.
            slot, used, bias = first % w, min(first + 1, w), None
            cos, sin = rotary(p[:1, None, None], self.head_width)  # (1, 1, 1, Dh/2)
        else:
            slot, rows, used = p % w, torch.arange(n, device=obs.device), min(int(p.max()) + 1, w)
            # After the write, slot s holds the latest position q <= p with q = s (mod context).
            held = p[:, None] - torch.remainder(p[:, None] - torch.arange(used, device=obs.device)[None], w)
            bias = torch.zeros(n, 1, 1, used, device=obs.device).masked_fill_(held[:, None, None] < 0, float("-inf"))
            cos, sin = rotary(p[:, None, None], self.head_width)  # (N, 1, 1, Dh/2)
        x = self.embed(obs[0])[:, None]  # (N, 1, D)
        for layer, block in enumerate(self.blocks):
            assert isinstance(block, Block)
            q, k, v = block.qkv_of(x, cos, sin)
            if bias is None:
                cache[:, layer, 0, :, slot] = k[:, :, 0]
                cache[:, layer, 1, :, slot] = v[:, :, 0]
            else:
                cache[rows, layer, 0, :, slot] = k[:, :, 0]
                cache[rows, layer, 1, :, slot] = v[:, :, 0]
            keys, values = cache[:, layer, 0, :, :used], cache[:, layer, 1, :, :used]  # (N, H, W', Dh)
            x = block.finish(x, nn.functional.scaled_dot_product_attention(q, keys, values, bias), self.drop)
        state[:, 0] = (p + 1).to(state.dtype)
        return self.norm(x).transpose(0, 1), state

    def _sequence(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Features of a sequence, and a function that writes its tokens into a state's ring."""
        t_len, n = starts.shape
        device, w = obs.device, self.context
        p0 = state[:, 0].round().long()  # trial position of the first new token
        cache = state[:, 1:].view(n, *self.cache_shape)
        arange = torch.arange(t_len, device=device)
        steps = arange[:, None].expand(t_len, n)
        # Index of the last trial start at or before each step (-1: the trial began earlier).
        last_start = torch.where(starts > 0, steps, torch.full_like(steps, -1)).cummax(dim=0).values
        positions = torch.where(last_start < 0, p0[None] + steps, steps - last_start)  # (T, N)
        use_cache = bool((last_start[0] < 0).any())
        # Every sub-env runs one whole trial within the window: PyTorch's causal kernel, no mask.
        causal = not use_cache and t_len <= w and not bool(starts[1:].any())
        explicit = self.training and self.dropout  # dropout on the attention weights: the explicit form
        if causal and not explicit:

            def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # New token j is visible to token i: same trial, j <= i, within the window.
            i, j = arange[:, None], arange[None, :]
            same = last_start.T[:, :, None] == last_start.T[:, None, :]  # (N, T, T)
            mask = same & ((j <= i) & ((i - j) < w))[None]
            if use_cache:
                # Slot s holds the latest position q < p0 with q = s (mod context).
                held = p0[:, None] - 1 - torch.remainder(p0[:, None] - 1 - torch.arange(w, device=device)[None], w)
                distance = (p0[:, None] + arange[None, :])[:, :, None] - held[:, None, :]  # (N, T, W)
                cache_mask = (last_start.T < 0)[:, :, None] & (held >= 0)[:, None, :] & (distance < w)
                mask = torch.cat([cache_mask, mask], dim=2)
            if explicit:
                bias = torch.zeros(mask.shape, device=device, dtype=obs.dtype).masked_fill_(~mask, float("-inf"))
                bias = bias[:, None]

                def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                    return attend(q, k, v, bias, self.drop)
            else:  # PyTorch's fused attention; trials in step (aligned rollouts): one mask for all
                shared = bool((starts == starts[:, :1]).all()) and bool((p0 == p0[0]).all())
                allowed = mask[:1, None] if shared else mask[:, None]

                def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                    return nn.functional.scaled_dot_product_attention(q, k, v, allowed)

        cos, sin = rotary(positions.T[:, None], self.head_width)  # (N, 1, T, Dh/2)
        x = self.embed(obs.transpose(0, 1))  # (N, T, D)
        written = []
        for layer, block in enumerate(self.blocks):
            assert isinstance(block, Block)
            q, k, v = block.qkv_of(x, cos, sin)
            keys = torch.cat([cache[:, layer, 0], k], dim=2) if use_cache else k
            values = torch.cat([cache[:, layer, 1], v], dim=2) if use_cache else v
            x = block.finish(x, attention(q, keys, values), self.drop)
            written.append((k.detach(), v.detach()))

        def write(into: torch.Tensor) -> torch.Tensor:
            # Each sub-env's tokens of its current trial, the last `context` of them, into the ring.
            ring = into[:, 1:].view(n, *self.cache_shape)
            last_segment = torch.clamp(last_start[-1], min=0)[None]  # (1, N)
            which_t, which_n = torch.nonzero((steps >= last_segment) & (steps >= t_len - w), as_tuple=True)
            slot = positions[which_t, which_n] % w
            for layer, (k, v) in enumerate(written):
                ring[which_n, layer, 0, :, slot] = k[which_n, :, which_t]
                ring[which_n, layer, 1, :, slot] = v[which_n, :, which_t]
            into[:, 0] = (positions[-1] + 1).to(into.dtype)
            return into

        return self.norm(x).transpose(0, 1), write


class Transformer(OnPolicy):
    """The in-context transformer: :class:`TransformerNetwork` trained by the shared on-policy
    learner (PPO over whole trials), with an optional learning-rate warm-up."""

    Config = TransformerConfig
    stateful: ClassVar[tuple[str, ...]] = (*OnPolicy.stateful, "dropout_rng")

    def __init__(self, config: TransformerConfig, device: str = "cpu") -> None:
        super().__init__(config, device)
        seed = int(np.random.SeedSequence([config.seed, 1]).generate_state(1)[0])  # apart from the others
        self.dropout_rng = torch.Generator(self.device).manual_seed(seed)
        self.agent.network.generator = self.dropout_rng

    @classmethod
    def build_network(
        cls, config: TransformerConfig, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> TransformerNetwork:
        return TransformerNetwork(
            int(np.prod(observation_space.shape or (1,))),
            action_space,
            config.d_model,
            config.num_layers,
            config.num_heads,
            config.context,
            config.dropout,
            config.mlp_embedding,
        )

    @classmethod
    def agent_from(cls, config: Any, state: dict[str, Any], path: str | Path, device: str = "cpu") -> Any:
        agent = super().agent_from(config, state, path, device)
        agent.network.eval()  # no dropout while acting
        return agent

    def collect(self) -> Rollout[np.ndarray]:
        net = self.agent.network
        net.eval()  # act without dropout; train_on trains with it
        try:
            return super().collect()
        finally:
            net.train()

    def learning_rate(self, update: int) -> float:
        c = self.config
        assert isinstance(c, TransformerConfig)
        rate = super().learning_rate(update)
        if update < c.warmup_updates:
            rate *= (update + 1) / c.warmup_updates
        return rate

    @property
    def note(self) -> str | None:
        c = self.config
        assert isinstance(c, TransformerConfig)
        notes = [super().note or ""]
        family = self.envs.env.get_attr("family")[0]
        longest = int(getattr(family, "horizon", 0) or 0) * int(self.envs.episodes_per_trial)
        if longest > c.context:
            notes.append(
                f"trials last up to {longest:,} steps, longer than context {c.context:,}: each step "
                f"attends to the last {c.context:,} steps of its trial (a sliding window)"
            )
        return "; ".join(x for x in notes if x) or None
