"""Meta-World as metagym families (the metaworld extra): ids, splits, determinism, vector forms,
the scripted oracle's success, a tiny RL² run through the CLI, and the extra missing."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metagym

metaworld = pytest.importorskip("metaworld")

from metagym import meta_world_names  # noqa: E402
from metagym.envs.meta_world import MetaWorldTask  # noqa: E402
from metagym.meta_world_names import benchmark_names, ml1_id  # noqa: E402

FAST_IDS = ["MetaWorld-ML1-Reach-v0", "MetaWorld-ML1-Push-v0", "MetaWorld-ML1-PickPlace-v0"]
ML1_IDS = [ml1_id(name) for name in benchmark_names().get("ML1", ())]


def check(env_id: str) -> None:
    env = gym.make(env_id, disable_env_checker=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(infinity|maximum and minimum values are equal).*")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_the_names_are_meta_worlds_own_and_every_ml1_environment_has_an_id() -> None:
    names = benchmark_names()
    assert names["ML1"] == tuple(metaworld.ML1.ENV_NAMES) and len(names["ML1"]) == 50
    for bench in ("ML10", "ML45"):
        table = getattr(metaworld.env_dict, f"{bench}_V3")
        assert names[f"{bench}-train"] == tuple(table["train"]) and names[f"{bench}-test"] == tuple(table["test"])
    ids = metagym.env_ids(trials=False, metaworld=True)
    assert {ml1_id(n) for n in metaworld.ML1.ENV_NAMES} | {"MetaWorld-ML10-v0", "MetaWorld-ML45-v0"} <= set(ids)
    assert not any(i.startswith("MetaWorld") for i in metagym.env_ids())  # asked for, not by default
    assert ml1_id("pick-place-v3") == "MetaWorld-ML1-PickPlace-v0"
    for env_id in ids:
        assert env_id in gym.registry and metagym.trial_id(env_id) in gym.registry


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_ml1_ids_pass_gymnasiums_checker(env_id: str) -> None:
    check(env_id)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ML1_IDS)
def test_every_ml1_id_passes_gymnasiums_checker(env_id: str) -> None:
    check(env_id)


def meta_worlds_tasks(bench: object) -> dict[str, set[tuple[str, tuple[float, ...]]]]:
    def keys(tasks: list) -> set[tuple[str, tuple[float, ...]]]:
        return {(t.env_name, tuple(float(x) for x in pickle.loads(t.data)["rand_vec"])) for t in tasks}

    return {"train": keys(bench.train_tasks), "test": keys(bench.test_tasks)}  # type: ignore[attr-defined]


def splits_of(env_id: str) -> dict[str, set[tuple[str, tuple[float, ...]]]]:
    family = gym.make(env_id, disable_env_checker=True).unwrapped.family
    out = {}
    for split in family.splits:
        tasks = family.task_set(split)
        assert all(family.split_of(t) == split for t in tasks)
        out[split] = {(t.env_name, t.rand_vec) for t in tasks}
    return out


def test_ml1_splits_are_meta_worlds_with_validation_taken_from_train() -> None:
    ours = splits_of("MetaWorld-ML1-Reach-v0")
    theirs = meta_worlds_tasks(metaworld.ML1("reach-v3", seed=0))
    assert ours["train"] | ours["validation"] == theirs["train"] and ours["test"] == theirs["test"]
    assert not ours["train"] & ours["validation"] and not ours["train"] & ours["test"]
    assert (len(ours["train"]), len(ours["validation"]), len(ours["test"])) == (45, 5, 50)


@pytest.mark.slow
def test_ml10_and_ml45_splits_hold_meta_worlds_train_and_test_environments() -> None:
    for bench in ("ML10", "ML45"):
        ours = splits_of(f"MetaWorld-{bench}-v0")
        theirs = meta_worlds_tasks(getattr(metaworld, bench)(seed=0))
        assert ours["train"] | ours["validation"] == theirs["train"] and ours["test"] == theirs["test"]
        train_envs = {name for name, _ in ours["train"]}
        assert train_envs == {name for name, _ in ours["validation"]}
        assert not train_envs & {name for name, _ in ours["test"]}  # test environments never seen in training


def test_tasks_round_trip_through_json_and_are_checked() -> None:
    env = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True)
    family = env.unwrapped.family
    task = family.sample(np.random.default_rng(3), 1, "test")[0]
    again = MetaWorldTask.from_json(task.to_json())
    assert again == task and family.split_of(again) == "test"
    env.reset(seed=0, options={"task": json.loads(task.to_json())})  # a task's dict works too
    assert env.unwrapped.task == task
    with pytest.raises(ValueError, match="not one of MetaWorld-ML1\\[reach-v3\\]'s tasks"):
        env.reset(options={"task": MetaWorldTask("reach-v3", (0.0,) * 6)})
    with pytest.raises(ValueError, match="env_name: expected one of \\['reach-v3'\\]"):
        env.reset(options={"task": MetaWorldTask("push-v3", task.rand_vec)})
    with pytest.raises(ValueError, match="env_name: expected one of Meta-World's v3 environments"):
        gym.make("MetaWorld-ML1-Reach-v0", env_name="reach-v2")
    with pytest.raises(ValueError, match="env_name: ML10 has its own 10 training environments"):
        gym.make("MetaWorld-ML10-v0", env_name="push-v3")  # it was dropped without a word


def test_our_task_plays_as_meta_worlds_own_task() -> None:
    """Installing our task in our env gives the trajectory Meta-World's own env gives for its task."""
    bench = metaworld.ML1("reach-v3", seed=0)
    theirs = bench.train_classes["reach-v3"]()
    theirs.set_task(bench.test_tasks[7])
    ours = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True)
    task = ours.unwrapped.family.task_set("test")[7]
    a, _ = theirs.reset()
    b, _ = ours.reset(seed=0, options={"task": task})
    np.testing.assert_array_equal(a, b)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 4)).astype(np.float32)
    for action in actions:
        a, ra, *_, ia = theirs.step(action)
        b, rb, *_, ib = ours.step(action)
        np.testing.assert_array_equal(a, b)
        assert ra == rb and bool(ia["success"]) == ib["success"]


