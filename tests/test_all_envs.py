"""The battery every registered id passes: both check_envs, determinism, pickle, rendering."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import assert_same, rollout

import metagym

ALL_IDS = metagym.env_ids()
FAMILY_IDS = metagym.env_ids(trials=False)


#: Warnings that are expected, by id prefix: the paper or Gymnasium fixes these spaces.
EXPECTED_WARNINGS = {
    # MAML's 2-D navigation has velocity actions in [-0.1, 0.1], not the checkers' preferred [-1, 1].
    "PointNav2D": "symmetric and normalized",
    # Gymnasium's own Pendulum has torques in [-2, 2] (ours: [-5, 5], for the largest max_torque).
    "MetaPendulum": "symmetric and normalized",
    # Gymnasium's MuJoCo models declare unbounded observations.
    "HalfCheetah": "infinity",
    "AntDir": "infinity",
}


def allow_expected(env_id: str) -> None:
    warnings.filterwarnings("ignore", message=r".*compiler attribute 'settotalmass'.*")  # MuJoCo's own model
    for prefix, message in EXPECTED_WARNINGS.items():
        if env_id.startswith(prefix):
            warnings.filterwarnings("ignore", message=f".*{message}.*")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        allow_expected(env_id)
        # check_env prefers the raw env; a trial env is a wrapper by design.
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version.*")
        check_env(env if "Trial" in env_id else env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_check_env(env_id: str) -> None:
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        allow_expected(env_id)
        sb3_checker.check_env(gym.make(env_id), warn=True)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_seeded_determinism(env_id: str) -> None:
    a = rollout(gym.make(env_id), seed=7, steps=300)
    b = rollout(gym.make(env_id), seed=7, steps=300)
    assert_same(a, b)
    c = rollout(gym.make(env_id), seed=8, steps=300)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=False))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_pickle_round_trip(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=3)
    env.render()
    env.action_space.seed(4)
    for _ in range(5):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    actions = [env.action_space.sample() for _ in range(40)]
    for action in actions:
        a, b = env.step(action), clone.step(action)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    assert env.unwrapped.task == clone.unwrapped.task


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_render_headless(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3  # floor, agent, goal at least


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_render_human_headless(env_id: str) -> None:
    env = gym.make(env_id, render_mode="human")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_vector_entry_point(env_id: str) -> None:
    # The family's own batched env where it has one, else Gymnasium's SyncVectorEnv (MuJoCo).
    envs = gym.make_vec(env_id, num_envs=3, render_mode="rgb_array")
    obs, _ = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    obs, reward, *_ = envs.step(envs.action_space.sample())
    assert obs.shape == (3, *envs.single_observation_space.shape) and reward.shape == (3,)
    assert len(envs.render()) == 3
    assert len(envs.get_attr("task")) == 3


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_actions_that_are_not_real_numbers_are_refused(env_id: str) -> None:
    allow_expected(env_id)
    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    action = np.asarray(env.action_space.sample())
    for bad in (action + 1j, np.asarray(action, dtype=object), np.full(action.shape, "1")):
        with pytest.raises((ValueError, TypeError), match="action"):
            env.step(bad)


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_out_of_range_actions_are_refused_or_applied_clipped(env_id: str) -> None:
    """A discrete action outside the space is refused; a Box action beyond its bounds acts as the
    bound, and the trial records the applied action."""
    allow_expected(env_id)
    env = gym.make(env_id, disable_env_checker=True)
    if isinstance(env.action_space, gym.spaces.Discrete):
        env.reset(seed=0)
        for bad in (env.action_space.start - 1, env.action_space.start + env.action_space.n):
            with pytest.raises(ValueError, match="action"):
                env.step(bad)
        return
    high = env.action_space.high
    clipped, huge = gym.make(env_id, disable_env_checker=True), gym.make(env_id, disable_env_checker=True)
    clipped.reset(seed=1)
    huge.reset(seed=1)
    for _ in range(3):
        a, b = clipped.step(high), huge.step(high * 1000)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]  # the reward too: a control cost counts the applied action
    trial = gym.make(metagym.trial_id(env_id))
    trial.reset(seed=1)
    obs = trial.step(high * 1000)[0]
    assert trial.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_vector_wrappers_work_on_every_batched_id_as_it_comes(env_id: str) -> None:
    """NEXT_STEP autoreset (Gymnasium's default) on family and trial ids alike: Gymnasium's own
    RecordEpisodeStatistics counts each episode's return, NormalizeObservation keeps it finite."""
    from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

    raw = gym.make_vec(env_id, num_envs=2, max_episode_steps=25)
    assert raw.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    envs = RecordEpisodeStatistics(NormalizeObservation(raw))
    envs.reset(seed=0)
    envs.action_space.seed(0)
    running, ended, counted = np.zeros(2), np.zeros(2, dtype=bool), 0
    for _ in range(60):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        running = np.where(ended, 0.0, running + reward)  # the step after an end starts the next episode
        if "episode" in info:
            done = info["_episode"]
            np.testing.assert_allclose(info["episode"]["r"][done], running[done], atol=1e-4)
            counted += int(done.sum())
        ended = terminated | truncated
        assert np.isfinite(obs).all()
    assert counted >= 2
    envs.close()
