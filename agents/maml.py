"""MAML for RL (Finn et al. 2017), first-order MAML, Reptile (Nichol et al. 2018), and the
MAML paper's "pretrained" control, sharing one rollout and adaptation code.

- Inner loop: vanilla policy gradient with a per-task linear feature baseline, ``inner_steps``
  steps of size ``inner_lr``; parameters live in a dict and the adapted policy runs through
  ``torch.func.functional_call`` (no module internals are touched).
- Outer loop (``maml``, ``fomaml``, ``pretrained``): TRPO (conjugate gradient on
  Fisher-vector products, backtracking line search under a KL bound) through the inner update,
  second order for ``maml``, first order (inner gradients detached) for ``fomaml``, and
  without any inner update for ``pretrained`` (one policy trained on all tasks).
- ``reptile``: ``inner_steps`` (default 5; at least 2) policy-gradient steps per task, then
  move the initialisation ``reptile_lr`` of the way towards the mean adapted parameters. With a
  single inner step Reptile's update is exactly a joint-training (multi-task SGD) step, so it
  is refused.

Gaussian policies act in [-1, 1], rescaled to the action space's bounds (rllab's normalised env,
through which the MAML code ran): on PointNav2D an initial std of 1 is 0.1 in the env's units,
as in the reference code, instead of saturating the ±0.1 bounds. The defaults are the MAML
code's 2-D navigation settings (inner step 0.5, 20 tasks x 20 episodes per meta-batch, 40
episodes per evaluation step).

A meta-batch of tasks is collected in one batched vector env: ``fast_batch_size`` sub-envs per
task, one episode each, all per-task policies evaluated at once with ``torch.func.vmap``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.func import functional_call, vmap

from metagym.agents.common.checkpoint import field, restored
from metagym.agents.common.memory import sample_action
from metagym.agents.common.policy_gradient import (
    Batch,
    advantages,
    conjugate_gradient,
    flat,
    weighted_mean,
)
from metagym.agents.common.settings import (
    env_kwargs_setting,
    gamma_setting,
    selected_on_setting,
    setting,
    torch_threads_setting,
    total_steps_setting,
)
from metagym.agents.common.trainer import Algorithm, Trainer, load_agent
from metagym.agents.common.validation import check_config
from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.registration import env_kwargs_of, family_of

Params = dict[str, torch.Tensor]
VARIANTS = ("maml", "fomaml", "reptile", "pretrained")


@dataclasses.dataclass(frozen=True)
class MAMLConfig:
    """Everything that defines a MAML-family run (saved as ``config.json``)."""

    env_id: str = setting("PointNav2D-v0", "Family id to meta-train on.")
    env_kwargs: dict[str, Any] | None = env_kwargs_setting()  # noqa: RUF009 (a None default, not a shared dict)
    variant: str = setting("maml", "maml, fomaml, reptile, or pretrained (the paper's multi-task control).")
    total_steps: int = total_steps_setting(4_000_000)
    meta_batch_size: int = setting(20, "Tasks per meta-update.")
    fast_batch_size: int = setting(20, "Episodes per task per adaptation step.")
    inner_lr: float = setting(
        0.5,
        "Step size of the inner policy-gradient update (alpha): 0.5 is the MAML code's value for 2-D "
        "navigation (its locomotion runs used 0.1).",
    )
    inner_steps: int | None = setting(
        None, "Policy-gradient steps in the inner loop; none: 5 for reptile (Nichol et al.), else 1."
    )
    eval_batch_size: int = setting(40, "Episodes per task per adaptation step in evaluation (the MAML code's 40).")
    normalize_actions: bool = setting(
        True, "Gaussian policies act in [-1, 1], rescaled to the action bounds (rllab's normalised env)."
    )
    hidden_size: int = setting(100, "Width of each of the policy's two hidden layers.")
    gamma: float = gamma_setting()
    max_kl: float = setting(0.01, "TRPO's KL bound.")
    cg_iters: int = setting(10, "Conjugate-gradient iterations.")
    cg_damping: float = setting(1e-5, "Damping added to the Fisher-vector product.")
    ls_max_steps: int = setting(15, "Backtracking line-search steps.")
    ls_backtrack: float = setting(0.8, "Line-search shrink factor.")
    reptile_lr: float = setting(0.1, "Reptile's outer step size (epsilon).")
    seed: int = setting(0, "Root seed: tasks, environments, initialisation and sampling.")
    torch_threads: int = torch_threads_setting("one is fastest for networks this small on a 2-core machine")
    selected_on: str = selected_on_setting()

    @property
    def agent(self) -> str:
        """The registered agent this config trains: its variant."""
        return self.variant

    def __post_init__(self) -> None:
        if self.inner_steps is None:  # the variant's default, resolved once (config.json shows it)
            object.__setattr__(self, "inner_steps", 5 if self.variant == "reptile" else 1)

    def validate(self) -> MAMLConfig:
        """Return self, or raise ValueError naming the first bad field."""
        if self.variant not in VARIANTS:
            raise ArgumentError("variant", f"expected one of {list(VARIANTS)}, got {self.variant!r}")
        counts = ("total_steps", "meta_batch_size", "fast_batch_size", "inner_steps", "hidden_size", "cg_iters")
        positive = ("inner_lr", "max_kl", "reptile_lr", "ls_backtrack")
        check_config(self, (*counts, "eval_batch_size", "torch_threads"), positive, ("gamma",), ("cg_damping",))
        if self.variant == "reptile" and self.steps < 2:
            raise ArgumentError(
                "inner_steps",
                f"Reptile with {self.steps} inner step is a joint-training (multi-task SGD) step; "
                "expected >= 2 (Nichol et al. use 5 or more)",
            )
        return self

    @property
    def steps(self) -> int:
        """``inner_steps``, resolved (never None after construction)."""
        return int(self.inner_steps or 1)


class Policy(nn.Module):
    """Two ReLU hidden layers; a Gaussian (state-independent std) or categorical head."""

    def __init__(self, obs_dim: int, action_space: spaces.Space[Any], hidden: int) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, spaces.Discrete)
        if isinstance(action_space, spaces.Discrete):
            out = int(action_space.n)
        elif isinstance(action_space, spaces.Box):
            out = int(np.prod(action_space.shape))
        else:
            raise ArgumentTypeError("action_space", f"MAML supports Discrete and Box, got {action_space}")
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, out)
        self.log_std = nn.Parameter(torch.zeros(out), requires_grad=not self.discrete)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(obs)), self.log_std

    def distribution(self, params: Params, obs: torch.Tensor) -> torch.distributions.Distribution:
        out, log_std = functional_call(self, params, (obs,))
        if self.discrete:
            return torch.distributions.Categorical(logits=out)
        return torch.distributions.Normal(out, log_std.exp())

    def log_prob(self, params: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        dist = self.distribution(params, obs)
        return dist.log_prob(actions.long()) if self.discrete else dist.log_prob(actions).sum(-1)


class MAMLAgent:
    """The meta-learned initialisation, with ``adapt`` and SB3's ``predict`` interface."""

    kind = "gradient"

    def __init__(
        self,
        config: MAMLConfig,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        device: str = "cpu",
    ) -> None:
        self.config, self.action_space, self.device = config, action_space, torch.device(device)
        self.obs_dim = int(np.prod(observation_space.shape)) if isinstance(observation_space, spaces.Box) else 1
        self.policy = Policy(self.obs_dim, action_space, config.hidden_size).to(self.device)
        # Only trainable parameters: a categorical head leaves log_std out (functional_call then
        # uses the module's own, unused, value).
        self.params: Params = {k: v.detach().clone() for k, v in self.policy.named_parameters() if v.requires_grad}
        self._low = self._high = np.zeros(0)
        if isinstance(action_space, spaces.Box):
            self._low, self._high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
        finite = self._low.size > 0 and bool(np.isfinite(self._low).all() and np.isfinite(self._high).all())
        self.normalized = config.normalize_actions and finite

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """The env's action for policy output ``action``: clipped to [-1, 1] and rescaled to the
        bounds when actions are normalised, else clipped to the bounds; discrete actions as they are."""
        if self.policy.discrete:
            return action
        if self.normalized:
            unit = np.clip(action, -1.0, 1.0)
            return (self._low + (unit + 1.0) * 0.5 * (self._high - self._low)).astype(np.float32)
        return np.clip(action, self._low, self._high).astype(np.float32)

    def inner_loss(self, params: Params, batch: Batch) -> torch.Tensor:
        """Vanilla policy-gradient loss of one task's episodes."""
        adv = advantages(batch, self.config.gamma)
        logp = self.policy.log_prob(params, batch.obs, batch.actions)
        return -weighted_mean(logp * adv, batch.mask)

    def adapt(
        self, batch: Batch, params: Params | None = None, lr: float | None = None, first_order: bool = True
    ) -> Params:
        """One inner policy-gradient step from ``params`` (default: the initialisation).

        With ``first_order`` the gradient is treated as a constant (first-order MAML); else the
        step stays differentiable (second order). Parameters that carry no graph give a
        detached result (collecting episodes needs no outer gradient).
        """
        params = self.params if params is None else params
        tracked = any(v.requires_grad for v in params.values())
        leaves = {k: v if v.requires_grad else v.detach().requires_grad_(True) for k, v in params.items()}
        loss = self.inner_loss(leaves, batch)
        grads = torch.autograd.grad(
            loss, list(leaves.values()), create_graph=tracked and not first_order, allow_unused=True
        )
        step = self.config.inner_lr if lr is None else lr
        out = {}
        for (name, value), grad in zip(leaves.items(), grads, strict=True):
            if grad is None:  # e.g. log_std of a categorical head
                out[name] = value
                continue
            out[name] = value - step * (grad.detach() if first_order else grad)
        return out if tracked else {k: v.detach() for k, v in out.items()}

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]:
        """Env actions of the initialisation (``state`` may carry adapted parameters)."""
        params = self.params if state is None else state
        with torch.no_grad():
            dist = self.policy.distribution(
                params, torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(-1, self.obs_dim)
            )
            action = (dist.probs.argmax(-1) if self.policy.discrete else dist.mean) if deterministic else dist.sample()  # type: ignore[attr-defined]
        return self.to_env(action.cpu().numpy()), state

    def adaptation_returns(self, tasks: list[Any], steps: int, seed: int, deterministic: bool = False) -> np.ndarray:
        """Mean episode return per task after 0..``steps`` adaptation steps: (tasks, steps + 1).

        Each step plays ``eval_batch_size`` fresh episodes per task with the current
        parameters, then adapts on them; the step size is halved after the first step, as in
        the MAML paper's evaluation. With ``deterministic`` each step is scored on as many
        greedy episodes instead (the adaptation still learns from sampled ones).
        """
        return self.adaptation_scores(tasks, steps, seed, deterministic)[0]

    def adaptation_scores(
        self, tasks: list[Any], steps: int, seed: int, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`adaptation_returns`, and beside it the fraction of each step's scored episodes
        that succeeded, (tasks, steps + 1), for a family that reports ``info["success"]`` (else
        None)."""
        sampler = Sampler(self, len(tasks), seed, per_task=self.config.eval_batch_size)
        params = [self.params] * len(tasks)
        out = np.zeros((len(tasks), steps + 1))
        success: np.ndarray | None = None
        for k in range(steps + 1):
            batch = sampler.sample(list(tasks), params)
            scored = sampler.sample(list(tasks), params, deterministic=True) if deterministic else batch
            out[:, k] = scored.mean_return
            if scored.success_rate is not None:
                success = np.zeros((len(tasks), steps + 1)) if success is None else success
                success[:, k] = scored.success_rate
            if k < steps:
                lr = self.config.inner_lr * (1.0 if k == 0 else 0.5)
                params = [self.adapt(batch.task(i), params[i], lr=lr) for i in range(len(tasks))]
        return out, success

    def adapted_params(self, task: Any, steps: int, seed: int) -> list[Params]:
        """The parameters after 0..``steps`` adaptation steps on ``task`` (``eval_batch_size``
        sampled episodes each, the step size halved after the first, as in evaluation)."""
        sampler = Sampler(self, 1, seed, per_task=self.config.eval_batch_size)
        params = [self.params]
        for k in range(steps):
            batch = sampler.sample([task], [params[-1]])
            lr = self.config.inner_lr * (1.0 if k == 0 else 0.5)
            params.append(self.adapt(batch.task(0), params[-1], lr=lr))
        return params

    def reinitialised(self, seed: int) -> MAMLAgent:
        """A freshly initialised agent with the same config (the random-initialisation control)."""
        torch.manual_seed(seed)
        env = gym.make(self.config.env_id, **env_kwargs_of(self.config))
        return MAMLAgent(self.config, env.observation_space, env.action_space, str(self.device))

    @property
    def experience_per_step(self) -> int:
        """Episodes per task that one adaptation step plays in evaluation."""
        return int(self.config.eval_batch_size)

    @classmethod
    def load(cls, run_dir: str | Path) -> MAMLAgent:
        """The agent saved in ``run_dir/checkpoint.pt`` (read without running any code of the file)."""
        agent = load_agent(run_dir)
        if not isinstance(agent, cls):
            raise ArgumentError("checkpoint", f"{run_dir} holds a {type(agent).__name__}, not a {cls.__name__}")
        return agent


def checked_params(current: Params, saved: dict[str, Any], path: str | Path) -> Params:
    """Saved policy parameters, checked name by name and shape by shape against ``current``."""
    if set(saved) != set(current):
        raise ArgumentError(
            "checkpoint", f"{path}: parameters {sorted(map(str, saved))} do not fit the policy's {sorted(current)}"
        )
    for name, value in saved.items():
        if (
            not isinstance(value, torch.Tensor)
            or value.shape != current[name].shape
            or value.dtype != current[name].dtype
        ):
            raise ArgumentError("checkpoint", f"{path}: parameter {name!r} does not fit the policy")
    return {name: saved[name].to(current[name].device) for name in current}


class Sampler:
    """Collects one episode per sub-env: ``per_task`` sub-envs per task (default
    ``fast_batch_size``), each task with its own parameters."""

    def __init__(self, agent: MAMLAgent, tasks_per_batch: int, seed: int, per_task: int | None = None) -> None:
        c = agent.config
        self.agent, self.per_task = agent, c.fast_batch_size if per_task is None else per_task
        self.num_tasks = tasks_per_batch
        # NEXT_STEP: a sub-env whose episode ended resets on its next step (masked out below)
        # while the others play on; DISABLED would refuse to step it at all.
        self.envs: Any = gym.make_vec(
            c.env_id,
            num_envs=tasks_per_batch * self.per_task,
            autoreset_mode=AutoresetMode.NEXT_STEP,
            **env_kwargs_of(c),
        )
        self.horizon = family_of(gym.make(c.env_id, disable_env_checker=True, **env_kwargs_of(c))).horizon
        self.generator = torch.Generator(agent.device).manual_seed(seed)
        self.seed = seed
        self.calls = 0

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "calls": self.calls, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        self.calls = field(state, "calls", int, path)
        self.seed = field(state, "seed", int, path)
        self.generator = restored(self.generator, state, "generator", path)

    def sample(self, tasks: list[Any], params: list[Params], deterministic: bool = False) -> Batch:
        n, per = len(tasks), self.per_task
        self.envs.set_attr("task", [t for t in tasks for _ in range(per)])
        obs, _ = self.envs.reset(seed=self.seed + 7919 * self.calls)
        self.calls += 1
        stacked = {k: torch.stack([p[k].detach() for p in params]) for k in params[0]}
        policy = self.agent.policy

        def forward(p: Params, o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return functional_call(policy, p, (o,))

        batched = vmap(forward)
        buf_obs, buf_act, buf_rew, buf_mask = [], [], [], []
        alive = np.ones(n * per, dtype=bool)
        succeeded: np.ndarray | None = None  # any step of the episode succeeded (where reported)
        for _ in range(self.horizon):
            o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.agent.device).reshape(n, per, -1)
            with torch.no_grad():
                out, log_std = batched(stacked, o)
                if deterministic:
                    action = out.argmax(-1) if policy.discrete else out
                else:
                    std = None if policy.discrete else log_std[:, None, :].exp()
                    action = sample_action(out, std, self.generator)
            env_action = self.agent.to_env(action.reshape(n * per, *action.shape[2:]).cpu().numpy())
            obs, reward, terminated, truncated, infos = self.envs.step(env_action)
            if "success" in infos:
                succeeded = np.zeros(n * per, dtype=bool) if succeeded is None else succeeded
                succeeded |= alive & infos["_success"] & np.asarray(infos["success"], dtype=bool)
            buf_obs.append(o)
            buf_act.append(action.float())
            buf_rew.append(torch.as_tensor(reward, dtype=torch.float32, device=o.device).reshape(n, per))
            buf_mask.append(torch.as_tensor(alive, dtype=torch.float32, device=o.device).reshape(n, per))
            alive &= ~(terminated | truncated)
            if not alive.any():
                break
        success = None if succeeded is None else succeeded.reshape(n, per).astype(np.float64)
        return Batch(torch.stack(buf_obs), torch.stack(buf_act), torch.stack(buf_rew), torch.stack(buf_mask), success)


def _kl(old: torch.distributions.Distribution, new: torch.distributions.Distribution, discrete: bool) -> torch.Tensor:
    kl = torch.distributions.kl_divergence(old, new)
    return kl if discrete else kl.sum(-1)


def _detached(dist: torch.distributions.Distribution) -> torch.distributions.Distribution:
    if isinstance(dist, torch.distributions.Categorical):
        return torch.distributions.Categorical(logits=dist.logits.detach())
    assert isinstance(dist, torch.distributions.Normal)
    return torch.distributions.Normal(dist.mean.detach(), dist.stddev.detach())


class MAML(Algorithm):
    """The MAML family's meta-training (``config.variant`` says which), driven by the shared
    :class:`~metagym.agents.common.trainer.Trainer`."""

    Config = MAMLConfig
    log_fields = ["pre_adaptation_return", "post_adaptation_return", "kl", "step_fraction", "surrogate"]
    #: The task stream and the episode collector (its generator, calls and seed).
    stateful: ClassVar[tuple[str, ...]] = ("task_rng", "sampler")

    def __init__(self, config: MAMLConfig, device: str = "cpu") -> None:
        self.config = config.validate()
        torch.set_num_threads(config.torch_threads)
        task_seq, init_seq, sample_seq = np.random.SeedSequence(config.seed).spawn(3)
        self.task_rng = np.random.default_rng(task_seq)
        env = gym.make(config.env_id, **env_kwargs_of(config))
        self.family = family_of(env)
        torch.manual_seed(int(init_seq.generate_state(1)[0]))
        self.agent = MAMLAgent(config, env.observation_space, env.action_space, device)
        self.sampler = Sampler(self.agent, config.meta_batch_size, int(sample_seq.generate_state(1)[0]) % 2**31)
        self.global_step = 0

    def learn(self, update: int) -> dict[str, float]:
        return self.meta_step()

    @property
    def note(self) -> str | None:
        """A meta-update samples up to meta_batch_size x fast_batch_size episodes per batch, and
        the run ends with the first update that reaches ``total_steps``: say so where that is
        more than asked (as the memory agents say how they round to whole updates)."""
        c = self.config
        batches = c.steps if c.variant == "reptile" else 1 if c.variant == "pretrained" else c.steps + 1
        most = batches * c.meta_batch_size * c.fast_batch_size * int(self.family.horizon)
        if c.total_steps % most == 0:
            return None
        whole = -(-c.total_steps // most) * most
        return (
            f"trains whole meta-updates of up to {most:,} steps ({batches} batch(es) of meta_batch_size x "
            f"fast_batch_size episodes of up to {int(self.family.horizon)} steps): up to {whole:,} steps, "
            f"not the {c.total_steps:,} asked for"
        )

    def tensors(self) -> Any:
        return self.agent.params.values()

    def progress(self, stats: dict[str, float]) -> str:
        post = stats.get("post_adaptation_return", float("nan"))
        return f"return before {stats['pre_adaptation_return']:.1f} after {post:.1f}"

    @classmethod
    def agent_from(cls, config: MAMLConfig, state: dict[str, Any], path: str | Path, device: str = "cpu") -> MAMLAgent:
        env = gym.make(config.env_id, **env_kwargs_of(config))
        agent = MAMLAgent(config, env.observation_space, env.action_space, device)
        agent.params = checked_params(agent.params, field(state, "params", dict, path), path)
        return agent

    # -- one meta-update -----------------------------------------------------------------------
    def _collect(self, tasks: list[Any], params: list[Params]) -> Batch:
        batch = self.sampler.sample(tasks, params)
        self.global_step += int(batch.mask.sum().item())
        return batch

    def meta_step(self) -> dict[str, float]:
        c, agent = self.config, self.agent
        tasks = self.family.sample(self.task_rng, c.meta_batch_size, "train")
        n = len(tasks)
        if c.variant == "reptile":
            params = [agent.params] * n
            first = None
            for _ in range(c.steps):
                batch = self._collect(tasks, params)
                first = batch if first is None else first
                params = [agent.adapt(batch.task(i), params[i]) for i in range(n)]
            agent.params = {
                k: v + c.reptile_lr * torch.stack([p[k] - v for p in params]).mean(0) for k, v in agent.params.items()
            }
            assert first is not None
            return {"pre_adaptation_return": float(first.mean_return.mean())}
        train: list[list[Batch]] = [[] for _ in range(n)]
        params = [agent.params] * n
        pre = None
        if c.variant != "pretrained":
            for _ in range(c.steps):
                batch = self._collect(tasks, params)
                pre = batch if pre is None else pre
                for i in range(n):
                    train[i].append(batch.task(i))
                params = [agent.adapt(batch.task(i), params[i]) for i in range(n)]
        valid = self._collect(tasks, params)
        stats = self.trpo(train, valid)
        stats["post_adaptation_return"] = float(valid.mean_return.mean())
        stats["pre_adaptation_return"] = float((pre or valid).mean_return.mean())
        return stats

    def surrogate(
        self, theta: Params, train: list[list[Batch]], valid: Batch, adv: list[torch.Tensor], old: list[Any] | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """Mean over tasks of the clipped-free TRPO surrogate and KL, through the inner updates."""
        agent, first_order = self.agent, self.config.variant == "fomaml"
        losses, kls, olds = [], [], []
        for i, batches in enumerate(train):
            params = theta
            for batch in batches:
                params = agent.adapt(batch, params, first_order=first_order)
            v = valid.task(i)
            dist = agent.policy.distribution(params, v.obs)
            logp = dist.log_prob(v.actions.long()) if agent.policy.discrete else dist.log_prob(v.actions).sum(-1)
            old_i = (logp.detach(), _detached(dist)) if old is None else old[i]
            olds.append(old_i)
            losses.append(-weighted_mean((logp - old_i[0]).exp() * adv[i], v.mask))
            kls.append(weighted_mean(_kl(old_i[1], dist, agent.policy.discrete), v.mask))
        return torch.stack(losses).mean(), torch.stack(kls).mean(), olds

    def trpo(self, train: list[list[Batch]], valid: Batch) -> dict[str, float]:
        c = self.config
        theta = {k: v.detach().clone().requires_grad_(True) for k, v in self.agent.params.items()}
        names = list(theta)
        adv = [advantages(valid.task(i), c.gamma) for i in range(len(train))]
        loss, kl, old = self.surrogate(theta, train, valid, adv, None)
        grads = flat(list(torch.autograd.grad(loss, list(theta.values()), retain_graph=True)))
        kl_grad = flat(list(torch.autograd.grad(kl, list(theta.values()), create_graph=True)))

        def fvp(vector: torch.Tensor) -> torch.Tensor:
            hv = torch.autograd.grad(kl_grad @ vector, list(theta.values()), retain_graph=True)
            return flat(list(hv)).detach() + c.cg_damping * vector

        direction = conjugate_gradient(fvp, grads.detach(), c.cg_iters)
        shs = 0.5 * direction @ fvp(direction)
        full = direction / torch.sqrt(shs / c.max_kl).clamp_min(1e-12)
        old_loss = loss.item()
        sizes = [theta[k].numel() for k in names]
        accepted, fraction, new_kl = False, 0.0, 0.0
        # A zero gradient (every advantage zero: e.g. a meta-batch in which each task paid the
        # same reward on every pull) leaves conjugate gradient at 0 / 0: no step this iteration.
        steps = c.ls_max_steps if bool(torch.isfinite(full).all()) else 0
        for k in range(steps):
            fraction = c.ls_backtrack**k
            chunks = torch.split(fraction * full, sizes)
            candidate = {
                n: (theta[n] - d.view_as(theta[n])).detach().requires_grad_(True)
                for n, d in zip(names, chunks, strict=True)
            }
            new_loss, new_kl_t, _ = self.surrogate(candidate, train, valid, adv, old)
            new_kl = float(new_kl_t.item())
            if new_loss.item() < old_loss and new_kl <= c.max_kl:
                self.agent.params = {n: v.detach() for n, v in candidate.items()}
                accepted = True
                break
        return {
            "kl": new_kl if accepted else 0.0,
            "step_fraction": fraction if accepted else 0.0,
            "surrogate": old_loss,
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the next meta-update depends on, as tensors, numbers, strings and JSON."""
        return {"params": self.agent.params, **super().state_dict()}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        self.agent.params = checked_params(self.agent.params, field(state, "params", dict, path), path)
        super().load_state_dict(state, path)


__all__ = ["MAML", "MAMLAgent", "MAMLConfig", "Sampler", "Trainer", "load_agent"]
