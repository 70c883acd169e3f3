"""The on-policy learner every memory agent shares: rollouts on the batched trial env, GAE, PPO
epochs over whole sequences, and the state that makes a resume exact.

A memory agent (RL², and later agents that keep a belief or attend over the trial) is a
:class:`MemoryNetwork`: ``unroll`` (features of a sequence from a stored state, the state reset
where a trial starts), ``distribution`` and ``value`` heads. :class:`OnPolicy` does the rest:

- rollout: ``rollout_steps`` steps of every sub-env of the trial vector env, one network step per
  env step, actions drawn from the learner's own ``torch.Generator``;
- advantage: :func:`metagym.agents.common.gae.gae` (truncation bootstraps from the final
  observation's value; trials end by termination, so none reaches the learner);
- update: ``update_epochs`` epochs of ``num_minibatches`` minibatches of whole sequences of a
  subset of sub-envs, each unrolled from its stored initial state (truncated BPTT), the clipped
  PPO loss of :func:`ppo_loss` plus :meth:`OnPolicy.extra_loss`;
- state: network, optimiser, the vector env (tasks, streams, dynamics), the observation, memory
  state and trial-start flags in flight, the generators, the recent trials' returns.

An agent on this seam writes its config (a :class:`MemoryConfig` with its own fields), its
network, and :meth:`OnPolicy.build_network`; the loop, logs and checkpoints are the
:class:`~metagym.agents.common.trainer.Trainer`'s.
"""

from __future__ import annotations

import dataclasses
import itertools
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metagym.agents.common.checkpoint import field, load_weights, to_array
from metagym.agents.common.gae import gae
from metagym.agents.common.settings import (
    env_kwargs_setting,
    gamma_setting,
    selected_on_setting,
    setting,
    torch_threads_setting,
    total_steps_setting,
)
from metagym.agents.common.trainer import Algorithm
from metagym.agents.common.validation import check_config
from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.registration import env_kwargs_of
from metagym.snapshot import env_state, restore_env_state
from metagym.wrappers import make_trial_vector

Array = TypeVar("Array", np.ndarray, torch.Tensor)


class Rollout(NamedTuple, Generic[Array]):
    """One update's rollout, time-major (``T`` = rollout_steps, ``N`` = num_envs): numpy arrays
    from :meth:`OnPolicy.collect`, the same as tensors where :meth:`OnPolicy.train_on` learns."""

    obs: Array  #: (T, N, obs_dim) the trial observation each step acted on
    starts: Array  #: (T, N) 1 where a trial began at that step (the memory resets there)
    actions: Array  #: (T, N, *action_shape) the actions taken (float; a Discrete one as its index)
    logp: Array  #: (T, N) their log-probability under the acting policy
    values: Array  #: (T, N) the critic's value at each step
    rewards: Array  #: (T, N) as PPO learns them: normalised, scaled, truncations bootstrapped
    terminals: Array  #: (T, N) 1 where a trial ended after that step
    hidden0: Array  #: (N, ...) the memory state before the first step
    last_value: Array  #: (N,) the critic's value after the last step