SCRIPT = """
import gymnasium as gym, numpy as np, metagym
env = gym.make("MetaWorld-ML1-Reach-v0")
obs, _ = env.reset(seed=11)
out = [env.unwrapped.task.to_json(), obs.tolist()]
for a in np.linspace(-1, 1, 40).reshape(10, 4):
    out.append(env.step(a.astype(np.float32))[:2][1])
print(repr(out))
"""


def test_same_seed_same_task_and_steps_in_another_process() -> None:
    here = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    again = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    assert here == again and "reach-v3" in here
    env = gym.make("MetaWorld-ML1-Reach-v0")
    env.reset(seed=11)
    assert env.unwrapped.family.split_of(env.unwrapped.task) == "train"  # resets draw train tasks


def test_async_vector_env_equals_sync_and_has_per_env_tasks() -> None:
    family = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True).unwrapped.family
    tasks = family.task_set("test")[:2]
    runs = []
    for mode in ("async", "sync"):
        envs = gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=2, vectorization=mode)
        envs.set_tasks(list(tasks))
        obs, _ = envs.reset(seed=5)
        assert envs.tasks == list(tasks)
        out = [obs]
        for a in np.random.default_rng(0).uniform(-1, 1, size=(20, 2, 4)):
            obs, reward, _, _, infos = envs.step(a)
            out += [obs, reward, infos["success"]]
        envs.close()
        runs.append(out)
    for x, y in zip(*runs, strict=True):
        np.testing.assert_array_equal(x, y)


def test_set_tasks_takes_what_metagyms_vector_envs_take() -> None:
    """One task broadcast, one per sub-env (None unpins), or None; a wrong length names ``task``."""
    family = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True).unwrapped.family
    first, second = family.task_set("test")[:2]
    envs = gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=2, vectorization="sync")
    envs.set_tasks(first)
    envs.reset(seed=0)
    assert envs.tasks == [first, first]
    envs.set_tasks([None, second])
    envs.reset(seed=1)
    assert envs.tasks[1] == second and family.split_of(envs.tasks[0]) == "train"  # unpinned: a train draw
    with pytest.raises(ValueError, match=r"task: expected a task or a sequence of 2 tasks \(None: unpin\)"):
        envs.set_tasks([first])
    envs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_reset_takes_one_task_per_sub_env_as_metagyms_vector_envs(mode: str) -> None:
    """``reset(options={"task": [...]})``: each sub-env plays its own task once (None: its usual
    draw), later resets draw again; a list of the wrong length is refused, naming the option."""
    family = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True).unwrapped.family
    test = family.task_set("test")
    envs = gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=2, vectorization=mode)
    try:
        envs.reset(seed=1, options={"task": [test[3], test[4]]})
        assert envs.tasks == [test[3], test[4]]
        envs.reset(seed=1, options={"task": [None, test[5]]})
        drawn = envs.tasks
        assert drawn[1] == test[5] and family.split_of(drawn[0]) == "train"
        envs.reset()
        assert all(family.split_of(t) == "train" for t in envs.tasks)
        with pytest.raises(ValueError, match=r"options\['task'\]: expected a task or a sequence of 2 tasks"):
            envs.reset(options={"task": [test[3]]})
    finally:
        envs.close()


