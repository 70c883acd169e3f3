"""Bring your own family: an id registered by user code (tests/user_family.py) works wherever
a family id is accepted; trial ids and non-metagym envs are refused where a family is expected."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from metagym.registration import check_family_id, family_of


def test_user_family_by_module_prefix_and_after_import() -> None:
    env = gym.make("user_family:GuessDigit-v0")
    assert check_family_id("user_family:GuessDigit-v0") == "user_family:GuessDigit-v0"
    assert check_family_id("GuessDigit-v0") == "GuessDigit-v0"
    family = family_of(env)
    tasks = family.sample(np.random.default_rng(0), 50, split="test")
    assert {family.split_of(t) for t in tasks} == {"test"}
    envs = gym.make_vec("GuessDigit-v0", num_envs=4, vectorization_mode="vector_entry_point")
    envs.set_attr("task", [tasks[0]] * 4)
    envs.reset(seed=0)
    _, reward, *_ = envs.step(np.full(4, tasks[0].digit))
    assert reward.tolist() == [1.0] * 4


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("MetaGrid-Trial-v0", "env_id: 'MetaGrid-Trial-v0' is a trial id; pass its family id 'MetaGrid-v0'"),
        ("CartPole-v1", "env_id: 'CartPole-v1' is not a metagym family env"),
        ("Nope-v0", "env_id: 'Nope-v0' is not a registered Gymnasium id"),
        ("no_such_module:Nope-v0", "env_id: 'no_such_module:Nope-v0' is not a registered Gymnasium id"),
        (3, "env_id: expected a family id"),
    ],
)
def test_check_family_id_refuses(env_id: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check_family_id(env_id)


def test_user_family_trains_and_evaluates_from_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from metagym.cli import main

    run = tmp_path / "run"
    train = ["train", "--env", "GuessDigit-v0", "--steps", "384", "--run-dir", str(run), "--quiet"]
    train += ["--num-envs", "8", "--rollout-steps", "6", "--num-minibatches", "2"]
    assert main(["--import", "user_family", *train]) == 0
    out = tmp_path / "test.json"
    evaluate = ["evaluate", "--run-dir", str(run), "--split", "test", "--tasks", "6", "--out", str(out)]
    assert main(["--import", "user_family", *evaluate]) == 0
    result = json.loads(out.read_text())
    assert result["env"] == "GuessDigit-v0" and result["num_tasks"] == 6
    assert len(result["episode_returns"]["mean"]) == 3


def test_cli_names_the_missing_import(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from metagym.cli import main

    assert main(["--import", "no_such_module", "list"]) == 2
    assert "--import: cannot import 'no_such_module'" in capsys.readouterr().err


class WinStayLoseShift:
    """A hand-written memory agent with SB3's recurrent predict: keep the arm that paid, else switch."""

    def __init__(self, slices: dict[str, slice]) -> None:
        self.slices = slices

    def predict(self, obs, state, episode_start, deterministic):  # type: ignore[no-untyped-def]
        prev = obs[:, self.slices["prev_action"]].argmax(axis=1)
        paid = obs[:, self.slices["prev_reward"]][:, 0] > 0
        action = np.where(paid, prev, 1 - prev)
        return np.where(episode_start, 0, action), state


def test_evaluate_agent_scores_a_users_memory_agent() -> None:
    from metagym.evaluation import evaluate_agent

    # Arms pay 0.1 and 0.9: win-stay-lose-shift earns 0.82 a pull once it has tried, 0.5 at first.
    # (On MetaBandit-Dependent-v0's test split, near p = 0.5, it could gain only 0.05.)
    env_id = "MetaBandit-DependentEasy-v0"
    slices = gym.make(metagym_trial(env_id)).get_wrapper_attr("obs_slices")
    results = evaluate_agent(WinStayLoseShift(slices), env_id, num_tasks=200, seed=0, episodes_per_trial=10)
    means = results["episode_returns"]["mean"]
    assert results["agent"] == "WinStayLoseShift" and results["split"] == "train" and len(means) == 10
    assert np.mean(means[1:]) > means[0] + 0.2  # it adapts after the first pull
    assert results["reference_trial_return"]["random"] < results["trial_return"]["mean"][0]
    with pytest.raises(ValueError, match="is a trial id"):
        evaluate_agent(WinStayLoseShift(slices), metagym_trial(env_id))
    with pytest.raises(TypeError, match="agent: expected an object with predict"):
        evaluate_agent(object(), env_id)


def test_evaluate_agent_takes_recurrent_ppo_as_it_is() -> None:
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    from metagym.evaluation import evaluate_agent

    env_id = "MetaBandit-Dependent-v0"
    model = RecurrentPPO("MlpLstmPolicy", make_vec_env(metagym_trial(env_id), n_envs=1, seed=0), seed=0)
    results = evaluate_agent(model, env_id, num_tasks=8, episodes_per_trial=10, name="RecurrentPPO (untrained)")
    assert results["num_tasks"] == 8 and len(results["episode_returns"]["mean"]) == 10


def metagym_trial(env_id: str) -> str:
    import metagym

    return metagym.trial_id(env_id)


