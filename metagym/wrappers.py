"""Trials: K consecutive episodes on one task, as one Gymnasium episode (the RL² setting).

:class:`Trial` turns any family env into a trial env; :class:`TrialVector` does the same for a
family vector env, so recurrent agents train on the fast batched path. Both give the same
observation, a flat ``float32`` vector laid out as :attr:`Trial.obs_slices` says:

* ``obs``: the family's observation, flattened (``Discrete`` one-hot);
* ``prev_action``: the previous action (one-hot for ``Discrete``), zeros at trial start;
* ``prev_reward``: the previous reward, 0 at trial start;
* ``done``: 1 if the previous step ended an inner episode (this is a new one's first step);
* ``episode``: index of the current inner episode divided by K, in [0, 1].

``info["trial_episode"]`` is the 0-based index of the inner episode a step belonged to; the
step that ends an inner episode also carries ``info["inner_return"]``,
``info["inner_length"]`` and ``info["inner_final_obs"]`` (the family observation that step
reached, flattened as the ``obs`` part: the next observation shows the new episode's start
instead; in a vector env with ``SAME_STEP`` autoreset, a trial's last step puts these in
``infos["final_info"]``, as Gymnasium does), and for families that report ``info["success"]``
(goal families, Meta-World) ``info["inner_success"]``: whether any step of the episode succeeded
(Meta-World's episode success: its evaluation ends an episode at the first success).

The inner episode ends as the family says (its horizon); the trial ends, with
``terminated=True``, when the K-th inner episode ends: nothing follows a trial's last step,
so there is nothing to bootstrap. A new task is drawn only at trial start (the given, pinned
or freshly sampled one, by the family env's rules); inner episodes keep it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.registration import family_of, family_spec

TRIAL_PARTS = ("obs", "prev_action", "prev_reward", "done", "episode")


def _flat_bounds(space: spaces.Space[Any]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(space, spaces.Box):
        return space.low.astype(np.float32).ravel(), space.high.astype(np.float32).ravel()
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary):
        dim = spaces.flatdim(space)
        return np.zeros(dim, np.float32), np.ones(dim, np.float32)
    raise ArgumentTypeError("space", f"trials support Box, Discrete, MultiDiscrete and MultiBinary, got {space}")


def flatten_batch(space: spaces.Space[Any], x: Any, n: int) -> np.ndarray:
    """Flatten ``n`` elements of ``space`` to float32 rows, one-hot encoding discrete values."""
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        return np.asarray(x, dtype=np.float32).reshape(n, -1)
    if isinstance(space, spaces.Discrete):
        out = np.zeros((n, int(space.n)), dtype=np.float32)
        out[np.arange(n), np.asarray(x).reshape(n) - int(space.start)] = 1.0
        return out
    if isinstance(space, spaces.MultiDiscrete):
        flat = np.asarray(x).reshape(n, -1) - space.start.ravel()
        parts = [np.eye(int(k), dtype=np.float32)[flat[:, j]] for j, k in enumerate(space.nvec.ravel())]
        return np.concatenate(parts, axis=1)
    raise ArgumentTypeError("space", f"cannot flatten {space}")


def _flatten_into(out: np.ndarray, where: slice, space: spaces.Space[Any], x: Any) -> None:
    """Write :func:`flatten_batch` of ``x`` into columns ``where`` of ``out`` (a C-contiguous
    array, zeros there) without the intermediate array: one-hots are one indexed write."""
    n, width = out.shape
    if isinstance(space, spaces.Discrete):
        hot = np.asarray(x).reshape(n).astype(np.int64) + (where.start - int(space.start))  # any int dtype
    elif isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        first = where.start + np.concatenate([[0], np.cumsum(space.nvec)[:-1]]) - space.start
        hot = np.asarray(x).reshape(n, -1).astype(np.int64) + first
    else:
        out[:, where] = flatten_batch(space, x, n)
        return
    hot += (np.arange(n) * width).reshape((n,) + (1,) * (hot.ndim - 1))
    out.reshape(-1)[hot] = 1.0


def trial_space(
    obs_space: spaces.Space[Any], action_space: spaces.Space[Any], reward_bounds: tuple[float, float]
) -> tuple[spaces.Box, dict[str, slice]]:
    """The flat trial observation space and where each part lies in it.

    Unbounded rewards get the largest finite float32 bounds (Gymnasium's checker flags
    infinite bounds).
    """
    obs_low, obs_high = _flat_bounds(obs_space)
    act_low, act_high = _flat_bounds(action_space)
    big = float(np.finfo(np.float32).max)
    r_low, r_high = max(reward_bounds[0], -big), min(reward_bounds[1], big)
    lows = [obs_low, act_low, np.array([r_low]), np.zeros(1), np.zeros(1)]
    highs = [obs_high, act_high, np.array([r_high]), np.ones(1), np.ones(1)]
    slices, start = {}, 0
    for name, low in zip(TRIAL_PARTS, lows, strict=True):
        slices[name] = slice(start, start + low.size)
        start += low.size
    box = spaces.Box(np.concatenate(lows).astype(np.float32), np.concatenate(highs).astype(np.float32))
    return box, slices


def _check_episodes(episodes_per_trial: Any, family: Any) -> int:
    if episodes_per_trial is None:
        return int(family.episodes_per_trial)
    if isinstance(episodes_per_trial, bool) or not isinstance(episodes_per_trial, int) or episodes_per_trial < 1:
        raise ArgumentError("episodes_per_trial", f"expected an integer >= 1, got {episodes_per_trial!r}")
    return episodes_per_trial


class Trial(gym.Wrapper[np.ndarray, Any, Any, Any]):
    """A family env as a trial env: one Gymnasium episode is K inner episodes on one task.

    Args:
        env: A metagym family env (``env.unwrapped.family`` exists), possibly wrapped.
        episodes_per_trial: K; default: the family's ``episodes_per_trial``.
    """

    def __init__(self, env: gym.Env[Any, Any], episodes_per_trial: int | None = None) -> None:
        super().__init__(env)
        family = family_of(env)
        self.episodes_per_trial = _check_episodes(episodes_per_trial, family)
        self.observation_space, self.obs_slices = trial_space(
            env.observation_space, env.action_space, family.reward_bounds
        )
        self._episode = 0
        self._return = 0.0
        self._length = 0
        self._succeeded = False

    def _augment(self, obs: Any, action: Any, reward: float, done: bool) -> np.ndarray:
        parts = [flatten_batch(self.env.observation_space, obs, 1)[0]]
        if action is None:
            parts.append(np.zeros(self.obs_slices["prev_action"].stop - self.obs_slices["prev_action"].start))
        else:
            parts.append(flatten_batch(self.env.action_space, action, 1)[0])
        parts.append(np.array([reward, float(done), self._episode / self.episodes_per_trial]))
        return np.concatenate(parts).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode, self._return, self._length, self._succeeded = 0, 0.0, 0, False
        return self._augment(obs, None, 0.0, False), {**info, "trial_episode": 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "trial_episode": self._episode}
        self._return += float(reward)
        self._length += 1
        self._succeeded |= bool(info.get("success", False))
        inner_done = terminated or truncated
        trial_over = False
        if inner_done:
            info["inner_return"], info["inner_length"] = self._return, self._length
            info["inner_final_obs"] = flatten_batch(self.env.observation_space, obs, 1)[0]
            if "success" in info:
                info["inner_success"], self._succeeded = self._succeeded, False
            self._episode += 1
            trial_over = self._episode >= self.episodes_per_trial
            if not trial_over:
                obs, _ = self.env.reset(options={"keep_task": True})
                self._return, self._length = 0.0, 0
        recorded = applied(self.env.action_space, action)
        return self._augment(obs, recorded, float(reward), inner_done), float(reward), trial_over, False, info


def applied(space: spaces.Space[Any], action: Any) -> Any:
    """The action the env applied (a Box action clipped to its bounds), as the trial records it."""
    if isinstance(space, spaces.Box):
        return np.clip(np.asarray(action, dtype=space.dtype), space.low, space.high)
    return action


class TrialVector(gym.vector.VectorWrapper):
    """A family vector env as N trial envs; the batched form of :class:`Trial`.

    Args:
        env: A family vector env whose ``autoreset_mode`` is ``DISABLED`` (this wrapper resets
            inner episodes itself), or ``NEXT_STEP`` for this wrapper's ``NEXT_STEP``.
        episodes_per_trial: K; default: the family's ``episodes_per_trial``.
        autoreset_mode: ``NEXT_STEP`` (default, as Gymnasium's and the family vector envs': the
            step after a trial ends starts the next one, ignores its action and returns reward
            0, exactly as a SyncVectorEnv of :class:`Trial` envs does, so Gymnasium's vector
            wrappers work as they come), ``SAME_STEP`` (a finished trial's last observation is
            in ``infos["final_obs"]``; what the memory agents' learner uses) or ``DISABLED`` (reset finished trials
            with ``options={"reset_mask": mask}``; stepping a finished trial raises, as
            Gymnasium's SyncVectorEnv does).
        max_episode_steps: Truncate a trial after this many steps (all its episodes together),
            as ``gymnasium.make(trial_id, max_episode_steps=k)`` does with ``TimeLimit``.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        episodes_per_trial: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ) -> None:
        super().__init__(env)
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
        ):
            raise ArgumentError("max_episode_steps", f"expected None or an integer >= 1, got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps
        family = env.get_attr("family")[0]  # type: ignore[attr-defined]
        allowed = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in allowed:
            raise ArgumentError(
                "autoreset_mode", f"{autoreset_mode!r} is not allowed; allowed: {[m.value for m in allowed]}"
            )
        inner = AutoresetMode.NEXT_STEP if mode == AutoresetMode.NEXT_STEP else AutoresetMode.DISABLED
        if env.metadata.get("autoreset_mode") != inner:
            raise ArgumentError(
                "env",
                f"TrialVector with autoreset_mode {mode.value} needs an env with autoreset_mode "
                f"{inner.value}, got {env.metadata.get('autoreset_mode')}",
            )
        inner_env = env.unwrapped
        if max_episode_steps is not None and mode == AutoresetMode.NEXT_STEP:
            if not hasattr(inner_env, "restart_next_step") and not hasattr(inner_env, "_autoreset_envs"):
                # Gymnasium's AsyncVectorEnv keeps which sub-envs restart next in its workers.
                raise ArgumentError(
                    "max_episode_steps",
                    f"a trial cut short cannot restart inside {type(inner_env).__name__} "
                    "with autoreset_mode NEXT_STEP; use SAME_STEP or DISABLED, or a sync vector env",
                )
        self.autoreset_mode = mode
        self.metadata = {**env.metadata, "autoreset_mode": mode}
        self.episodes_per_trial = _check_episodes(episodes_per_trial, family)
        self.single_observation_space, self.obs_slices = trial_space(
            env.single_observation_space, env.single_action_space, family.reward_bounds
        )
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        n = self.num_envs
        self._episode = np.zeros(n, dtype=np.int64)
        self._return = np.zeros(n, dtype=np.float64)
        self._length = np.zeros(n, dtype=np.int64)
        self._trial_steps = np.zeros(n, dtype=np.int64)
        self._succeeded = np.zeros(n, dtype=bool)  # families that report success: reached in this inner episode
        self._finished = np.zeros(n, dtype=bool)  # DISABLED: trials that ended and were not reset
        self._restarting = np.zeros(n, dtype=bool)  # NEXT_STEP: trials that ended at the last step

    def _augment(self, obs: np.ndarray, actions: np.ndarray | None, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        n, sl = self.num_envs, self.obs_slices
        out = np.zeros((n, sl["episode"].stop), dtype=np.float32)
        _flatten_into(out, sl["obs"], self.env.single_observation_space, obs)
        if actions is not None:
            _flatten_into(out, sl["prev_action"], self.env.single_action_space, actions)
        out[:, sl["prev_reward"].start] = reward
        out[:, sl["done"].start] = done
        out[:, sl["episode"].start] = self._episode / self.episodes_per_trial
        return out

    def _restart(self, mask: np.ndarray) -> None:
        self._episode[mask], self._return[mask], self._length[mask] = 0, 0.0, 0
        self._trial_steps[mask], self._finished[mask], self._restarting[mask] = 0, False, False
        self._succeeded[mask] = False

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, infos = self.env.reset(seed=seed, options=options)  # type: ignore[arg-type]
        mask = (options or {}).get("reset_mask", np.ones(self.num_envs, dtype=bool))
        self._restart(mask)
        zeros = np.zeros(self.num_envs)
        return self._augment(obs, None, zeros, zeros.astype(bool)), {
            **infos,
            "trial_episode": self._episode.copy(),
            "_trial_episode": np.ones(self.num_envs, dtype=bool),
        }

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        # (Each numpy call below costs microseconds at a batch's size, as much as a family's
        # step: the common case, no trial starting or ending, skips what it can.)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._finished.any():
            raise gym.error.ResetNeeded(
                f"step: trial(s) {np.flatnonzero(self._finished).tolist()} ended; with autoreset_mode DISABLED, "
                "reset them first: reset(options={'reset_mask': mask})"
            )
        # NEXT_STEP: the inner env (NEXT_STEP too) starts the trials that ended at the last step
        # (a fresh task, reward 0, the action ignored); they begin again here.
        restarting = self._restarting.copy()
        any_restarting = bool(restarting.any())
        obs, reward, terminated, truncated, step_infos = self.env.step(actions)
        success = step_infos.get("success")
        if success is not None:  # Meta-World's info["success"] (and every goal family's): any step of the episode
            # One in-place call on the hot path: sub-envs that did not report carry False already.
            np.logical_or(self._succeeded, success, out=self._succeeded)
        if any_restarting:
            self._restart(restarting)
            reward = np.where(restarting, 0.0, reward)
        stepped = ~restarting if any_restarting else 1
        self._trial_steps += stepped
        infos: dict[str, Any] = {"trial_episode": self._episode.copy(), "_trial_episode": np.ones(self.num_envs, bool)}
        self._return += reward
        self._length += stepped
        inner_done = terminated | truncated
        trial_over = np.zeros(self.num_envs, dtype=bool)  # returned: a new array, as every step's
        if inner_done.any():
            infos["inner_return"] = np.where(inner_done, self._return, 0.0)
            infos["_inner_return"] = inner_done.copy()
            infos["inner_length"] = np.where(inner_done, self._length, 0)
            infos["_inner_length"] = inner_done.copy()
            reached = np.zeros((self.num_envs, self.obs_slices["obs"].stop), dtype=np.float32)
            _flatten_into(reached, self.obs_slices["obs"], self.env.single_observation_space, obs)
            infos["inner_final_obs"], infos["_inner_final_obs"] = reached, inner_done.copy()
            if success is not None:
                infos["inner_success"] = inner_done & self._succeeded
                infos["_inner_success"] = inner_done.copy()
                self._succeeded[inner_done] = False
            self._episode += inner_done
            self._return[inner_done], self._length[inner_done] = 0.0, 0
            trial_over = inner_done & (self._episode >= self.episodes_per_trial)
            going_on = inner_done & ~trial_over
            if going_on.any():
                restart = getattr(self.env, "restart_episodes", None)
                if restart is not None:  # a metagym vector env: no option checks on the hot path
                    fresh = restart(going_on)
                else:
                    fresh, _ = self.env.reset(options={"reset_mask": going_on, "keep_task": True})
                obs = fresh if going_on.all() else np.where(_rows(going_on, obs.ndim), fresh, obs)
        out = self._augment(
            obs, applied(self.env.single_action_space, actions), np.asarray(reward, np.float64), inner_done
        )
        if any_restarting:  # a trial's first observation: no previous action or reward
            zeros = np.zeros(self.num_envs)
            out = np.where(restarting[:, None], self._augment(obs, None, zeros, zeros.astype(bool)), out)
        cut = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            cut = ~trial_over & (self._trial_steps >= self.max_episode_steps)
        ended = trial_over | cut
        if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            # As Gymnasium's SAME_STEP: the last step's infos go to "final_info"; the top level
            # holds the new trial's (trial_episode 0, no inner episode ended).
            # Only the ended trials' entries: a trial whose inner episode ended on this step
            # goes on, and reports that episode at the top level alone.
            final_info = {key: value & ended if key.startswith("_") else np.copy(value) for key, value in infos.items()}
            infos["final_obs"], infos["_final_obs"] = out, ended
            infos["final_info"], infos["_final_info"] = final_info, ended
            infos["trial_episode"] = np.where(ended, 0, infos["trial_episode"])
            for key in ("inner_return", "inner_length", "inner_final_obs", "inner_success"):
                if key in infos:  # the ended trials' last inner episode is reported in final_info only
                    infos[key] = np.where(_rows(ended, infos[key].ndim), 0, infos[key])
                    infos[f"_{key}"] = infos[f"_{key}"] & ~ended
            fresh, _ = self.env.reset(options={"reset_mask": ended})
            self._restart(ended)
            zeros = np.zeros(self.num_envs)
            start = self._augment(fresh, None, zeros, zeros.astype(bool))
            out = np.where(ended[:, None], start, out)
        elif self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._restarting = ended
            if cut.any():  # cut short: the inner episode goes on unless told to restart too
                _restart_next_step(self.env, cut)
        elif self.autoreset_mode == AutoresetMode.DISABLED:
            self._finished |= ended
        return out, reward, trial_over, cut, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Forward to the family vector env (``"task"``, ``"family"``, ...)."""
        return self.env.get_attr(name)  # type: ignore[attr-defined]

    def set_attr(self, name: str, values: Any) -> None:
        """Forward to the family vector env; ``set_attr("task", tasks)`` pins tasks per sub-env."""
        self.env.set_attr(name, values)  # type: ignore[attr-defined]


def reached_states(obs: np.ndarray, infos: dict[str, Any], ended: np.ndarray, width: int) -> np.ndarray:
    """The family observation (first ``width`` columns) each sub-env of a trial vector env reached
    on the step that returned ``obs``, ``infos`` and ``ended`` (the trials that ended there, in
    same-step autoreset): ``obs`` itself, except where an inner episode ended (its last state is
    ``info["inner_final_obs"]``; ``obs`` shows the next episode's start) or the trial ended (the
    last state is in ``final_obs``), (N, width) float32."""
    reached = obs[:, :width].astype(np.float32)
    inner = infos.get("_inner_final_obs")
    if inner is not None and inner.any():
        reached[inner] = infos["inner_final_obs"][inner][:, :width]
    if ended.any():
        reached[ended] = np.asarray(infos["final_obs"], np.float32)[ended, :width]
    return reached


def _restart_next_step(env: gym.vector.VectorEnv, mask: np.ndarray) -> None:
    """Make a NEXT_STEP vector env start new episodes in ``mask`` at its next step, as if they
    had ended (metagym's own vector env, or Gymnasium's SyncVectorEnv for MuJoCo families)."""
    inner = env.unwrapped
    if hasattr(inner, "restart_next_step"):
        inner.restart_next_step(mask)
    else:  # Gymnasium's SyncVectorEnv keeps the same flag under this name
        inner._autoreset_envs = inner._autoreset_envs | mask  # type: ignore[attr-defined]


def _rows(mask: np.ndarray, ndim: int) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def make_trial(
    env_id: str, episodes_per_trial: int | None = None, render_mode: str | None = None, **env_kwargs: Any
) -> Trial:
    """Entry point of the ``<Name>-Trial-v0`` ids: ``gymnasium.make(env_id, ...)`` in a :class:`Trial`."""
    env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True, **env_kwargs)
    return Trial(env, episodes_per_trial)


def make_trial_vector(
    num_envs: int,
    env_id: str,
    episodes_per_trial: int | None = None,
    autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    **env_kwargs: Any,
) -> TrialVector:
    """Vector entry point of the ``<Name>-Trial-v0`` ids: the family's own batched env (or
    Gymnasium's SyncVectorEnv where it has none) in a :class:`TrialVector`."""
    # make_vec passes max_episode_steps (None unless given): it caps whole trials, as the
    # TimeLimit that gymnasium.make(trial_id, max_episode_steps=k) puts around a trial env.
    max_episode_steps = env_kwargs.pop("max_episode_steps", None)
    try:
        next_step = AutoresetMode(autoreset_mode) == AutoresetMode.NEXT_STEP
    except ValueError:
        next_step = False  # TrialVector names the bad value
    inner = AutoresetMode.NEXT_STEP if next_step else AutoresetMode.DISABLED
    if family_spec(env_id).vector_entry_point is not None:
        env = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=inner, **env_kwargs)
    else:
        env = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": inner}, **env_kwargs
        )
    return TrialVector(env, episodes_per_trial, autoreset_mode, max_episode_steps)
