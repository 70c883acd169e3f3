"""Policy-gradient pieces the MAML family uses: episode batches, returns, rllab's linear
feature baseline, normalised advantages, and conjugate gradient for TRPO."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch


@dataclasses.dataclass
class Batch:
    """Episodes of several tasks, shaped (T, tasks, episodes per task, ...)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor  # 1 while the episode is running
    #: (tasks, episodes per task): 1 where the episode succeeded at some step, for families that
    #: report ``info["success"]`` (Meta-World, goal families); None for the others.
    success: np.ndarray | None = None

    def task(self, i: int) -> Batch:
        success = None if self.success is None else self.success[i]
        return Batch(self.obs[:, i], self.actions[:, i], self.rewards[:, i], self.mask[:, i], success)

    @property
    def mean_return(self) -> np.ndarray:
        """(tasks,) mean undiscounted episode return."""
        return (self.rewards * self.mask).sum(0).mean(-1).cpu().numpy()

    @property
    def success_rate(self) -> np.ndarray | None:
        """(tasks,) fraction of episodes that succeeded; None where success is not reported."""
        return None if self.success is None else self.success.mean(-1)


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] * mask[t] + gamma * running * mask[t]
        out[t] = running
    return out


def linear_baseline(batch: Batch, returns: torch.Tensor, reg: float = 1e-5) -> torch.Tensor:
    """rllab's linear feature baseline, fitted to one task's episodes: values (T, episodes)."""
    steps = batch.obs.shape[0]
    obs = batch.obs.clamp(-10, 10)
    t = (torch.arange(steps, dtype=torch.float32, device=obs.device) / 100.0)[:, None, None].expand(*obs.shape[:2], 1)
    features = torch.cat([obs, obs**2, t, t**2, t**3, torch.ones_like(t)], dim=-1)
    flat_f = features[batch.mask > 0]
    flat_r = returns[batch.mask > 0]
    eye = torch.eye(flat_f.shape[1], device=flat_f.device)
    for scale in (1.0, 10.0, 100.0, 1000.0):  # raise the ridge until the system is well posed
        try:
            coef = torch.linalg.solve(flat_f.T @ flat_f + reg * scale * eye, flat_f.T @ flat_r)
            break
        except RuntimeError:
            continue
    else:  # still singular in float32 (e.g. identical straight-line episodes): least squares in float64
        f64 = flat_f.double()
        coef = torch.linalg.lstsq(f64.T @ f64, f64.T @ flat_r.double(), driver="gelsd").solution.float()
    return (features @ coef) * batch.mask


def advantages(batch: Batch, gamma: float) -> torch.Tensor:
    """Returns minus the fitted baseline, normalised over the task's valid steps."""
    returns = discounted_returns(batch.rewards, batch.mask, gamma)
    adv = returns - linear_baseline(batch, returns)
    valid = adv[batch.mask > 0]
    return ((adv - valid.mean()) / (valid.std() + 1e-8)) * batch.mask


def weighted_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def conjugate_gradient(
    fvp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int, tol: float = 1e-10
) -> torch.Tensor:
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        fp = fvp(p)
        alpha = rr / (p @ fp)
        x += alpha * p
        r -= alpha * fp
        new_rr = r @ r
        if new_rr < tol:
            break
        p = r + (new_rr / rr) * p
        rr = new_rr
    return x