def test_learn2learn_and_metaworld_habits_port() -> None:
    """Dict tasks through from_dict, set_task/get_task/sample_tasks on single and vector envs,
    a per-sub-env set_task, and info["success"] where a family has a goal."""
    env = gym.make("MetaGrid-GridNavi-v0")
    task = env.unwrapped.sample_tasks(1)[0]
    env.unwrapped.set_task(task.to_dict())  # a dict, as learn2learn users pass them
    assert env.unwrapped.get_task() == task
    env.reset(seed=0, options={"task": json.loads(task.to_json())})  # the JSON form too ("type" key)
    assert env.unwrapped.task == task

    envs = gym.make_vec("MetaGrid-GridNavi-v0", num_envs=3, vectorization_mode="vector_entry_point")
    others = envs.unwrapped.sample_tasks(3)
    envs.unwrapped.set_task(others[1].to_dict(), index=2)
    envs.reset(seed=0)
    assert envs.unwrapped.get_task(2) == others[1] and envs.unwrapped.tasks[2] == others[1]
    with pytest.raises(ValueError, match="index: expected a sub-env index from 0 to 2"):
        envs.unwrapped.set_task(task, index=3)
    with pytest.raises(ValueError, match="unknown fields"):
        env.unwrapped.set_task({"nope": 1})

    # success: on the goal (grids), within reach (navigation); vector envs give values and a mask
    _, _, _, _, info = env.step(0)
    assert info["success"] in (True, False)
    _, _, _, _, infos = envs.step(np.zeros(3, dtype=np.int64))
    assert infos["success"].dtype == bool and infos["_success"].all()
    nav = gym.make("PointNav2D-v0")
    nav.reset(seed=0)
    goal = np.asarray(nav.unwrapped.task.goal, dtype=np.float32)
    steps = [nav.step(np.clip(goal - nav.unwrapped._dyn.pos[0], -0.1, 0.1).astype(np.float32)) for _ in range(10)]
    assert any(info["success"] for *_, info in steps) and not steps[0][4]["success"]


def test_register_family_from_dynamics_alone() -> None:
    from user_family import GuessDigitDynamics

    import metagym

    metagym.register_family("GuessDigitShort-v0", GuessDigitDynamics)
    assert check_family_id("GuessDigitShort-v0") == "GuessDigitShort-v0"
    env = gym.make("GuessDigitShort-v0")
    env.reset(seed=0)
    assert env.step(0)[4] == {} and family_of(env).name == "GuessDigit"
    envs = gym.make_vec("GuessDigitShort-v0", num_envs=4, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    trial = gym.make(metagym.trial_id("GuessDigitShort-v0"))  # the trial id comes with it
    trial.reset(seed=0)
    assert trial.get_wrapper_attr("episodes_per_trial") == 3
    with pytest.raises(ValueError, match="env_id: expected an id such as"):
        metagym.register_family("no version", GuessDigitDynamics)


USER_MODULES = {
    "m_raises": 'raise RuntimeError("boom")\n',
    "m_syntax": "def f(:\n",
    "m_exits": "import sys\nsys.exit(3)\n",
    "m_broken_family": (
        "import gymnasium as gym\n\n\nclass Broken(gym.Env):\n    def __init__(self):\n"
        '        raise ValueError("this family is broken")\n\n\n'
        'gym.register("BrokenFamily-v0", entry_point="m_broken_family:Broken")\n'
    ),
}


@pytest.mark.parametrize(
    ("module", "words"),
    [
        ("m_raises", "--import: 'm_raises' failed while importing (RuntimeError: boom)"),
        ("m_syntax", "--import: 'm_syntax' failed while importing (SyntaxError in "),
        ("m_exits", "--import: 'm_exits' failed while importing (it called sys.exit(3))"),
        ("m_absent", "--import: cannot import 'm_absent' (No module named 'm_absent')"),
    ],
)
def test_a_failing_import_is_one_line_naming_the_module(tmp_path, module: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """A user's module that raised, had a syntax error or called sys.exit printed a traceback (or
    ended silently); now one line naming it, and --traceback shows where."""
    import os
    import subprocess
    import sys

    for name, text in USER_MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "metagym.cli", "--import", module, "list"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    if module == "m_raises":
        command.insert(3, "--traceback")
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback (most recent call last)" in result.stderr


def test_list_marks_a_broken_user_family_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    (tmp_path / "m_broken_family.py").write_text(USER_MODULES["m_broken_family"])
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "metagym.cli", "--import", "m_broken_family", "list"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "BrokenFamily-v0  (unavailable: making it raised ValueError: this family is broken)" in result.stdout


def test_a_user_agent_whose_module_is_missing_is_named_not_a_flag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The options of an agent that could not load were unknown, so its first option was blamed
    (``--num-envs: not an option``); now the agent and its missing module are named."""
    import os
    import subprocess
    import sys

    registers = 'register_agent("ghost", "ghost_gone:Algo", "memory", "G")\n'
    (tmp_path / "m_ghost.py").write_text("from metagym.agents.registry import register_agent\n\n" + registers)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "metagym.cli", "--import", "m_ghost", "train", "--agent", "ghost"]
    command += ["--num-envs", "8", "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--agent: agent ghost needs ghost_gone, which is not installed" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_familys_plain_value_error_becomes_an_argument_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A family written before ArgumentError (its _check raising ValueError "task.field: why")
    still names the argument, so the CLI prints it as one line, not as a bug's traceback."""
    from metagym.errors import ArgumentError

    family = family_of(gym.make("user_family:GuessDigit-v0"))
    task = family.sample(np.random.default_rng(0), 1)[0]
    with pytest.raises(ArgumentError, match=r"^task\.digit: expected an integer 0-9") as documented:
        family.validate(type(task)(digit=12))
    assert documented.value.argument == "task.digit"

    def old_style(task: object, argument: str) -> None:
        raise ValueError(f"{argument}.digit: out of range")

    monkeypatch.setattr(family, "_check", old_style)
    with pytest.raises(ArgumentError) as wrapped:
        family.validate(task, "tasks[3]")
    assert (wrapped.value.argument, wrapped.value.detail) == ("tasks[3].digit", "out of range")

    def unnamed(task: object, argument: str) -> None:
        raise ValueError("out of range")

    monkeypatch.setattr(family, "_check", unnamed)
    with pytest.raises(ArgumentError, match=r"^task: out of range$"):
        family.validate(task)