#: The actor head's initial orthogonal gain unless a config's ``actor_gain`` says otherwise.
ACTOR_GAIN = 0.01


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """What every on-policy memory agent's run shares (saved as ``config.json``)."""

    #: The registered agent this config belongs to (each agent's config class sets its own).
    agent: ClassVar[str] = ""

    env_id: str = setting(
        "MetaGrid-GridNavi-v0", "Family id to meta-train on (its trial form is built with episodes_per_trial)."
    )
    episodes_per_trial: int | None = setting(None, "Episodes per trial, K; none: the family's default.")
    env_kwargs: dict[str, Any] | None = env_kwargs_setting()  # noqa: RUF009 (a None default, not a shared dict)
    total_steps: int = total_steps_setting(1_000_000)
    num_envs: int = setting(256, "Trials in flight (sub-envs of the batched trial env).")
    rollout_steps: int = setting(128, "Steps per sub-env per update: the truncated-BPTT window.")
    learning_rate: float = setting(1e-3, "Adam's step size, annealed linearly to 0 when anneal_lr.")
    anneal_lr: bool = setting(True, "Anneal the learning rate to 0 over the run.")
    gamma: float = gamma_setting()
    gae_lambda: float = setting(0.95, "GAE's lambda.")
    reward_scale: float = setting(
        1.0,
        "Rewards are multiplied by this for learning (logs show unscaled returns): keeps value targets "
        "near unit size when trial returns are large.",
    )
    normalize_rewards: bool = setting(
        False,
        "Divide the rewards PPO learns from by the running standard deviation of each sub-env's "
        "discounted return, clipped to [-10, 10] (VecNormalize's rule, which the VariBAD code applies); "
        "the agent's inputs and the logs keep the raw rewards.",
    )
    update_epochs: int = setting(4, "PPO epochs per rollout.")
    num_minibatches: int = setting(4, "Minibatches per epoch (split across sub-envs, whole sequences each).")
    clip_coef: float = setting(0.2, "PPO's clipping range.")
    ent_coef: float = setting(0.01, "Entropy bonus.")
    vf_coef: float = setting(0.5, "Value-loss weight.")
    norm_adv: bool = setting(
        True, "Normalise the advantages within each minibatch (CleanRL's norm_adv; the RL² reference does not)."
    )
    max_grad_norm: float = setting(0.5, "Gradient clipping.")
    actor_gain: float = setting(
        ACTOR_GAIN,
        "Scale of the actor head's initial orthogonal weights: 0.01 starts near the uniform policy "
        "(CleanRL's PPO); 1.4 gives each action's weights the norm of a Xavier-normal head, as the RL² "
        "reference initialises it: a random policy far from uniform at the start.",
    )
    seed: int = setting(0, "Root seed: environments, network initialisation, sampling and minibatches.")
    torch_threads: int = torch_threads_setting("one is fastest for networks this small (two were 7x slower)")
    selected_on: str = selected_on_setting()

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_size)

    #: Count fields of the agent's own (checked to be integers >= 1 by :meth:`validate`).
    own_counts: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> Any:
        """Return self, or raise ValueError naming the first bad field."""
        counts = ("total_steps", "num_envs", "rollout_steps", "update_epochs", "num_minibatches")
        positive = ("learning_rate", "clip_coef", "max_grad_norm", "reward_scale", "actor_gain")
        check_config(
            self,
            (*counts, *self.own_counts, "torch_threads"),
            positive,
            ("gamma", "gae_lambda"),
            ("ent_coef", "vf_coef"),
        )
        if self.num_envs % self.num_minibatches:
            raise ArgumentError(
                "num_minibatches", f"must divide num_envs ({self.num_envs}), got {self.num_minibatches}"
            )
        return self


