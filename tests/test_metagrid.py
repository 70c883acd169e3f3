"""MetaGrid: GridNavi faithfulness, the leak guard, batched == single, task rules, bad input."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from metagym.envs.metagrid import GridFamily, GridTask, MetaGridEnv, MetaGridVectorEnv, layout_of

UP, RIGHT, DOWN, LEFT, NOOP = 1, 2, 3, 4, 0


def test_gridnavi_is_varibads() -> None:
    env = gym.make("MetaGrid-GridNavi-v0")
    obs, _ = env.reset(seed=0, options={"task": GridTask("gridnavi", (0, 2))})
    assert obs.tolist() == [0, 0] and env.observation_space.shape == (2,)
    assert env.action_space.n == 5
    obs, reward, terminated, truncated, _ = env.step(RIGHT)
    assert obs.tolist() == [0, 1] and reward == pytest.approx(-0.1)
    obs, reward, terminated, truncated, _ = env.step(RIGHT)
    assert obs.tolist() == [0, 2] and reward == 1.0 and not terminated  # the episode goes on at the goal
    obs, reward, *_ = env.step(NOOP)
    assert reward == 1.0
    obs, reward, *_ = env.step(UP)  # off the grid: stays, still on the goal
    assert obs.tolist() == [0, 2] and reward == 1.0
    for step in range(5, 16):
        _, _, terminated, truncated, _ = env.step(NOOP)
        assert not terminated and truncated == (step == 15)
    assert env.unwrapped.family.episodes_per_trial == 4


def test_walls_block_and_goal_terminates_in_rooms() -> None:
    env = MetaGridEnv(level="four_rooms")
    env.reset(seed=0, options={"task": GridTask("four_rooms", (2, 6))})
    for _ in range(4):
        obs, *_ = env.step(RIGHT)
    assert obs[:2].tolist() == [0, 4]  # (0, 5) is a wall
    view = obs[2:].reshape(3, 3)
    assert view[1, 2] == 2 and view[0, :].tolist() == [2, 2, 2]  # wall to the right, edge above
    for action in (DOWN, DOWN, RIGHT, RIGHT):
        obs, reward, terminated, *_ = env.step(action)
    assert obs[:2].tolist() == [2, 6] and reward == 1.0 and terminated


@pytest.mark.parametrize("level", ["gridnavi", "open_room", "four_rooms", "procedural"])
def test_leak_guard_goal_never_observed(level: str) -> None:
    """Two tasks that differ only in the hidden goal look the same until the goal is found."""
    family = GridFamily(level)
    base = family.sample(np.random.default_rng(0), 1)[0]
    goals = layout_of(base).goal_cells
    other = dataclasses.replace(base, goal=goals[len(goals) // 2 if goals[len(goals) // 2] != base.goal else 0])
    assert other.goal != base.goal
    a, b = MetaGridEnv(level), MetaGridEnv(level)
    oa, _ = a.reset(seed=1, options={"task": base})
    ob, _ = b.reset(seed=1, options={"task": other})
    rng = np.random.default_rng(2)
    compared = 0
    for _ in range(500):
        np.testing.assert_array_equal(oa, ob)
        compared += 1
        action = int(rng.integers(0, 5))
        oa, ra, ta, tra, _ = a.step(action)
        ob, rb, tb, _, _ = b.step(action)
        if ra != rb or ta or tb:  # one of them found its goal: from here they may differ
            break
        if tra:
            oa, _ = a.reset(options={"keep_task": True})
            ob, _ = b.reset(options={"keep_task": True})
    assert compared > 5


@pytest.mark.parametrize("level", ["gridnavi", "four_rooms", "procedural"])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_batched_equals_single(level: str, mode: AutoresetMode) -> None:
    """The vector env gives what N single envs give, in Gymnasium's SyncVectorEnv, step for step."""
    n = 6
    family = GridFamily(level)
    tasks = family.sample(np.random.default_rng(3), n, family.splits[-1])
    fast = MetaGridVectorEnv(n, level=level, autoreset_mode=mode)
    slow = gym.vector.SyncVectorEnv([lambda: MetaGridEnv(level) for _ in range(n)], autoreset_mode=mode)
    pinned = [tasks[0], None, tasks[2], None, tasks[4], None]  # half pinned, half drawing new tasks
    for i in (0, 2, 4):
        slow.envs[i].unwrapped.task = tasks[i]
    fast.set_attr("task", pinned)
    fo, _ = fast.reset(seed=11)
    so, _ = slow.reset(seed=11)
    np.testing.assert_array_equal(fo, so)
    rng = np.random.default_rng(4)
    ends = 0
    for _ in range(400):
        actions = rng.integers(0, 5, n)
        f, s = fast.step(actions), slow.step(actions)
        for x, y in zip(f[:4], s[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        if mode == AutoresetMode.SAME_STEP and "_final_obs" in s[4]:
            np.testing.assert_array_equal(f[4]["_final_obs"], s[4]["_final_obs"])
            for i in np.flatnonzero(s[4]["_final_obs"]):
                np.testing.assert_array_equal(f[4]["final_obs"][i], s[4]["final_obs"][i])
        ends += int((f[2] | f[3]).sum())
        assert list(fast.get_attr("task")) == list(slow.get_attr("task"))
    assert ends > 10
    assert fast.get_attr("task")[0] == tasks[0]


def test_disabled_autoreset_and_reset_mask() -> None:
    envs = MetaGridVectorEnv(3, level="gridnavi", autoreset_mode="Disabled")
    envs.reset(seed=0)
    for _ in range(15):
        _, _, _, truncated, _ = envs.step(np.zeros(3, dtype=np.int64))
    assert truncated.all()
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False, False])})
    assert obs[0].tolist() == [0, 0]


