"""Every family: splits, JSON, batched == single, leak guard, references, bad input."""

from __future__ import annotations

import dataclasses
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import metagym
from metagym.envs.grid_core import LayoutFamily
from metagym.policies import RandomPolicy, run_trials
from metagym.registration import family_of

FAMILY_IDS = metagym.env_ids(trials=False)
BATCHED_IDS = [i for i in FAMILY_IDS if gym.spec(i).vector_entry_point is not None]


def family(env_id: str):  # type: ignore[no-untyped-def]
    return family_of(gym.make(env_id))


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_splits_are_disjoint(env_id: str) -> None:
    fam = family(env_id)
    rng = np.random.default_rng(0)
    ids = {}
    for split in fam.splits:
        tasks = fam.sample(rng, 2000, split)
        assert len(tasks) == 2000 and all(fam.split_of(t) == split for t in tasks)
        ids[split] = {t.task_id for t in tasks}
    for a in ids:
        for b in ids:
            if a < b:
                assert not ids[a] & ids[b], f"{env_id}: {a} and {b} share tasks"


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_task_json_and_pickle_round_trip(env_id: str) -> None:
    fam = family(env_id)
    for task in [*fam.sample(np.random.default_rng(1), 50, fam.splits[-1]), fam.default_task]:
        assert type(task).from_json(task.to_json()) == task
        assert pickle.loads(pickle.dumps(task)) == task
        assert type(task).from_json(task.to_json()).task_id == task.task_id
    assert pickle.loads(pickle.dumps(fam)).describe() == fam.describe()