def sample_action(logits_or_mean: torch.Tensor, std: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """An action drawn with ``generator`` (on the tensors' device): Gumbel-max from logits
    (``std`` None), else a Gaussian sample around the mean (each learner owns its generator:
    runs in one process stay apart)."""
    shape, device = logits_or_mean.shape, logits_or_mean.device
    if std is None:
        u = torch.rand(shape, generator=generator, device=device).clamp_min(1e-20)
        return (logits_or_mean - (-u.log()).log()).argmax(-1)
    return logits_or_mean + std * torch.randn(shape, generator=generator, device=device)


def gru_unroll(
    gru: nn.GRU, x: torch.Tensor, hidden: torch.Tensor, starts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (T, N, H) of ``gru`` over inputs ``x`` (T, N, D) from ``hidden`` (N, H), the state
    reset to zero where ``starts`` (T, N) is 1; and the last state.

    The sequence is cut only at steps where some sub-env starts a trial, and each piece runs
    through the GRU in one call: trials of equal length (bandits, tabular MDPs, GridNavi) start
    together, so a rollout is a few long pieces, not T short ones.
    """
    cuts = [0, *(torch.nonzero(starts[1:].any(dim=1)).flatten() + 1).tolist(), x.shape[0]]
    out = []
    h = hidden[None]
    for a, b in itertools.pairwise(cuts):
        h = h * (1.0 - starts[a])[None, :, None]
        y, h = gru(x[a:b], h)
        out.append(y)
    return torch.cat(out), h[0]


class MemoryNetwork(nn.Module):
    """What :class:`OnPolicy` needs of a memory agent's network: a Categorical (Discrete) or
    Gaussian (Box) actor and a critic over the features that :meth:`unroll` gives."""

    critic: nn.Linear
    actor: nn.Linear

    def add_heads(self, action_space: spaces.Space[Any], features: int) -> None:
        """Add the critic, then the actor (and a Gaussian's state-independent log std) over
        ``features``, initialised as CleanRL's PPO: small orthogonal actor weights, unit critic
        weights, zero biases. Call it after the body (parameters are drawn in creation order)."""
        self.critic = nn.Linear(features, 1)
        self.discrete = isinstance(action_space, spaces.Discrete)
        if isinstance(action_space, spaces.Discrete):
            self.actor = nn.Linear(features, int(action_space.n))
        elif isinstance(action_space, spaces.Box):
            self.actor = nn.Linear(features, int(np.prod(action_space.shape)))
            self.log_std = nn.Parameter(torch.full((int(np.prod(action_space.shape)),), -0.5))
        else:
            raise ArgumentTypeError("action_space", f"memory agents support Discrete and Box, got {action_space}")
        nn.init.orthogonal_(self.actor.weight, ACTOR_GAIN)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, 1.0)
        nn.init.zeros_(self.critic.bias)

    @abstractmethod
    def initial_state(self, n: int) -> np.ndarray:
        """The memory of ``n`` sub-envs before any step: (n, ...) float32."""

    @abstractmethod
    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (T, N, F) of observations (T, N, D) from ``state``, reset where ``starts``
        (T, N) is 1; and the state after the last step."""

    def features(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """:meth:`unroll`'s features alone (the PPO update needs no final state)."""
        return self.unroll(obs, state, starts)[0]

    def step(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`unroll` of one step (``obs`` (1, N, D)) where the caller gives ``state`` up: a
        network may update it in place and return it (a cache writes one slot instead of copying
        itself). The default is :meth:`unroll`."""
        return self.unroll(obs, state, starts)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features)[..., 0]

    def distribution(self, features: torch.Tensor) -> torch.distributions.Distribution:
        if self.discrete:
            return torch.distributions.Categorical(logits=self.actor(features))
        return torch.distributions.Normal(self.actor(features), self.log_std.exp())

    def sample(self, dist: torch.distributions.Distribution, generator: torch.Generator) -> torch.Tensor:
        if self.discrete:
            assert isinstance(dist, torch.distributions.Categorical)
            return sample_action(dist.logits, None, generator)
        assert isinstance(dist, torch.distributions.Normal)
        return sample_action(dist.mean, dist.stddev, generator)

    def log_prob(self, dist: torch.distributions.Distribution, action: torch.Tensor) -> torch.Tensor:
        logp = dist.log_prob(action)
        return logp if self.discrete else logp.sum(-1)

    def entropy(self, dist: torch.distributions.Distribution) -> torch.Tensor:
        entropy = dist.entropy()
        return entropy if self.discrete else entropy.sum(-1)


class MemoryAgent:
    """A memory agent that acts through SB3's ``predict`` interface, one trial per row."""

    kind = "memory"

    def __init__(
        self,
        config: MemoryConfig,
        network: MemoryNetwork,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
    ) -> None:
        self.config, self.network, self.action_space = config, network, action_space
        self.obs_dim = int(np.prod(observation_space.shape or (1,)))

    def initial_state(self, n: int) -> np.ndarray:
        return self.network.initial_state(n)

    @classmethod
    def load(cls, run_dir: str | Path) -> Any:
        """The memory agent saved in ``run_dir`` (read without running any code of the file)."""
        from metagym.agents.common.trainer import load_agent

        agent = load_agent(run_dir)
        if not isinstance(agent, cls):
            raise ArgumentError("checkpoint", f"{run_dir} holds a {type(agent).__name__}, not a {cls.__name__}")
        return agent

    def predict(
        self,
        obs: np.ndarray,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions for a batch of trial observations, and the next memory state.

        ``episode_start`` marks sub-envs whose *trial* starts with this observation (the
        state resets there; inner episodes keep it).
        """
        device = self.network.actor.weight.device
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device).reshape(-1, self.obs_dim)
        n = obs_t.shape[0]
        h = torch.tensor(self.initial_state(n) if state is None else state, device=device)  # the caller's stays
        if episode_start is None:
            starts = torch.zeros(1, n, device=device)
        else:
            starts = torch.as_tensor(episode_start, dtype=torch.float32, device=device)[None]
        with torch.no_grad():
            features, h = self.network.step(obs_t[None], h, starts)
            dist = self.network.distribution(features[0])
            if deterministic:
                action = dist.probs.argmax(-1) if self.network.discrete else dist.mean  # type: ignore[attr-defined]
            else:
                action = dist.sample()
        out = action.cpu().numpy()
        if isinstance(self.action_space, spaces.Box):
            out = np.clip(out, self.action_space.low, self.action_space.high).astype(np.float32)
        return out, h.cpu().numpy()


def ppo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    config: MemoryConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped PPO objective over a minibatch (advantages normalised within it unless
    ``config.norm_adv`` is off), and its terms."""
    ratio = (logp - old_logp).exp()
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8) if config.norm_adv else advantages
    clip = config.clip_coef
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
    v_loss = 0.5 * ((values - returns) ** 2).mean()
    ent = entropy.mean()
    loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * ent
    return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": ent}


def _seeds(seed: int) -> tuple[int, int, np.random.Generator]:
    env_seq, torch_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(3)
    return int(env_seq.generate_state(1)[0]), int(torch_seq.generate_state(1)[0]), np.random.default_rng(shuffle_seq)


def make_envs(config: MemoryConfig, num_envs: int | None = None, autoreset: str = "SameStep") -> Any:
    """The batched trial env for ``config`` (``num_envs`` sub-envs)."""
    return make_trial_vector(
        num_envs or config.num_envs,
        config.env_id,
        config.episodes_per_trial,
        autoreset_mode=autoreset,
        **env_kwargs_of(config),
    )


#: The longest trial (in episodes) a memory agent trains on: it keeps each episode's return of its
#: recent trials and logs a column per episode (100-pull bandits, the longest shipped, have 100).
MAX_EPISODES_PER_TRIAL = 10_000


def check_trial_length(config: MemoryConfig, episodes: int, recent_trials: int) -> None:
    """Refuse, before anything per episode is allocated, a trial of more episodes than
    :data:`MAX_EPISODES_PER_TRIAL`, naming what set it and the memory it would take."""
    if episodes <= MAX_EPISODES_PER_TRIAL:
        return
    where = "episodes_per_trial" if config.episodes_per_trial is not None else "env_kwargs"
    source = "" if config.episodes_per_trial is not None else f" ({config.env_id}'s trial length as made)"
    need = episodes * (8 * (recent_trials + config.num_envs) + 40)  # recent returns, partial trials, log header
    raise ArgumentError(
        where,
        f"{episodes:,} episodes per trial{source} would take about {need / 2**30:,.1f} GiB of "
        f"per-episode returns and log columns; a memory agent trains on at most {MAX_EPISODES_PER_TRIAL:,}",
    )


class OnPolicy(Algorithm):
    """PPO over whole trials for a :class:`MemoryNetwork` (see the module docstring)."""

    Config: ClassVar[type] = MemoryConfig
    #: Returns of recent trials are averaged over this many (the log's per-episode returns).
    recent_trials: ClassVar[int] = 200

    @classmethod
    @abstractmethod
    def build_network(cls, config: Any, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> Any:
        """The agent's network (a :class:`MemoryNetwork`) for the trial env's spaces."""

    @classmethod
    def build_agent(cls, config: Any, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> Any:
        network = cls.build_network(config, observation_space, action_space)
        return MemoryAgent(config, network, observation_space, action_space)

    def __init__(self, config: MemoryConfig, device: str = "cpu") -> None:
        self.config, self.device = config.validate(), torch.device(device)
        env_seed, torch_seed, self.shuffle_rng = _seeds(config.seed)
        torch.set_num_threads(config.torch_threads)
        self.envs = make_envs(config)
        check_trial_length(config, int(self.envs.episodes_per_trial), self.recent_trials)
        torch.manual_seed(torch_seed)  # network initialisation (on the CPU: the same weights on any device)
        self.agent = self.build_agent(config, self.envs.single_observation_space, self.envs.single_action_space)
        if config.actor_gain != ACTOR_GAIN:  # scaled, not drawn again: every other weight stays as it was
            with torch.no_grad():
                self.agent.network.actor.weight.mul_(config.actor_gain / ACTOR_GAIN)
        self.agent.network.to(self.device)
        self.sampler = torch.Generator(self.device).manual_seed(torch_seed)  # action sampling
        self.optimizer = torch.optim.Adam(self.agent.network.parameters(), lr=config.learning_rate, eps=1e-5)
        obs, _ = self.envs.reset(seed=env_seed)
        self.obs = obs.astype(np.float32)
        self.starts = np.ones(config.num_envs, dtype=np.float32)
        self.hidden = self.agent.initial_state(config.num_envs)
        self.global_step = 0
        self.recent: list[list[float]] = []  # inner-episode returns of recently finished trials
        self._partial: list[list[float]] = [[] for _ in range(config.num_envs)]
        # normalize_rewards: each sub-env's discounted return so far, and its running moments
        self.discounted = np.zeros(config.num_envs, dtype=np.float64)
        self.return_moments = np.array([0.0, 1.0, 1e-4])  # mean, variance, count (VecNormalize's start)

    @property
    def log_fields(self) -> list[str]:
        episodes = int(self.envs.episodes_per_trial)
        return [f"episode_{i + 1}_return" for i in range(episodes)] + ["policy_loss", "value_loss", "entropy"]

    @property
    def planned_steps(self) -> int:
        return self.config.num_updates * self.config.batch_size

    @property
    def note(self) -> str | None:
        c = self.config
        if c.total_steps == self.planned_steps:
            return None
        return (
            f"trains whole updates of {c.batch_size:,} steps (num_envs x rollout_steps): "
            f"{self.planned_steps:,} steps, not the {c.total_steps:,} asked for"
        )

    def tensors(self) -> Iterable[Any]:
        return self.agent.network.parameters()

    @classmethod
    def agent_from(cls, config: Any, state: dict[str, Any], path: str | Path, device: str = "cpu") -> Any:
        envs = make_envs(config, num_envs=1)
        agent = cls.build_agent(config, envs.single_observation_space, envs.single_action_space)
        load_weights(agent.network, field(state, "network", dict, path), path)
        agent.network.to(device)
        return agent

    # -- checkpoints ---------------------------------------------------------------------------
    #: The optimizer, the action-sampling and minibatch-shuffling generators (restored by type).
    stateful: ClassVar[tuple[str, ...]] = ("optimizer", "sampler", "shuffle_rng")

    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.agent.network.state_dict(),
            **super().state_dict(),
            "envs": env_state(self.envs),
            "obs": self.obs,
            "starts": self.starts,
            "hidden": self.hidden,
            "recent": self.recent,
            "partial": self._partial,
            "discounted": self.discounted,
            "return_moments": self.return_moments,
        }

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        load_weights(self.agent.network, field(state, "network", dict, path), path)
        super().load_state_dict(state, path)
        restore_env_state(self.envs, field(state, "envs", dict, path), f"checkpoint: {path}: envs")
        n, hidden = self.config.num_envs, self.hidden.shape
        self.obs = to_array(state.get("obs"), f"{path}: obs", self.obs.shape, np.float32).copy()
        self.starts = to_array(state.get("starts"), f"{path}: starts", (n,), np.float32).copy()
        self.hidden = to_array(state.get("hidden"), f"{path}: hidden", hidden, np.float32).copy()
        self.recent = [[float(x) for x in r] for r in field(state, "recent", list, path)]
        self._partial = [[float(x) for x in r] for r in field(state, "partial", list, path)]
        if len(self._partial) != n:
            raise ArgumentError("checkpoint", f"{path}: 'partial' has {len(self._partial)} entries, expected {n}")
        if "discounted" in state:  # checkpoints before normalize_rewards existed start from zero, as it did
            self.discounted = to_array(state["discounted"], f"{path}: discounted", (n,), np.float64).copy()
            moments = to_array(state.get("return_moments"), f"{path}: return_moments", (3,), np.float64)
            self.return_moments = moments.copy()

    # -- one update ----------------------------------------------------------------------------
    def learn(self, update: int) -> dict[str, float]:
        self.optimizer.param_groups[0]["lr"] = self.learning_rate(update)
        stats = self.train_on(self.collect())
        return {f"episode_{i + 1}_return": m for i, m in enumerate(self.episode_means())} | stats

    def learning_rate(self, update: int) -> float:
        """Adam's step size for ``update`` (0-based): annealed linearly to 0 when ``anneal_lr``."""
        c = self.config
        return c.learning_rate * (1 - update / c.num_updates) if c.anneal_lr else c.learning_rate

    def progress(self, stats: dict[str, float]) -> str:
        means = [stats[k] for k in stats if k.startswith("episode_")]
        return "return per episode " + " ".join(f"{m:.2f}" for m in means)

    def collect(self) -> Rollout[np.ndarray]:
        """Roll every sub-env forward ``rollout_steps`` steps."""
        c, net = self.config, self.agent.network
        steps, n = c.rollout_steps, c.num_envs
        buf = Rollout(
            obs=np.zeros((steps, n, self.obs.shape[1]), np.float32),
            starts=np.zeros((steps, n), np.float32),
            actions=np.zeros((steps, n, *self.envs.single_action_space.shape), np.float32),
            logp=np.zeros((steps, n), np.float32),
            values=np.zeros((steps, n), np.float32),
            rewards=np.zeros((steps, n), np.float32),
            terminals=np.zeros((steps, n), np.float32),
            hidden0=self.hidden.copy(),
            last_value=np.zeros(n, np.float32),
        )
        device = self.device
        h = torch.tensor(self.hidden, device=device)  # a copy: net.step may write into it
        for t in range(steps):
            buf.obs[t], buf.starts[t] = self.obs, self.starts
            with torch.no_grad():
                obs_t, starts_t = (torch.as_tensor(a, device=device)[None] for a in (self.obs, self.starts))
                features, h = net.step(obs_t, h, starts_t)
                dist = net.distribution(features[0])
                action = net.sample(dist, self.sampler)
                buf.logp[t] = net.log_prob(dist, action).cpu().numpy()
                buf.values[t] = net.value(features[0]).cpu().numpy()
            env_action = action.cpu().numpy()
            if not net.discrete:
                space = self.envs.single_action_space
                env_action = np.clip(env_action, space.low, space.high)
            obs, reward, terminated, truncated, infos = self.envs.step(env_action)
            self.observed(t, obs, reward, terminated | truncated, infos)
            if c.normalize_rewards:
                reward = self.normalized(reward, terminated | truncated)
            reward = reward * c.reward_scale  # values are learnt in scaled units
            if truncated.any():  # trials end by termination; bootstrap any truncation anyway
                final = torch.as_tensor(np.asarray(infos["final_obs"], dtype=np.float32), device=device)[None]
                with torch.no_grad():
                    feats, _ = net.unroll(final, h, torch.zeros(1, n, device=device))
                reward = reward + c.gamma * truncated * net.value(feats[0]).cpu().numpy()
            buf.actions[t] = action.cpu().numpy().reshape(buf.actions[t].shape)
            buf.rewards[t], buf.terminals[t] = reward, terminated | truncated
            self._track(infos)
            self.obs, self.starts = obs.astype(np.float32), (terminated | truncated).astype(np.float32)
        self.hidden = h.cpu().numpy()
        with torch.no_grad():
            obs_t, starts_t = (torch.as_tensor(a, device=device)[None] for a in (self.obs, self.starts))
            features, _ = net.unroll(obs_t, h, starts_t)
            buf.last_value[:] = net.value(features[0]).cpu().numpy()
        self.global_step += steps * n
        return buf

    def normalized(self, reward: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """``reward`` over the running standard deviation of the discounted return, clipped to
        [-10, 10] (``normalize_rewards``): each sub-env's return is discounted and added to, reset
        where its trial ended, and the moments are updated with the batch of returns (Chan et al.'s
        parallel rule, as VecNormalize's RunningMeanStd), before dividing."""
        self.discounted = self.discounted * self.config.gamma + reward
        self.discounted[ended] = 0.0
        mean, var, count = self.return_moments
        batch_mean, batch_var, n = float(self.discounted.mean()), float(self.discounted.var()), self.discounted.size
        delta, total = batch_mean - mean, count + n
        var = (var * count + batch_var * n + delta**2 * count * n / total) / total
        self.return_moments = np.array([mean + delta * n / total, var, total])
        return np.clip(reward / np.sqrt(var + 1e-8), -10.0, 10.0).astype(np.float32)

    def observed(self, t: int, obs: np.ndarray, reward: np.ndarray, ended: np.ndarray, infos: dict[str, Any]) -> None:
        """Called after rollout step ``t`` with what the env returned (``obs`` already starts the
        next trial where ``ended``; the raw ``reward``): an agent that keeps its own record of
        the trials (VariBAD's buffer) reads it here. The default does nothing."""

    def _track(self, infos: dict[str, Any]) -> None:
        for i in np.flatnonzero(infos.get("_inner_return", [])):
            self._partial[i].append(float(infos["inner_return"][i]))
        final = infos.get("final_info", {})
        for i in np.flatnonzero(final.get("_inner_return", [])):
            self.recent.append([*self._partial[i], float(final["inner_return"][i])])
            self._partial[i] = []
        self.recent = self.recent[-self.recent_trials :]

    def extra_loss(self, features: torch.Tensor, batch: Rollout[torch.Tensor], mb: torch.Tensor) -> torch.Tensor | None:
        """An agent's own loss term on minibatch ``mb`` (sub-env indices) of the rollout ``batch``
        (None: PPO's alone)."""
        return None

    def train_on(self, buf: Rollout[np.ndarray]) -> dict[str, float]:
        """PPO epochs over whole-sequence minibatches of sub-envs."""
        c, net = self.config, self.agent.network
        adv, ret = gae(buf.rewards, buf.values, buf.terminals, buf.last_value, c.gamma, c.gae_lambda)
        t = Rollout(*(torch.as_tensor(v, device=self.device) for v in buf))
        b_adv = torch.as_tensor(adv, dtype=torch.float32, device=self.device)
        b_ret = torch.as_tensor(ret, dtype=torch.float32, device=self.device)
        size = c.num_envs // c.num_minibatches
        stats: dict[str, float] = {}
        for _ in range(c.update_epochs):
            order = self.shuffle_rng.permutation(c.num_envs)
            for start in range(0, c.num_envs, size):
                mb = torch.as_tensor(order[start : start + size], device=self.device)
                features = net.features(t.obs[:, mb], t.hidden0[mb], t.starts[:, mb])
                dist = net.distribution(features)
                action = t.actions[:, mb].long() if net.discrete else t.actions[:, mb]
                loss, terms = ppo_loss(
                    net.log_prob(dist, action),
                    t.logp[:, mb],
                    b_adv[:, mb],
                    net.value(features),
                    b_ret[:, mb],
                    net.entropy(dist),
                    c,
                )
                extra = self.extra_loss(features, t, mb)
                if extra is not None:
                    loss = loss + extra
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), c.max_grad_norm)
                self.optimizer.step()
                stats = {name: value.item() for name, value in terms.items()}
        return stats

    def episode_means(self) -> list[float]:
        """Mean return of each inner-episode index over recently finished trials."""
        if not self.recent:
            return []
        k = min(len(r) for r in self.recent)
        return [float(np.mean([r[i] for r in self.recent])) for i in range(k)]
