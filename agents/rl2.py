"""RL² (Duan et al. 2016; Wang et al. 2016): a GRU actor-critic trained with PPO over trials.

The agent sees a family's trial observation (the family's observation, previous action,
previous reward, inner-episode-done flag, episode index) and keeps its GRU state across the K
episodes of a trial, resetting it only when a new trial starts. Rollouts run on the batched
trial env (one task per sub-env, many trials in flight); PPO trains on each rollout segment by
truncated back-propagation through time from the segment's stored initial state.

Reads top to bottom: config, network, rollout, advantage, update, checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metagym.agents.common.checkpoint import (
    CHECKPOINT_SECONDS,
    check_interval,
    config_from,
    extended,
    field,
    generator_from,
    load,
    load_weights,
    save_atomic,
    to_array,
)
from metagym.agents.common.gae import gae
from metagym.agents.common.runlog import (
    Interrupted,
    append_log,
    check_finite,
    run_lock,
    stop_between_updates,
    tensorboard,
    truncate_log,
)
from metagym.agents.common.validation import check_config
from metagym.snapshot import env_state, restore_env_state
from metagym.wrappers import make_trial_vector


@dataclasses.dataclass(frozen=True)
class RL2Config:
    """Everything that defines an RL² run (saved as ``config.json`` in the run folder)."""

    env_id: str = "MetaGrid-GridNavi-v0"
    """Family id to meta-train on (its trial form is built with ``episodes_per_trial``)."""
    episodes_per_trial: int | None = None
    """Episodes per trial, K; None: the family's default."""
    total_steps: int = 1_000_000
    """Environment steps to train for."""
    num_envs: int = 256
    """Trials in flight (sub-envs of the batched trial env)."""
    rollout_steps: int = 128
    """Steps per sub-env per update: the truncated-BPTT window."""
    hidden_size: int = 128
    """Width of the encoder and of the GRU."""
    learning_rate: float = 1e-3
    """Adam's step size, annealed linearly to 0 when ``anneal_lr``."""
    anneal_lr: bool = True
    """Anneal the learning rate to 0 over the run."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this for learning (logs show unscaled returns): keeps value
    targets near unit size when trial returns are large."""
    update_epochs: int = 4
    """PPO epochs per rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (split across sub-envs, whole sequences each)."""
    clip_coef: float = 0.2
    """PPO's clipping range."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping."""
    seed: int = 0
    """Root seed: environments, network initialisation, sampling and minibatches."""
    torch_threads: int = 1
    """Threads for torch: one is fastest for networks this small (two were 7x slower here)."""
    selected_on: str = ""
    """The split these hyperparameters were selected on ("validation"), empty when unknown."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_size)

    def validate(self) -> RL2Config:
        """Return self, or raise ValueError naming the first bad field."""
        counts = ("total_steps", "num_envs", "rollout_steps", "hidden_size", "update_epochs", "num_minibatches")
        positive = ("learning_rate", "clip_coef", "max_grad_norm", "reward_scale")
        check_config(self, (*counts, "torch_threads"), positive, ("gamma", "gae_lambda"), ("ent_coef", "vf_coef"))
        if self.num_envs % self.num_minibatches:
            raise ValueError(f"num_minibatches: must divide num_envs ({self.num_envs}), got {self.num_minibatches}")
        return self


def make_envs(config: RL2Config, num_envs: int | None = None, autoreset: str = "SameStep") -> Any:
    """The batched trial env for ``config`` (``num_envs`` sub-envs)."""
    return make_trial_vector(
        num_envs or config.num_envs, config.env_id, config.episodes_per_trial, autoreset_mode=autoreset
    )


class RL2Network(nn.Module):
    """Encoder -> GRU -> actor and critic heads. Categorical for Discrete, Gaussian for Box."""

    def __init__(self, obs_dim: int, action_space: spaces.Space[Any], hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh())
        self.gru = nn.GRU(hidden, hidden)
        self.critic = nn.Linear(hidden, 1)
        self.discrete = isinstance(action_space, spaces.Discrete)
        if isinstance(action_space, spaces.Discrete):
            self.actor = nn.Linear(hidden, int(action_space.n))
        elif isinstance(action_space, spaces.Box):
            self.actor = nn.Linear(hidden, int(np.prod(action_space.shape)))
            self.log_std = nn.Parameter(torch.full((int(np.prod(action_space.shape)),), -0.5))
        else:
            raise TypeError(f"action_space: RL² supports Discrete and Box, got {action_space}")
        nn.init.orthogonal_(self.actor.weight, 0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, 1.0)
        nn.init.zeros_(self.critic.bias)

    def unroll(
        self, obs: torch.Tensor, hidden: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (T, N, H) of a sequence; the state resets where ``starts`` (T, N) is 1.

        The sequence is cut only at steps where some sub-env starts a trial, and each piece
        runs through the GRU in one call: trials of equal length (bandits, tabular MDPs,
        GridNavi) start together, so a rollout is a few long pieces, not T short ones.
        """
        x = self.encoder(obs)
        cuts = [0, *(torch.nonzero(starts[1:].any(dim=1)).flatten() + 1).tolist(), obs.shape[0]]
        out = []
        h = hidden[None]
        for a, b in itertools.pairwise(cuts):
            h = h * (1.0 - starts[a])[None, :, None]
            y, h = self.gru(x[a:b], h)
            out.append(y)
        return torch.cat(out), h[0]

    def distribution(self, features: torch.Tensor) -> torch.distributions.Distribution:
        if self.discrete:
            return torch.distributions.Categorical(logits=self.actor(features))
        return torch.distributions.Normal(self.actor(features), self.log_std.exp())

    def sample(self, dist: torch.distributions.Distribution, generator: torch.Generator) -> torch.Tensor:
        """A sample drawn from ``generator`` (each trainer owns one: runs in one process stay apart)."""
        if self.discrete:
            assert isinstance(dist, torch.distributions.Categorical)
            u = torch.rand(dist.logits.shape, generator=generator).clamp_min(1e-20)
            return (dist.logits - (-u.log()).log()).argmax(-1)  # Gumbel-max
        assert isinstance(dist, torch.distributions.Normal)
        return dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)

    def log_prob(self, dist: torch.distributions.Distribution, action: torch.Tensor) -> torch.Tensor:
        logp = dist.log_prob(action)
        return logp if self.discrete else logp.sum(-1)

    def entropy(self, dist: torch.distributions.Distribution) -> torch.Tensor:
        entropy = dist.entropy()
        return entropy if self.discrete else entropy.sum(-1)


