"""Classic-control variants: the default task is Gymnasium's env step for step; oracles."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from metagym.policies import RandomPolicy, run_trials
from metagym.registration import family_of

PAIRS = [
    ("MetaCartPole-v0", "CartPole-v1"),
    ("MetaPendulum-v0", "Pendulum-v1"),
    ("MetaMountainCar-v0", "MountainCar-v0"),
    ("MetaAcrobot-v0", "Acrobot-v1"),
]


@pytest.mark.parametrize(("ours_id", "gym_id"), PAIRS)
def test_default_task_is_gymnasium_step_for_step(ours_id: str, gym_id: str) -> None:
    ours, ref = gym.make(ours_id).unwrapped, gym.make(gym_id).unwrapped
    default = family_of(ours).default_task
    ref.action_space.seed(0)
    steps = 0
    for episode in range(5):
        ours.reset(seed=episode, options={"task": default})
        ref.reset(seed=episode)
        # The start is drawn from metagym's own stream (the same range as Gymnasium's, checked
        # below); from the same start, every step must match.
        ref.state = np.array(ours._dyn.state[0], dtype=np.asarray(ref.state).dtype)
        for _ in range(200):
            action = ref.action_space.sample()
            o1, r1, t1, _, _ = ours.step(action)
            o2, r2, t2, _, _ = ref.step(action)
            steps += 1
            np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
            assert (r1, t1) == pytest.approx((r2, t2))
            if t1:
                break
    assert steps > 50


@pytest.mark.parametrize(("ours_id", "gym_id"), PAIRS)
def test_start_states_cover_gymnasiums_range(ours_id: str, gym_id: str) -> None:
    ours, ref = gym.make(ours_id).unwrapped, gym.make(gym_id).unwrapped
    starts = []
    for seed in range(400):
        ours.reset(seed=seed)
        ref.reset(seed=seed)
        starts.append((np.array(ours._dyn.state[0], dtype=np.float64), np.array(ref.state, dtype=np.float64)))
    mine, theirs = (np.array(s) for s in zip(*starts, strict=True))
    width = theirs.max(axis=0) - theirs.min(axis=0)
    np.testing.assert_allclose(mine.min(axis=0), theirs.min(axis=0), atol=0.03 * width.max())
    np.testing.assert_allclose(mine.max(axis=0), theirs.max(axis=0), atol=0.03 * width.max())


@pytest.mark.parametrize("ours_id", [p[0] for p in PAIRS])
def test_setting_task_changes_dynamics(ours_id: str) -> None:
    env = gym.make(ours_id).unwrapped
    fam = family_of(env)
    a, b = fam.sample(np.random.default_rng(0), 2, "ood")
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(20)]
    traces = []
    for task in (a, b):
        obs, _ = env.reset(seed=0, options={"task": task})
        trace = [obs]
        for action in actions:
            obs, *_ = env.step(action)
            trace.append(obs)
        traces.append(np.array(trace))
    assert not np.allclose(traces[0], traces[1])


@pytest.mark.parametrize("ours_id", [p[0] for p in PAIRS])
def test_oracle_is_good_on_every_split(ours_id: str) -> None:
    env = gym.make(ours_id)
    fam = family_of(env)
    for split in fam.splits:
        tasks = fam.sample(np.random.default_rng(1), 10, split)
        oracle = run_trials(env, fam.oracle_policy(), tasks, 1).mean()
        random = run_trials(env, RandomPolicy(env.action_space), tasks, 1).mean()
        assert oracle > random