def test_task_rules_single_env() -> None:
    env = MetaGridEnv("gridnavi")
    env.reset(seed=0)
    drawn = {env.reset()[0].tobytes() and env.task for _ in range(30)}
    assert len(drawn) > 3  # unpinned: a new train task at each reset
    assert all(env.family.split_of(t) == "train" for t in drawn)
    task = GridTask("gridnavi", (4, 4))
    env.task = task  # pins
    assert all(env.reset()[0] is not None and env.get_task() == task for _ in range(5))
    other = GridTask("gridnavi", (3, 3))
    env.reset(options={"task": other})
    assert env.task == other
    env.reset()
    assert env.task == task  # options do not pin
    env.set_task(None)
    assert len({env.reset()[0].tobytes() and env.task for _ in range(30)}) > 3


def test_task_and_episode_streams_are_separate() -> None:
    """The task drawn at reset depends only on the seed, not on how many steps were taken."""
    a, b = MetaGridEnv("procedural"), MetaGridEnv("procedural")
    a.reset(seed=5)
    b.reset(seed=5)
    assert a.task == b.task
    for _ in range(7):
        a.step(1)
    while True:
        *_, terminated, truncated, _ = a.step(0)
        if terminated or truncated:
            break
    a.reset()
    b.reset()
    assert a.task == b.task


