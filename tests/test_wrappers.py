"""Trials: K inner episodes on one task, the observation layout, batched == single."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from metagym.envs.metagrid import GridTask, MetaGridEnv, MetaGridVectorEnv
from metagym.wrappers import Trial, TrialVector, flatten_batch, make_trial_vector


def test_trial_runs_k_episodes_on_one_task() -> None:
    env = gym.make("MetaGrid-GridNavi-Trial-v0", episodes_per_trial=3)
    obs, info = env.reset(seed=0)
    trial = env.get_wrapper_attr("obs_slices")
    assert set(trial) == {"obs", "prev_action", "prev_reward", "done", "episode"}
    assert info["trial_episode"] == 0 and obs.dtype == np.float32 and obs.shape == (2 + 5 + 3,)
    task = env.unwrapped.task
    steps, inner, returns = 0, [], []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(2)
        steps += 1
        assert not truncated and env.unwrapped.task == task
        inner.append(info["trial_episode"])
        if "inner_return" in info:
            returns.append(info["inner_return"])
            assert info["inner_length"] == 15
            assert obs[trial["done"]][0] == 1.0
            # the cell the episode ended on (right 15 times from (0, 0)); obs shows the next start
            assert info["inner_final_obs"].tolist() == [0.0, 4.0]
        else:
            assert obs[trial["done"]][0] == 0.0
        np.testing.assert_array_equal(obs[trial["prev_action"]], np.eye(5)[2])
        assert obs[trial["prev_reward"]][0] == pytest.approx(reward)
    assert steps == 45 and inner == [0] * 15 + [1] * 15 + [2] * 15
    assert len(returns) == 3 and returns[0] == returns[1] == returns[2]  # same task, same policy
    assert obs[trial["episode"]][0] == 1.0


def test_trial_first_observation_and_episode_index() -> None:
    env = Trial(MetaGridEnv("gridnavi"), episodes_per_trial=4)
    obs, _ = env.reset(seed=1, options={"task": GridTask("gridnavi", (4, 4))})
    sl = env.obs_slices
    assert obs[sl["obs"]].tolist() == [0.0, 0.0]
    assert not obs[sl["prev_action"]].any() and obs[sl["prev_reward"]][0] == 0 and obs[sl["episode"]][0] == 0
    for _ in range(15):
        obs, *_ = env.step(3)
    assert obs[sl["episode"]][0] == pytest.approx(0.25) and obs[sl["obs"]].tolist() == [0.0, 0.0]


def test_new_task_only_at_trial_start() -> None:
    env = Trial(MetaGridEnv("gridnavi"), episodes_per_trial=2)
    env.reset(seed=3)
    seen = []
    for _ in range(20):
        tasks = set()
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = env.step(0)
            tasks.add(env.unwrapped.task)
        assert len(tasks) == 1
        seen.append(tasks.pop())
        env.reset()
    assert len(set(seen)) > 3


def test_pinned_task_persists_across_trials() -> None:
    env = gym.make("MetaGrid-FourRooms-Trial-v0")
    task = GridTask("four_rooms", (8, 8))
    env.unwrapped.task = task
    for seed in range(3):
        env.reset(seed=seed)
        assert env.unwrapped.task == task


@pytest.mark.parametrize("level", ["gridnavi", "procedural"])
def test_trial_vector_equals_single_trials(level: str) -> None:
    n, k = 5, 3
    inner = MetaGridVectorEnv(n, level=level, autoreset_mode="Disabled")
    fast = TrialVector(inner, episodes_per_trial=k, autoreset_mode="SameStep")
    slow = gym.vector.SyncVectorEnv(
        [lambda: Trial(MetaGridEnv(level), k) for _ in range(n)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    family = MetaGridEnv(level).family
    task = family.sample(np.random.default_rng(0), 1, family.splits[-1])[0]
    slow.envs[1].unwrapped.task = task
    fast.set_attr("task", [None, task, None, None, None])
    np.testing.assert_array_equal(fast.reset(seed=9)[0], slow.reset(seed=9)[0])
    rng = np.random.default_rng(1)
    trials_done = inner_done = 0
    for _ in range(500):
        actions = rng.integers(0, 5, n)
        f, s = fast.step(actions), slow.step(actions)
        for x, y in zip(f[:4], s[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(f[4]["trial_episode"], s[4]["trial_episode"])
        if "_inner_return" in s[4]:
            np.testing.assert_array_equal(f[4]["_inner_return"], s[4]["_inner_return"])
            np.testing.assert_allclose(f[4]["inner_return"], s[4]["inner_return"])
            for i in np.flatnonzero(s[4]["_inner_return"]):
                np.testing.assert_array_equal(f[4]["inner_final_obs"][i], s[4]["inner_final_obs"][i])
            inner_done += int(s[4]["_inner_return"].sum())
        if "_final_obs" in s[4]:
            for key in ("_inner_return", "_inner_length", "_inner_final_obs"):  # the ended trials' only
                np.testing.assert_array_equal(f[4]["final_info"][key], s[4]["final_info"][key])
            for i in np.flatnonzero(s[4]["_final_obs"]):
                np.testing.assert_array_equal(f[4]["final_obs"][i], s[4]["final_obs"][i])
                for key in ("trial_episode", "inner_return", "inner_length"):
                    assert f[4]["final_info"][key][i] == pytest.approx(s[4]["final_info"][key][i])
                final_reached = f[4]["final_info"]["inner_final_obs"][i]
                np.testing.assert_array_equal(final_reached, s[4]["final_info"]["inner_final_obs"][i])
                np.testing.assert_array_equal(final_reached, f[4]["final_obs"][i][fast.obs_slices["obs"]])
        trials_done += int(f[2].sum())
        assert fast.get_attr("task")[1] == task
    assert trials_done >= 5 and inner_done >= 2 * trials_done  # K-1 at the top level, the last in final_info


def test_make_vec_trial_id_and_modes() -> None:
    envs = gym.make_vec("MetaGrid-GridNavi-Trial-v0", num_envs=4, episodes_per_trial=2)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP  # Gymnasium's default
    obs, info = envs.reset(seed=0)
    assert obs.shape == (4, 10) and (info["trial_episode"] == 0).all()
    done = np.zeros(4, dtype=bool)
    for _ in range(30):
        obs, _, terminated, _, _ = envs.step(np.zeros(4, dtype=np.int64))
        done |= terminated
    assert done.all()
    with pytest.raises(ValueError, match=r"autoreset_mode: .* allowed: \['SameStep', 'NextStep', 'Disabled'\]"):
        make_trial_vector(2, "MetaGrid-GridNavi-v0", autoreset_mode="Later")
    with pytest.raises(ValueError, match="with autoreset_mode SameStep needs an env with autoreset_mode Disabled"):
        TrialVector(MetaGridVectorEnv(2), autoreset_mode="SameStep")
    with pytest.raises(ValueError, match="with autoreset_mode NextStep needs an env with autoreset_mode NextStep"):
        TrialVector(MetaGridVectorEnv(2, autoreset_mode="Disabled"))


@pytest.mark.parametrize(
    ("trial_id", "cap"),
    [
        ("MetaBandit-Trial-v0", None),
        ("MetaGrid-GridNavi-Trial-v0", None),
        ("MetaGrid-Trial-v0", None),
        ("MetaCartPole-Trial-v0", 45),  # trials cut mid-episode
    ],
)
def test_trial_vector_next_step_equals_sync_trials(trial_id: str, cap: int | None) -> None:
    """NEXT_STEP on the fast path is Gymnasium's NEXT_STEP over single trial envs, fresh tasks included."""
    n, mode = 4, gym.vector.AutoresetMode.NEXT_STEP
    fast = gym.make_vec(trial_id, num_envs=n, autoreset_mode=mode, max_episode_steps=cap)
    slow = gym.make_vec(
        trial_id, num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, max_episode_steps=cap
    )
    assert fast.metadata["autoreset_mode"] == slow.metadata["autoreset_mode"] == mode
    np.testing.assert_array_equal(fast.reset(seed=3)[0], slow.reset(seed=3)[0])
    fast.action_space.seed(4)
    ends = 0
    for _ in range(300):
        actions = fast.action_space.sample()
        f, s = fast.step(actions), slow.step(actions)
        for x, y in zip(f[:4], s[:4], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
        ends += int((f[2] | f[3]).sum())
    assert ends >= n
    assert list(fast.get_attr("task")) == [env.unwrapped.task for env in slow.envs]


def test_bad_trial_arguments() -> None:
    with pytest.raises(ValueError, match="episodes_per_trial: expected an integer >= 1, got 0"):
        gym.make("MetaGrid-Trial-v0", episodes_per_trial=0)
    with pytest.raises(TypeError, match="env: expected a metagym family env"):
        Trial(gym.make("CartPole-v1"))


def test_make_vec_trial_id_truncates_at_max_episode_steps_as_make_does() -> None:
    tid = "MetaGrid-GridNavi-Trial-v0"
    single = gym.make(tid, max_episode_steps=3)
    single.reset(seed=0)
    expected = [single.step(0)[3] for _ in range(3)]
    envs = gym.make_vec(tid, num_envs=2, max_episode_steps=3, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=0)
    got = [envs.step(np.zeros(2, dtype=np.int64)) for _ in range(4)]
    assert [bool(step[3][0]) for step in got[:3]] == expected == [False, False, True]
    assert got[2][4]["_final_obs"].all() and not got[3][3].any()  # the trial restarted


def test_disabled_autoreset_refuses_to_step_a_finished_env() -> None:
    envs = gym.make_vec("MetaGrid-GridNavi-v0", num_envs=2, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    envs.reset(seed=0)
    for _ in range(15):  # the horizon: every episode ends
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(gym.error.ResetNeeded, match=r"sub-env\(s\) \[0, 1\].*reset_mask"):
        envs.step(np.zeros(2, dtype=np.int64))
    envs.reset(options={"reset_mask": np.array([True, True])})
    envs.step(np.zeros(2, dtype=np.int64))
    trials = gym.make_vec("MetaGrid-GridNavi-Trial-v0", num_envs=2, max_episode_steps=2, autoreset_mode="Disabled")
    trials.reset(seed=0)
    trials.step(np.zeros(2, dtype=np.int64))
    assert trials.step(np.zeros(2, dtype=np.int64))[3].all()
    with pytest.raises(gym.error.ResetNeeded, match=r"trial\(s\) \[0, 1\] ended"):
        trials.step(np.zeros(2, dtype=np.int64))


#: Spaces of trial observation parts, each with the dtypes its values can come in.
_PART_SPACES = [
    (spaces.Discrete(5), (np.uint8, np.int8, np.int32, np.int64)),
    (spaces.Discrete(3, start=-1), (np.int8, np.int32, np.int64)),
    (spaces.MultiDiscrete([3, 4, 2]), (np.uint8, np.int8, np.int32, np.int64)),
    (spaces.MultiDiscrete([3, 4], start=[1, -2]), (np.int8, np.int32, np.int64)),
    (spaces.Box(-1.0, 1.0, (3,)), (np.float32, np.float64)),
    (spaces.MultiBinary(4), (np.uint8, np.int8, np.int64)),
]


@pytest.mark.parametrize(
    ("space", "dtype"), [(space, dtype) for space, dtypes in _PART_SPACES for dtype in dtypes], ids=str
)
def test_trial_observation_parts_are_written_in_place_as_flatten_batch_makes_them(space, dtype) -> None:  # type: ignore[no-untyped-def]
    """The trial observation writes one-hots straight into its columns (a batch's hot path):
    the same as ``flatten_batch``, for actions of any integer dtype (uint8 came from a fuzz test)."""
    from metagym.wrappers import _flatten_into

    space.seed(0)
    x = np.stack([space.sample() for _ in range(7)]).astype(dtype)
    start = 250
    where = slice(start, start + spaces.flatdim(space))
    out = np.zeros((7, 300), np.float32)
    _flatten_into(out, where, space, x)
    expected = np.zeros((7, 300), np.float32)
    expected[:, where] = flatten_batch(space, x, 7)
    np.testing.assert_array_equal(out, expected)