def test_ml10_switches_environments_between_tasks() -> None:
    env = gym.make("MetaWorld-ML10-v0", disable_env_checker=True)
    family = env.unwrapped.family
    assert family.env_names[:3] == ("reach-v3", "push-v3", "pick-place-v3") and len(family.env_names) == 15
    seen = set()
    for task in (family.task_set("train")[0], family.task_set("test")[0], family.task_set("validation")[-1]):
        env.reset(seed=0, options={"task": task})
        env.step(env.action_space.sample())
        seen.add(env.unwrapped._dyn.env.__class__.__name__)
    assert len(seen) == 3


def test_the_scripted_oracle_succeeds_on_held_out_reach_tasks() -> None:
    """Meta-World's own scripted policy, shown the hidden goal, succeeds: success detection is
    right with the pinned Meta-World and MuJoCo."""
    env = gym.make("MetaWorld-ML1-Reach-v0", disable_env_checker=True)
    family = env.unwrapped.family
    oracle = family.oracle_policy()
    wins = 0
    for k, task in enumerate(family.task_set("test")[:4]):
        obs, _ = env.reset(seed=k, options={"task": task})
        oracle.reset_trial(task, np.random.default_rng(k))
        success = False
        for _ in range(150):
            obs, _, _, _, info = env.step(oracle.act(obs))
            success |= info["success"]
        wins += success
    assert wins == 4


def test_render_gives_an_rgb_frame() -> None:
    env = gym.make("MetaWorld-ML1-Reach-v0", render_mode="rgb_array", disable_env_checker=True)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


RENDER_ONE = (
    "import gymnasium as gym, metagym; env = gym.make('MetaWorld-ML1-Reach-v0', render_mode='rgb_array');"
    " env.reset(seed=0); frame = env.render(); env.close(); print(frame.shape, frame.std() > 5)"
)


def _without_display(**env: str) -> dict[str, str]:
    import os

    dropped = ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return base | env


def test_a_headless_machine_renders_without_being_told_how() -> None:
    """No display and no MUJOCO_GL (MuJoCo's first choice, GLFW, needs a window): EGL is set."""
    done = subprocess.run([sys.executable, "-c", RENDER_ONE], capture_output=True, text=True, env=_without_display())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(256, 256, 3) True"