def test_setting_task_recomputes_layout() -> None:
    env = MetaGridEnv("procedural")
    tasks = env.sample_tasks(2, split="ood")
    env.task = tasks[0]
    env.reset(seed=0)
    shape0 = tuple(env._dyn.shapes[0])
    env.task = tasks[1]
    assert tuple(env._dyn.shapes[0]) == (tasks[1].size, tasks[1].size)
    assert shape0 == (tasks[0].size, tasks[0].size)
    assert env._dyn.horizons[0] == tasks[1].size ** 2


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: MetaGridEnv(level="maze"), ValueError, ["level", "allowed"]),
        (lambda: MetaGridEnv(view_size=4), ValueError, ["view_size", "odd"]),
        (lambda: MetaGridEnv(render_mode="window"), ValueError, ["render_mode", "rgb_array"]),
        (lambda: MetaGridVectorEnv(0), ValueError, ["num_envs", "from 1 to"]),
        (lambda: MetaGridVectorEnv(2, autoreset_mode="sometimes"), ValueError, ["autoreset_mode", "NextStep"]),
    ],
)
def test_bad_construction(make, error, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        make()
    assert all(w in str(info.value) for w in words)


def test_bad_calls() -> None:
    env = gym.make("MetaGrid-GridNavi-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: 7 is not in \{0, ..., 4\}"):
        env.step(7)
    with pytest.raises(ValueError, match="action: expected 1 integer"):
        env.step(1.5)
    with pytest.raises(ValueError, match=r"options: unknown keys \['goal'\]"):
        env.reset(options={"goal": (2, 2)})
    with pytest.raises(TypeError, match="options\\['task'\\]: expected a GridTask"):
        env.reset(options={"task": (2, 2)})
    with pytest.raises(ValueError, match=r"task\.goal"):
        env.unwrapped.task = GridTask("gridnavi", (1, 1))
    with pytest.raises(ValueError, match="split"):
        env.unwrapped.sample_tasks(2, split="ood")
    envs = MetaGridVectorEnv(2, level="gridnavi")
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(np.zeros(2, dtype=np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="expected a task or a sequence of 2"):
        envs.set_attr("task", [GridTask("gridnavi", (4, 4))])
    with pytest.raises(ValueError, match="only 'task' can be set"):
        envs.set_attr("level", "four_rooms")
    with pytest.raises(ValueError, match="action: expected 2 integer"):
        envs.step(np.zeros(3, dtype=np.int64))


def test_metamaze_sees_only_its_surroundings() -> None:
    from metagym.envs.metamaze import MazeFamily, MetaMazeEnv, maze_layout

    env = MetaMazeEnv()
    task = MazeFamily().sample(np.random.default_rng(0), 1)[0]
    obs, _ = env.reset(seed=0, options={"task": task})
    assert obs.shape == (9,) and set(obs.tolist()) <= {1, 2}
    walls = np.pad(maze_layout(task.seed, task.size, task.loops).walls, 1, constant_values=True)
    np.testing.assert_array_equal(obs, np.where(walls[0:3, 0:3], 2, 1).ravel())
    with_position = MetaMazeEnv(observe_position=True)
    assert with_position.reset(seed=0, options={"task": task})[0][:2].tolist() == [0, 0]
    with pytest.raises(ValueError, match="view_size: an agent that does not see its position needs a view"):
        MetaMazeEnv(view_size=0)


def test_perfect_maze_is_a_tree() -> None:
    from metagym.envs.metamaze import maze_layout

    for seed in range(20):
        layout = maze_layout(seed, 11, 0.0)
        floor = int((~layout.walls).sum())
        edges = int(
            (~layout.walls[:, :-1] & ~layout.walls[:, 1:]).sum() + (~layout.walls[:-1] & ~layout.walls[1:]).sum()
        )
        assert edges == floor - 1  # connected and acyclic
        assert len(layout.goal_cells) == 6 * 6 - 1


def test_frames_show_cells_ruled_out_in_earlier_episodes() -> None:
    import gymnasium as gym

    env = gym.make("MetaGrid-GridNavi-Trial-v0", render_mode="rgb_array")
    env.reset(seed=0)
    dynamics = env.unwrapped._dyn
    for _ in range(15):  # one whole episode (no goal reached going right then down only)
        env.step(2)
    explored = dynamics.explored[0].copy()
    assert explored.sum() > 1 and dynamics.visited[0].sum() == 1  # a new episode: only the start
    env.step(1)
    assert (dynamics.explored[0] >= explored).all()  # kept across the trial's episodes
    current = env.unwrapped.task
    other = GridTask("gridnavi", (4, 4)) if current.goal != (4, 4) else GridTask("gridnavi", (4, 3))
    env.reset(seed=0, options={"task": other})
    assert not dynamics.explored[0].any()  # a new task: nothing ruled out yet


@pytest.mark.parametrize("env_id", ["MetaGrid-v0", "MetaMaze-v0"])
def test_level_bank_installs_what_the_tasks_describe(env_id: str) -> None:
    """A layout installed from the level bank (fresh draws) equals the one built from the task
    itself, and a seed outside the bank still plays (built on the spot)."""
    from metagym.envs.grid_core import BANK_SEEDS

    banked = gym.make_vec(env_id, num_envs=16).unwrapped
    built = gym.make_vec(env_id, num_envs=16).unwrapped
    family = banked.family
    for split in family.splits:
        arrays = family.draw_arrays(banked._task_streams, np.arange(16), split)
        tasks = [family.from_arrays(arrays, j) for j in range(16)]
        assert {family.split_of(t) for t in tasks} == {split}
        assert all(t.seed < BANK_SEEDS for t in tasks)
        banked._dyn.set_task_arrays(np.arange(16), arrays)
        built._dyn.set_tasks(np.arange(16), tasks)
        for name in ("walls", "codes", "shapes", "start", "goal", "horizons"):
            np.testing.assert_array_equal(getattr(banked._dyn, name), getattr(built._dyn, name), err_msg=name)
    outside = dataclasses.replace(tasks[0], seed=BANK_SEEDS + 12345)
    outside = dataclasses.replace(outside, goal=family.layout(outside).goal_cells[0])
    arrays = family.to_arrays([outside])
    banked._dyn.set_task_arrays(np.arange(1), arrays)
    built._dyn.set_tasks(np.arange(1), [outside])
    np.testing.assert_array_equal(banked._dyn.walls[0], built._dyn.walls[0])


def test_level_bank_builds_a_whole_split_up_front() -> None:
    family = MetaGridEnv("procedural").family
    family.bank.build("validation")
    for v, variant in enumerate(family.bank.variants):
        if variant in family.variants("validation"):
            seeds = family.bank.seeds("validation", v)
            assert len(seeds) > 300 and (family.bank.counts[v, seeds] > 0).all()
            for seed in seeds[:20].tolist():
                goal = family.make_layout(seed, variant).goal_cells[0]
                assert family.split_of(GridTask("procedural", goal, seed, variant[0])) == "validation"