@pytest.mark.parametrize("env_id", BATCHED_IDS)
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_batched_equals_single(env_id: str, mode: AutoresetMode) -> None:
    n = 4
    fast = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode)
    slow = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode})
    fam = fast.get_attr("family")[0]
    tasks = fam.sample(np.random.default_rng(2), n, fam.splits[-1])
    fast.set_attr("task", [tasks[0], None, tasks[2], None])
    slow.envs[0].unwrapped.task, slow.envs[2].unwrapped.task = tasks[0], tasks[2]
    np.testing.assert_array_equal(fast.reset(seed=5)[0], slow.reset(seed=5)[0])
    fast.action_space.seed(6)
    ends = 0
    for _ in range(max(250, fam.horizon + 20)):  # long enough for every sub-env to end once
        actions = fast.action_space.sample()
        f, s = fast.step(actions), slow.step(actions)
        for x, y in zip(f[:4], s[:4], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
        ends += int((f[2] | f[3]).sum())
    assert ends > 0
    assert list(fast.get_attr("task")) == list(slow.get_attr("task"))


@pytest.mark.parametrize("env_id", BATCHED_IDS)
def test_tasks_drawn_ahead_follow_the_streams(env_id: str) -> None:
    """A batched env draws each sub-env's next fresh task ahead of time; reseeding a sub-env or
    reading its task stream otherwise (``sample_tasks`` reads sub-env 0's) must not leave a
    stale task behind: every sub-env keeps playing what a single env with its seed plays."""
    n, cap = 3, 40  # episodes of at most 40 steps: every sub-env draws tasks often
    fast = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", max_episode_steps=cap)
    slow = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", max_episode_steps=cap)
    fast.action_space.seed(1)

    def play(steps: int) -> np.ndarray:
        """Step both; the sub-envs whose episode ended at the last step."""
        for _ in range(steps):
            actions = fast.action_space.sample()
            f, s = fast.step(actions), slow.step(actions)
            for x, y in zip(f[:4], s[:4], strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
            assert list(fast.get_attr("task")) == list(slow.get_attr("task"))
        return f[2] | f[3]

    for seed in (5, 6, 7):
        np.testing.assert_array_equal(fast.reset(seed=seed)[0], slow.reset(seed=seed)[0])
        ended = play(1)
        while not ended.any():
            ended = play(1)
        play(1)  # NEXT_STEP: the ended sub-envs start again; the others now hold a task drawn ahead
        holders = np.flatnonzero(~ended)
        if 0 in holders:  # sub-env 0's stream moves on: its task drawn ahead is stale
            assert fast.call("sample_tasks", 2)[0] == slow.envs[0].unwrapped.sample_tasks(2)
        if len(holders):  # a reseeded sub-env's is stale too
            seeds: list[int | None] = [None] * n
            seeds[int(holders[-1])] = 100 + seed
            np.testing.assert_array_equal(fast.reset(seed=seeds)[0], slow.reset(seed=seeds)[0])
        play(cap + 5)


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_leak_guard_first_observation(env_id: str) -> None:
    """The first observation never depends on the hidden task (same seed, different tasks)."""
    env = gym.make(env_id)
    fam = family_of(env)
    base = fam.sample(np.random.default_rng(3), 1, fam.splits[0])[0]
    if isinstance(fam, LayoutFamily):  # a layout may be visible by design; the goal is hidden
        twin = dataclasses.replace(base, goal=next(g for g in fam.layout(base).goal_cells if g != base.goal))
    else:
        twin = next(t for t in fam.sample(np.random.default_rng(4), 10, fam.splits[0]) if t != base)
    assert twin != base
    first, second = (env.reset(seed=7, options={"task": t})[0] for t in (base, twin))
    np.testing.assert_array_equal(first, second)


def test_leak_guard_point_nav_whole_episode() -> None:
    env_a, env_b = gym.make("PointNav2D-v0"), gym.make("PointNav2D-v0")
    fam = family_of(env_a)
    ta, tb = fam.sample(np.random.default_rng(0), 2)
    oa, _ = env_a.reset(seed=0, options={"task": ta})
    ob, _ = env_b.reset(seed=0, options={"task": tb})
    env_a.action_space.seed(0)
    for _ in range(50):
        np.testing.assert_array_equal(oa, ob)
        action = env_a.action_space.sample()
        oa, *_ = env_a.step(action)
        ob, *_ = env_b.step(action)


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_oracle_beats_random(env_id: str) -> None:
    env = gym.make(env_id)
    fam = family_of(env)
    slow = gym.spec(env_id).vector_entry_point is None  # MuJoCo: the oracle plans with the model
    tasks = fam.sample(np.random.default_rng(8), 1 if slow else 30, fam.splits[-1])
    k = 1 if slow else min(fam.episodes_per_trial, 10)
    oracle = run_trials(env, fam.oracle_policy(), tasks, k, seed=1).sum(axis=1).mean()
    random = run_trials(env, RandomPolicy(env.action_space), tasks, k, seed=1).sum(axis=1).mean()
    assert oracle > random


@pytest.mark.parametrize(
    ("env_id", "kwargs", "words"),
    [
        ("MetaBandit-v0", {"arms": 1}, "arms: expected an integer from 2 to 100"),
        ("MetaBandit-v0", {"prior": "beta"}, "prior: unknown prior 'beta'"),
        ("MetaBandit-v0", {"prior": "dependent", "arms": 3}, "arms: prior 'dependent' has exactly 2 arms"),
        ("MetaTabularMDP-v0", {"states": 0}, "states: expected an integer from 2 to 100"),
        ("MetaTabularMDP-v0", {"episode_length": 2.5}, "episode_length: expected an integer"),
    ],
)
def test_bad_family_arguments(env_id: str, kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError) as info:
        gym.make(env_id, **kwargs)
    assert words in str(info.value)


def test_bad_tasks_are_named() -> None:
    from metagym.envs.bandit import BanditTask
    from metagym.envs.point_nav import NavTask
    from metagym.envs.tabular_mdp import TabularMDPTask

    with pytest.raises(ValueError, match=r"task\.probs: expected 5 probabilities"):
        family("MetaBandit-v0").validate(BanditTask((0.5, 0.5)))
    with pytest.raises(ValueError, match=r"task\.probs: every probability must lie in \[0, 1\]"):
        family("MetaBandit-v0").validate(BanditTask((0.5, 0.5, 0.5, 0.5, 1.5)))
    with pytest.raises(ValueError, match=r"allows only \(\(0\.1, 0\.9\), \(0\.9, 0\.1\)\)"):
        family("MetaBandit-DependentEasy-v0").validate(BanditTask((0.2, 0.8)))
    with pytest.raises(ValueError, match=r"has no held-out tasks, so no 'test' split.*use split 'train'"):
        family("MetaBandit-DependentEasy-v0").sample(np.random.default_rng(0), 1, "test")
    with pytest.raises(ValueError, match=r"task\.seed: expected an integer"):
        family("MetaTabularMDP-v0").validate(TabularMDPTask(-3))
    with pytest.raises(ValueError, match=r"task\.goal: each coordinate must lie in \[-1\.0, 1\.0\]"):
        family("PointNav2D-v0").validate(NavTask((0.2, 3.0)))
    with pytest.raises(ValueError, match="action: values must be finite"):
        env = gym.make("PointNav2D-v0")
        env.reset(seed=0)
        env.step(np.array([np.nan, 0.0], dtype=np.float32))


def test_bandit_frames_follow_the_trial() -> None:
    """Each frame shows the last pull and the running wins/pulls per arm: no two alike in a trial."""
    import gymnasium as gym

    env = gym.make("MetaBandit-Trial-v0", render_mode="rgb_array")
    env.reset(seed=0)
    env.action_space.seed(0)
    frames = []
    for _ in range(10):
        env.step(env.action_space.sample())
        frames.append(env.render().tobytes())
    assert len(set(frames)) == 10
    dynamics = env.unwrapped._dyn
    assert dynamics.pulls.sum() == 10 and 0 <= dynamics.wins.sum() <= 10