def test_an_opengl_that_is_not_there_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """MUJOCO_GL naming a library this machine lacks (OSMesa here): one line saying what to set."""
    pytest.importorskip("torch")
    import ctypes.util

    if ctypes.util.find_library("OSMesa"):
        pytest.skip("OSMesa is installed here")
    train = ["train", "--env", "MetaWorld-ML1-Reach-v0", "--steps", "10", "--run-dir", str(tmp_path / "run")]
    code = f"import metagym.cli as c; raise SystemExit(c.main({train!r}))"
    env = _without_display(MUJOCO_GL="osmesa")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the preset's note
    assert last.startswith("metagym train: MuJoCo found no OpenGL to render with, MUJOCO_GL=osmesa (")
    assert "set MUJOCO_GL=egl" in last and not (tmp_path / "run").exists()
    listed = subprocess.run([sys.executable, "-m", "metagym.cli", "list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "HalfCheetahVel-v0  (unavailable: MuJoCo found no OpenGL" in listed.stdout


def test_a_tiny_rl2_run_trains_and_evaluates_from_the_cli(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from metagym.cli import main

    run = tmp_path / "run"
    args = ["--agent", "rl2", "--env", "MetaWorld-ML1-Reach-v0", "--steps", "2000", "--num-envs", "2"]
    assert (
        main(["train", *args, "--num-minibatches", "1", "--rollout-steps", "500", "--run-dir", str(run), "--quiet"])
        == 0
    )
    out_file = tmp_path / "results.json"
    assert main(["evaluate", "--run-dir", str(run), "--tasks", "2", "--out", str(out_file), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "RL² on 2 tasks of MetaWorld-ML1-Reach-v0 (the test split" in out and "| oracle |" in out
    results = json.loads(out_file.read_text())
    assert results["env"] == "MetaWorld-ML1-Reach-v0" and len(results["tasks"]) == 2
    # Meta-World+'s measure beside the return: success per episode, the reward version stated.
    assert "success rate per episode (any step of the episode succeeded, reward v2)" in out
    assert results["reward_version"] == "v2" and len(results["episode_success"]["mean"]) == 2
    assert results["reference_success"]["oracle"]["mean"] == [1.0, 1.0]  # the scripted policy succeeds


@pytest.mark.slow
def test_render_writes_a_trial_gif_through_meta_worlds_renderer(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """Offscreen MuJoCo frames, 500-step episodes kept every 5th frame (about 2 minutes: 1,000 frames)."""
    pytest.importorskip("torch")
    imageio = pytest.importorskip("imageio.v2")
    from metagym.cli import main

    run, gif = tmp_path / "run", tmp_path / "trial.gif"
    args = ["--agent", "rl2", "--env", "MetaWorld-ML1-Reach-v0", "--steps", "1000", "--num-envs", "2"]
    assert (
        main(["train", *args, "--num-minibatches", "1", "--rollout-steps", "500", "--run-dir", str(run), "--quiet"])
        == 0
    )
    assert main(["render", "--run-dir", str(run), "--out", str(gif)]) == 0
    assert "(200 frames, every 5 steps)" in capsys.readouterr().out
    frames = imageio.mimread(gif)
    assert len(frames) == 200 and frames[0].std() > 5


def test_without_the_extra_one_clear_line_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = meta_world_names.importlib.util.find_spec
    monkeypatch.setattr(
        meta_world_names.importlib.util, "find_spec", lambda name, *a: None if name == "metaworld" else real(name, *a)
    )
    meta_world_names.benchmark_names.cache_clear()
    try:
        assert meta_world_names.benchmark_names() == {}
        with pytest.raises(
            ImportError, match=r"^Meta-World families need the metaworld extra: pip install 'metagym-rl\[metaworld\]'$"
        ):
            gym.make("MetaWorld-ML10-v0")
    finally:
        meta_world_names.benchmark_names.cache_clear()


def test_rl2_on_meta_world_trains_deterministically_and_resumes_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The sub-envs live in worker processes: a checkpoint carries each one's Meta-World state
    (MuJoCo data, the task, the env's caches) and a resumed run equals one run straight through."""
    pytest.importorskip("torch")
    from helpers import assert_trains_deterministically_and_resumes_exactly

    from metagym.agents.rl2 import RL2Config

    config = RL2Config(
        env_id="MetaWorld-ML1-PickPlace-v0", num_envs=2, rollout_steps=150, num_minibatches=1, total_steps=4 * 300
    )
    assert_trains_deterministically_and_resumes_exactly(config, tmp_path)


def test_an_async_next_step_vector_env_refuses_to_be_saved() -> None:
    from metagym.snapshot import env_state

    envs = gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="autoreset_mode NEXT_STEP cannot be saved"):
        env_state(envs)
    envs.close()


def test_the_env_docstring_example_runs() -> None:
    import doctest

    from metagym.envs.meta_world import MetaWorldEnv

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = doctest.DocTestFinder().find(MetaWorldEnv, "MetaWorldEnv", globs={})
    assert tests and tests[0].examples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in tests:
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_auto_vectorization_keeps_processes_few(monkeypatch: pytest.MonkeyPatch) -> None:
    from metagym.envs import meta_world

    monkeypatch.setattr(meta_world.os, "cpu_count", lambda: 1)
    envs = gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=meta_world.ASYNC_PER_CPU + 1)
    assert isinstance(envs, meta_world.MetaWorldSyncVectorEnv)  # not 9 processes on one CPU
    envs.close()
    with pytest.raises(ValueError, match="vectorization: expected 'auto', 'async' or 'sync', got 'threads'"):
        gym.make_vec("MetaWorld-ML1-Reach-v0", num_envs=2, vectorization="threads")


def test_a_capped_next_step_trial_over_async_envs_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="max_episode_steps: a trial cut short cannot restart inside"):
        gym.make_vec("MetaWorld-ML1-Reach-Trial-v0", num_envs=2, max_episode_steps=100, vectorization="async")
    envs = gym.make_vec("MetaWorld-ML1-Reach-Trial-v0", num_envs=2, max_episode_steps=3, vectorization="sync")
    envs.reset(seed=0)
    cut = [envs.step(np.zeros((2, 4), dtype=np.float32))[3].copy() for _ in range(4)]
    assert not cut[0].any() and not cut[1].any() and cut[2].all()  # the cap ends both trials at step 3
    envs.close()