class RL2Agent:
    """A trained (or training) RL² agent; acts through SB3's ``predict`` interface."""

    def __init__(self, config: RL2Config, observation_space: spaces.Box, action_space: spaces.Space[Any]) -> None:
        self.config, self.action_space = config, action_space
        self.obs_dim = int(np.prod(observation_space.shape))
        self.network = RL2Network(int(np.prod(observation_space.shape)), action_space, config.hidden_size)

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, self.config.hidden_size), dtype=np.float32)

    def predict(
        self,
        obs: np.ndarray,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions for a batch of trial observations, and the next GRU state.

        ``episode_start`` marks sub-envs whose *trial* starts with this observation (the
        state resets there; inner episodes keep it).
        """
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(-1, self.obs_dim)
        n = obs_t.shape[0]
        h = torch.as_tensor(self.initial_state(n) if state is None else state)
        starts = (
            torch.zeros(1, n) if episode_start is None else torch.as_tensor(episode_start, dtype=torch.float32)[None]
        )
        with torch.no_grad():
            features, h = self.network.unroll(obs_t[None], h, starts)
            dist = self.network.distribution(features[0])
            if deterministic:
                action = dist.probs.argmax(-1) if self.network.discrete else dist.mean  # type: ignore[attr-defined]
            else:
                action = dist.sample()
        out = action.numpy()
        if isinstance(self.action_space, spaces.Box):
            out = np.clip(out, self.action_space.low, self.action_space.high).astype(np.float32)
        return out, h.numpy()

    @classmethod
    def load(cls, run_dir: str | Path) -> RL2Agent:
        """The agent saved in ``run_dir/checkpoint.pt`` (read without running any code of the file)."""
        path = Path(run_dir) / "checkpoint.pt"
        state = load(path)
        config = config_from(RL2Config, state, path)
        envs = make_envs(config, num_envs=1)
        agent = cls(config, envs.single_observation_space, envs.single_action_space)
        load_weights(agent.network, field(state, "network", dict, path), path)
        return agent


def _seeds(seed: int) -> tuple[int, int, np.random.Generator]:
    env_seq, torch_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(3)
    return int(env_seq.generate_state(1)[0]), int(torch_seq.generate_state(1)[0]), np.random.default_rng(shuffle_seq)


class Trainer:
    """PPO on the batched trial env, with checkpoints that resume bit for bit."""

    def __init__(self, config: RL2Config, run_dir: str | Path) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        env_seed, torch_seed, self.shuffle_rng = _seeds(config.seed)
        torch.set_num_threads(config.torch_threads)
        self.envs = make_envs(config)
        torch.manual_seed(torch_seed)  # network initialisation
        self.agent = RL2Agent(config, self.envs.single_observation_space, self.envs.single_action_space)
        self.sampler = torch.Generator().manual_seed(torch_seed)  # action sampling
        self.optimizer = torch.optim.Adam(self.agent.network.parameters(), lr=config.learning_rate, eps=1e-5)
        obs, _ = self.envs.reset(seed=env_seed)
        self.obs = obs.astype(np.float32)
        self.starts = np.ones(config.num_envs, dtype=np.float32)
        self.hidden = self.agent.initial_state(config.num_envs)
        self.update, self.global_step, self.elapsed = 0, 0, 0.0
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self.recent: list[list[float]] = []  # inner-episode returns of recently finished trials
        self._partial: list[list[float]] = [[] for _ in range(config.num_envs)]

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the next update depends on, as tensors, numbers, strings and JSON."""
        return {
            "config": dataclasses.asdict(self.config),
            "network": self.agent.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "envs": env_state(self.envs),
            "obs": self.obs,
            "starts": self.starts,
            "hidden": self.hidden,
            "update": self.update,
            "global_step": self.global_step,
            "elapsed": self.elapsed,
            "checkpoint_seconds": self.checkpoint_seconds,
            "sampler": self.sampler.get_state(),
            "shuffle_rng": json.dumps(self.shuffle_rng.bit_generator.state),
            "recent": self.recent,
            "partial": self._partial,
        }

    def save(self) -> None:
        save_atomic(self.state_dict(), self.run_dir / "checkpoint.pt")

    @classmethod
    def resume(cls, run_dir: str | Path, total_steps: int | None = None) -> Trainer:
        """The trainer saved in ``run_dir``, to continue bit for bit (to ``total_steps`` if given)."""
        path = Path(run_dir) / "checkpoint.pt"
        state = load(path)
        config = config_from(RL2Config, state, path)
        if total_steps is not None:
            config = extended(config, total_steps, state.get("global_step"), path)
        trainer = cls(config, run_dir)  # the same envs, network and optimizer, then the saved state
        load_weights(trainer.agent.network, field(state, "network", dict, path), path)
        load_weights(trainer.optimizer, field(state, "optimizer", dict, path), path)
        restore_env_state(trainer.envs, field(state, "envs", dict, path), f"checkpoint: {path}: envs")
        n, hidden = config.num_envs, trainer.hidden.shape
        trainer.obs = to_array(state.get("obs"), f"{path}: obs", trainer.obs.shape, np.float32).copy()
        trainer.starts = to_array(state.get("starts"), f"{path}: starts", (n,), np.float32).copy()
        trainer.hidden = to_array(state.get("hidden"), f"{path}: hidden", hidden, np.float32).copy()
        trainer.update = field(state, "update", int, path)
        trainer.global_step = field(state, "global_step", int, path)
        trainer.elapsed = float(field(state, "elapsed", (int, float), path))
        trainer.checkpoint_seconds = check_interval(state.get("checkpoint_seconds", CHECKPOINT_SECONDS), path)
        trainer.recent = [[float(x) for x in r] for r in field(state, "recent", list, path)]
        trainer._partial = [[float(x) for x in r] for r in field(state, "partial", list, path)]
        if len(trainer._partial) != n:
            raise ValueError(f"checkpoint: {path}: 'partial' has {len(trainer._partial)} entries, expected {n}")
        trainer.shuffle_rng = generator_from(field(state, "shuffle_rng", str, path), f"{path}: shuffle_rng")
        try:
            trainer.sampler.set_state(field(state, "sampler", torch.Tensor, path))
        except RuntimeError as error:
            raise ValueError(f"checkpoint: {path}: 'sampler' is not a torch generator state ({error})") from None
        return trainer

    # -- one update ----------------------------------------------------------------------------
    def collect(self) -> dict[str, np.ndarray]:
        """Roll every sub-env forward ``rollout_steps`` steps."""
        c, net = self.config, self.agent.network
        steps, n = c.rollout_steps, c.num_envs
        buf = {
            "obs": np.zeros((steps, n, self.obs.shape[1]), np.float32),
            "starts": np.zeros((steps, n), np.float32),
            "actions": np.zeros((steps, n, *self.envs.single_action_space.shape), np.float32),
            "logp": np.zeros((steps, n), np.float32),
            "values": np.zeros((steps, n), np.float32),
            "rewards": np.zeros((steps, n), np.float32),
            "terminals": np.zeros((steps, n), np.float32),
            "hidden0": self.hidden.copy(),
        }
        h = torch.as_tensor(self.hidden)
        for t in range(steps):
            buf["obs"][t], buf["starts"][t] = self.obs, self.starts
            with torch.no_grad():
                features, h = net.unroll(torch.as_tensor(self.obs)[None], h, torch.as_tensor(self.starts)[None])
                dist = net.distribution(features[0])
                action = net.sample(dist, self.sampler)
                buf["logp"][t] = net.log_prob(dist, action).numpy()
                buf["values"][t] = net.critic(features[0])[:, 0].numpy()
            env_action = action.numpy()
            if not net.discrete:
                space = self.envs.single_action_space
                env_action = np.clip(env_action, space.low, space.high)
            obs, reward, terminated, truncated, infos = self.envs.step(env_action)
            reward = reward * c.reward_scale  # values are learnt in scaled units
            if truncated.any():  # trials end by termination; bootstrap any truncation anyway
                final = torch.as_tensor(np.asarray(infos["final_obs"], dtype=np.float32))[None]
                with torch.no_grad():
                    feats, _ = net.unroll(final, h, torch.zeros(1, n))
                reward = reward + c.gamma * truncated * net.critic(feats[0])[:, 0].numpy()
            buf["actions"][t] = action.numpy().reshape(buf["actions"][t].shape)
            buf["rewards"][t], buf["terminals"][t] = reward, terminated | truncated
            self._track(infos)
            self.obs, self.starts = obs.astype(np.float32), (terminated | truncated).astype(np.float32)
        self.hidden = h.numpy()
        with torch.no_grad():
            features, _ = net.unroll(torch.as_tensor(self.obs)[None], h, torch.as_tensor(self.starts)[None])
            buf["last_value"] = net.critic(features[0])[:, 0].numpy()
        self.global_step += steps * n
        return buf

    def _track(self, infos: dict[str, Any]) -> None:
        for i in np.flatnonzero(infos.get("_inner_return", [])):
            self._partial[i].append(float(infos["inner_return"][i]))
        final = infos.get("final_info", {})
        for i in np.flatnonzero(final.get("_inner_return", [])):
            self.recent.append([*self._partial[i], float(final["inner_return"][i])])
            self._partial[i] = []
        self.recent = self.recent[-200:]

    def learn(self, buf: dict[str, np.ndarray]) -> dict[str, float]:
        """PPO epochs over whole-sequence minibatches of sub-envs."""
        c, net = self.config, self.agent.network
        adv, ret = gae(buf["rewards"], buf["values"], buf["terminals"], buf["last_value"], c.gamma, c.gae_lambda)
        t = {k: torch.as_tensor(v) for k, v in buf.items()}
        b_adv, b_ret = torch.as_tensor(adv, dtype=torch.float32), torch.as_tensor(ret, dtype=torch.float32)
        size = c.num_envs // c.num_minibatches
        stats: dict[str, float] = {}
        for _ in range(c.update_epochs):
            order = self.shuffle_rng.permutation(c.num_envs)
            for start in range(0, c.num_envs, size):
                mb = torch.as_tensor(order[start : start + size])
                features, _ = net.unroll(t["obs"][:, mb], t["hidden0"][mb], t["starts"][:, mb])
                dist = net.distribution(features)
                action = t["actions"][:, mb].long() if net.discrete else t["actions"][:, mb]
                logp = net.log_prob(dist, action)
                ratio = (logp - t["logp"][:, mb]).exp()
                mb_adv = b_adv[:, mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef)).mean()
                v_loss = 0.5 * ((net.critic(features)[..., 0] - b_ret[:, mb]) ** 2).mean()
                entropy = net.entropy(dist).mean()
                loss = pg_loss + c.vf_coef * v_loss - c.ent_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), c.max_grad_norm)
                self.optimizer.step()
                stats = {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": entropy.item()}
        return stats

    def episode_means(self) -> list[float]:
        """Mean return of each inner-episode index over recently finished trials."""
        if not self.recent:
            return []
        k = min(len(r) for r in self.recent)
        return [float(np.mean([r[i] for r in self.recent])) for i in range(k)]

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self, checkpoint_seconds: float | None = None, progress: bool = True, stop_after: int | None = None
    ) -> None:
        """Train to ``total_steps`` (or ``stop_after`` more updates), logging and checkpointing."""
        with run_lock(self.run_dir):  # one trainer per run folder
            if checkpoint_seconds is not None:  # kept in the checkpoint: a resumed run saves as often
                self.checkpoint_seconds = check_interval(checkpoint_seconds)
            self._run(self.checkpoint_seconds, progress, stop_after)

    def _run(self, checkpoint_seconds: float, progress: bool, stop_after: int | None) -> None:
        from tqdm import tqdm

        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2) + "\n")
        log_path = self.run_dir / "progress.csv"
        episodes = int(self.envs.episodes_per_trial)
        fields = ["update", "global_step", "steps_per_sec"] + [f"episode_{i + 1}_return" for i in range(episodes)]
        fields += ["policy_loss", "value_loss", "entropy"]
        truncate_log(log_path, self.update, fields)
        writer = tensorboard(self.run_dir, self.global_step)
        last_save = time.monotonic()
        target = c.num_updates if stop_after is None else min(c.num_updates, self.update + stop_after)
        bar = tqdm(total=c.num_updates * c.batch_size, initial=self.global_step, disable=not progress, unit="step")
        with stop_between_updates(bar, writer) as stop:
            stop.update = self.update
            while self.update < target:
                tic = time.perf_counter()
                if c.anneal_lr:
                    self.optimizer.param_groups[0]["lr"] = c.learning_rate * (1 - self.update / c.num_updates)
                stats = self.learn(self.collect())
                check_finite(self.run_dir, self.update + 1, stats, self.agent.network.parameters())
                self.update += 1
                seconds = time.perf_counter() - tic
                self.elapsed += seconds
                means = self.episode_means()
                row = {"update": self.update, "global_step": self.global_step, "steps_per_sec": c.batch_size / seconds}
                row.update({f"episode_{i + 1}_return": m for i, m in enumerate(means)} | stats)
                append_log(log_path, row, fields)
                if writer is not None:
                    for key, value in row.items():
                        writer.add_scalar(f"rl2/{key}", value, self.global_step)
                bar.update(c.batch_size)
                bar.set_postfix_str(
                    f"{row['steps_per_sec']:,.0f} steps/s  return per episode " + " ".join(f"{m:.2f}" for m in means)
                )
                stop.update = self.update
                if stop.requested or time.monotonic() - last_save >= checkpoint_seconds:
                    self.save()
                    last_save = time.monotonic()
                if stop.requested:
                    raise Interrupted(saved=True, update=self.update)
            self.save()


def train(config: RL2Config, run_dir: str | Path, resume: bool = False, **run_kwargs: Any) -> RL2Agent:
    """Train (or resume) an RL² run in ``run_dir`` and return the agent."""
    trainer = Trainer.resume(run_dir) if resume else Trainer(config, run_dir)
    trainer.run(**run_kwargs)
    return trainer.agent


# The names the ``metagym`` command looks for in an agent module.
Config = RL2Config
Agent = RL2Agent
