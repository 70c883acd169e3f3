"""The agent seam: one registry, configs read as CLI options, one trainer; a user's agent
(tests/user_agent.py) trains, resumes, evaluates, renders, sweeps and lists like metagym's own."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

torch = pytest.importorskip("torch")

from metagym.agents.common.settings import options, setting  # noqa: E402
from metagym.agents.registry import agent_names, agent_spec, register_agent  # noqa: E402
from metagym.cli import main  # noqa: E402

USER = ["--import", "user_agent"]
SMALL = ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--num-minibatches", "2"]


def test_the_registry_knows_every_agent_and_its_kind() -> None:
    kinds = {name: agent_spec(name).kind for name in agent_names()}
    assert kinds["rl2"] == "memory" and kinds["maml"] == kinds["reptile"] == "gradient"
    assert {"ucb1", "thompson", "gittins", "psrl"} <= set(agent_names("baseline"))
    assert agent_spec("fomaml").kwargs == {"variant": "fomaml"}
    with pytest.raises(ValueError, match="agent: unknown agent 'dqn'; allowed: rl2, maml"):
        agent_spec("dqn")
    with pytest.raises(ValueError, match="an agent called 'rl2' is registered already"):
        register_agent("rl2", "somewhere:Else")
    with pytest.raises(ValueError, match="entry_point: expected 'module:attribute'"):
        register_agent("x", "no_colon")
    with pytest.raises(ValueError, match="kind: expected one of"):
        register_agent("x", "a:b", kind="telepathic")


@dataclasses.dataclass(frozen=True)
class _Every:
    agent: ClassVar[str] = "every"
    env_id: str = "MetaBandit-v0"
    total_steps: int = 1
    seed: int = 0
    count: int = setting(1, "a count")
    rate: float = setting(0.5, "a rate")
    name: str = setting("", "a name")
    flag: bool = setting(True, "a flag")
    maybe: int | None = setting(None, "an optional count")
    mode: Literal["fast", "slow"] = setting("fast", "a mode")
    widths: tuple[int, ...] = setting((4,), "widths")
    table: dict[str, float] = dataclasses.field(default_factory=dict)


def test_every_config_field_is_an_option_of_its_type() -> None:
    found = {o.name: o for o in options(_Every)}
    assert list(found) == ["count", "rate", "name", "flag", "maybe", "mode", "widths", "table"]  # none dropped
    assert found["count"].parse("3") == 3 and found["rate"].parse("0.25") == 0.25 and found["name"].parse("a") == "a"
    assert found["flag"].parse("false") is False and found["maybe"].parse("none") is None
    assert found["maybe"].parse("7") == 7 and found["mode"].parse("slow") == "slow"
    assert found["widths"].parse("[8, 8]") == [8, 8] and found["table"].parse('{"a": 1}') == {"a": 1}
    assert found["count"].help == "a count" and found["table"].metavar == "JSON"
    with pytest.raises(ValueError, match="expected one of"):
        found["mode"].parse("medium")
    with pytest.raises(ValueError, match="expected JSON for widths"):
        found["widths"].parse("[8,")
    assert [o.name for o in options(_Every, fixed=("mode",))].count("mode") == 0


def test_a_users_agent_trains_resumes_evaluates_renders_and_sweeps_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    train = ["train", "--agent", "user-lstm", *SMALL, "--width", "8", "--encoder", "[6, 6]", "--quiet"]
    assert main([*USER, *train, "--steps", "160", "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["width"], config["encoder"]) == (8, [6, 6])
    assert (run / "agent.txt").read_text() == "user-lstm\n"
    assert main([*USER, "train", "--resume", "--steps", "320", "--run-dir", str(run), "--quiet"]) == 0
    assert len((run / "progress.csv").read_text().splitlines()) == 1 + 4
    out = tmp_path / "r.json"
    assert main([*USER, "evaluate", "--run-dir", str(run), "--tasks", "6", "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["agent"] == "user LSTM"  # its registered title
    gif = tmp_path / "t.gif"
    assert main([*USER, "render", "--run-dir", str(run), "--out", str(gif)]) == 0 and gif.stat().st_size > 0
    sweep = ["sweep", "--env", "MetaBandit-v0", "--agents", "user-lstm", "--seeds", "0", "--steps", "160"]
    assert main([*USER, *sweep, "--tasks", "6", "--out", str(tmp_path / "sweep")]) == 0
    assert "| MetaBandit-v0 | user-lstm | 160 | 1 |" in (tmp_path / "sweep" / "summary.md").read_text()
    capsys.readouterr()
    assert main([*USER, "list"]) == 0
    assert "user-lstm" in capsys.readouterr().out
    assert main([*USER, *train, "--encoder", "[0]", "--steps", "160", "--run-dir", str(tmp_path / "bad")]) == 2
    assert "encoder: expected a list of integers >= 1, got [0]" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_options_are_each_agents_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--agent", "maml", "--help"])
    text = capsys.readouterr().out
    assert "--inner-lr" in text and "--num-envs" not in text and "--variant" not in text
    assert main(["train", "--agent", "rl2", "--inner-lr", "0.1", "--run-dir", str(tmp_path / "x")]) == 2
    assert "--inner-lr: not an option of --agent rl2" in capsys.readouterr().err


def test_a_run_without_a_record_of_its_agent_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *SMALL, "--steps", "80", "--hidden-size", "8", "--run-dir", str(run), "--quiet"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["agent"] == "rl2"
    (run / "agent.txt").unlink()  # the checkpoint's own record is enough
    assert main(["evaluate", "--run-dir", str(run), "--tasks", "2", "--out", str(tmp_path / "a.json")]) == 0
    del state["agent"]  # a checkpoint that says nothing, in a folder that says nothing: not taken for RL²
    torch.save(state, run / "checkpoint.pt")
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run), "--tasks", "2", "--out", str(tmp_path / "b.json")]) == 2
    assert "does not say which agent wrote it" in capsys.readouterr().err


def test_device_is_chosen_per_command_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    small = [*SMALL, "--steps", "80", "--hidden-size", "8", "--run-dir", str(run), "--quiet"]
    assert main(["train", *small, "--device", "auto"]) == 0  # the CPU here
    out = ["--tasks", "2", "--out", str(tmp_path / "r.json"), "--quiet"]
    assert main(["evaluate", "--run-dir", str(run), *out, "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run), *out, "--device", "tpu"]) == 2
    assert "--device: expected one of auto, cpu, cuda, got 'tpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", "--run-dir", str(run), "--resume", "--steps", "160", "--device", "cuda"]) == 2
        assert "--device: cuda is not available here" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_a_cpu_run_resumes_and_evaluates_on_cuda(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", *SMALL, "--steps", "80", "--hidden-size", "8", "--run-dir", str(run), "--quiet"]) == 0
    assert main(["train", "--run-dir", str(run), "--resume", "--steps", "160", "--device", "cuda", "--quiet"]) == 0
    out = ["--tasks", "2", "--out", str(tmp_path / "r.json"), "--quiet"]
    assert main(["evaluate", "--run-dir", str(run), *out, "--device", "cuda"]) == 0
    maml = ["--agent", "maml", "--env", "MetaBandit-v0", "--meta-batch-size", "2", "--fast-batch-size", "2"]
    assert main(["train", *maml, "--steps", "200", "--run-dir", str(tmp_path / "m"), "--device", "cuda"]) == 0


@pytest.mark.parametrize("env_id", ["MetaBandit-v0", "MetaGrid-GridNavi-v0", "PointNav2D-v0"])
def test_render_replays_the_very_trial_evaluate_scored(tmp_path: Path, env_id: str) -> None:
    import gymnasium as gym
    import imageio.v2 as imageio
    import numpy as np

    import metagym
    from metagym.agents.runs import load_run
    from metagym.evaluation import scored_trial

    run = tmp_path / "run"
    small = ["--env", env_id, "--num-envs", "8", "--rollout-steps", "16", "--num-minibatches", "2"]
    assert main(["train", *small, "--steps", "128", "--hidden-size", "8", "--run-dir", str(run), "--quiet"]) == 0
    out = tmp_path / "r.json"
    how = ["--tasks", "7", "--tasks-per-block", "3", "--seed", "5", "--out", str(out), "--quiet"]
    assert main(["evaluate", "--run-dir", str(run), *how]) == 0
    results = json.loads(out.read_text())
    agent = load_run(run)
    for index in (0, 4, 6):  # first block, inside the second, the last (short) block
        task, seed, actions, recorded = scored_trial(agent, results, index)
        env = gym.make(metagym.trial_id(env_id))
        env.reset(seed=seed, options={"task": task})
        returns, running = [], 0.0
        for action in actions:  # a single trial env, the scored trial's actions
            _, reward, terminated, _, info = env.step(action)
            running += float(reward)
            if "inner_return" in info or terminated:
                returns.append(running)
                running = 0.0
        assert terminated and np.allclose(returns, recorded, atol=1e-5), (index, returns, recorded)
    gif = tmp_path / "t.gif"
    assert main(["render", "--run-dir", str(run), "--results", str(out), "--task-index", "4", "--out", str(gif)]) == 0
    assert len(imageio.mimread(gif)) == len(scored_trial(agent, results, 4)[2])
    assert main(["render", "--run-dir", str(run), "--results", str(out), "--task-index", "7", "--out", str(gif)]) == 2


def test_render_refuses_results_that_are_not_this_runs_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A results file from another run, or edited (seed, returns, task count, block size), was
    trusted: captions showed scores the replay does not get, or raw tracebacks. Now the replay
    must give the recorded returns; every such file gets one line, and --seed / --split beside
    --results (which say how their trials were drawn) are refused, not ignored."""
    pytest.importorskip("imageio.v2")
    small = ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--num-minibatches", "2"]
    runs = []
    for seed, steps in ((0, "160"), (1, "4000")):  # another seed, trained further: it plays otherwise
        run = tmp_path / f"run{seed}"
        argv = ["train", *small, "--steps", steps, "--hidden-size", "8", "--seed", str(seed), "--quiet"]
        assert main([*argv, "--run-dir", str(run)]) == 0
        runs.append(run)
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                "--run-dir",
                str(runs[0]),
                "--tasks",
                "6",
                "--tasks-per-block",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    good = json.loads(out.read_text())
    gif = str(tmp_path / "t.gif")
    render = ["render", "--results", str(out), "--task-index", "4", "--out", gif]
    assert main([*render, "--run-dir", str(runs[0])]) == 0
    capsys.readouterr()
    cases = [
        (runs[1], {}, f"--results: they score the run in {runs[0]}, not {runs[1]}"),
        (runs[0], {"seed": 7}, "they are not this run's results"),
        (runs[0], {"task_returns": [[0.0] * 10] * 6}, "they are not this run's results"),
        (runs[0], {"tasks_per_block": 0}, "results: tasks_per_block is 0, not an integer >= 1"),
        (runs[0], {"num_tasks": "six"}, "results: num_tasks is 'six'"),
        (runs[0], {"num_tasks": 9}, "results: tasks does not hold the 9 scored tasks"),
    ]
    for run, change, words in cases:
        out.write_text(json.dumps(good | change))
        assert main([*render, "--run-dir", str(run)]) == 2, change
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (change, err)
    out.write_text(json.dumps(good))
    for flag, value in (("--seed", "3"), ("--split", "test")):
        assert main([*render, "--run-dir", str(runs[0]), flag, value]) == 2
        assert f"{flag}: not with --results" in capsys.readouterr().err


@pytest.fixture
def registered() -> Any:
    """Register agents for one test, then forget them."""
    from metagym.agents import registry

    names: list[str] = []

    def add(name: str, entry_point: str) -> None:
        register_agent(name, entry_point, "memory", replace=True)
        names.append(name)

    yield add
    for name in names:
        registry._REGISTRY.pop(name, None)


@pytest.mark.parametrize(
    ("entry_point", "said"),
    [
        (
            "KeepsAGenerator",
            "KeepsAGenerator.state_dict: its 'rng' entry could not be loaded back from a checkpoint "
            "(it holds a numpy.random._pickle.__generator_ctor object)",
        ),
        ("LogsAList", "LogsAList.learn returned list; expected a dict of str to float"),
        ("LogsUnlisted", "LogsUnlisted.learn returned 'surprise', not in its log_fields"),
    ],
)
def test_an_agent_that_breaks_the_seam_stops_at_its_first_update(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], registered: Any, entry_point: str, said: str
) -> None:
    import user_agent

    registered("user-lstm", f"user_agent:{entry_point}")  # the name its config gives
    run = tmp_path / "run"
    started = user_agent.UserLSTM.learn
    calls: list[int] = []

    def counted(self: Any, update: int) -> Any:
        calls.append(update)
        return started(self, update)

    user_agent.UserLSTM.learn = counted  # type: ignore[method-assign]
    try:
        train = ["train", "--agent", "user-lstm", *SMALL, "--steps", "800", "--run-dir", str(run), "--quiet"]
        code = main([*USER, *train])
    finally:
        user_agent.UserLSTM.learn = started  # type: ignore[method-assign]
        registered("user-lstm", "user_agent:UserLSTM")
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert said in err and err.startswith("metagym train: --agent: user-lstm's") and "\n" not in err
    assert calls == [0]  # the first update, not after the ten it was asked for
    assert not (run / "checkpoint.pt").exists() and not (run / "progress.csv").exists()


def test_a_config_that_names_another_agent_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], registered: Any
) -> None:
    registered("my-lstm", "user_agent:UserLSTM")  # its config says agent "user-lstm"
    code = main([*USER, "train", "--agent", "my-lstm", *SMALL, "--steps", "80", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "my-lstm is registered with user_agent:UserLSTM, whose config LSTMConfig names agent 'user-lstm'" in err
    assert not (tmp_path / "r").exists()


def test_each_agent_is_the_protocols_its_kind_promises(tmp_path: Path) -> None:
    """Evaluation and rendering tell agents apart by the protocols they satisfy (no attribute
    probes): a memory agent is an Actor only, MAML a GradientActor, VariBAD a BeliefActor; an
    object missing one member of a protocol is not that protocol."""
    from metagym.agents.common.trainer import Trainer
    from metagym.agents.runs import run_config
    from metagym.policies import Actor, BeliefActor, GradientActor

    found = {}
    for agent, env_id in (("rl2", "MetaBandit-v0"), ("maml", "PointNav2D-v0"), ("varibad", "MetaGrid-GridNavi-v0")):
        trainer = Trainer(run_config(agent, env_id, 1000, 0), tmp_path / agent)
        acting = trainer.agent
        found[agent] = tuple(isinstance(acting, p) for p in (Actor, GradientActor, BeliefActor))
    assert found == {"rl2": (True, False, False), "maml": (True, True, False), "varibad": (True, False, True)}

    class AlmostGradient:  # adaptation_scores missing
        config = None
        experience_per_step = 1

        def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
            return obs, state

        def adapted_params(self, task: Any, steps: int, seed: int) -> list[Any]:
            return []

        def reinitialised(self, seed: int) -> Any:
            return self

    assert isinstance(AlmostGradient(), Actor) and not isinstance(AlmostGradient(), GradientActor)


def test_a_run_makes_its_family_env_once_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config is checked where it is built, validated and trained (four places), but the
    family env is made once per make kwargs for all of them (before: five times), then the training
    vector env; a new registration of the id is made again."""
    import gymnasium as gym

    import metagym.batched
    import metagym.registration
    from metagym.agents.common.trainer import Trainer
    from metagym.agents.runs import run_config
    from metagym.registration import check_family_id

    made: list[str] = []
    original = metagym.batched.FamilyEnv.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(metagym.batched.FamilyEnv, "__init__", counting)
    monkeypatch.setattr(metagym.registration, "_CHECKED", {})  # as in a fresh process
    kwargs = {"arms": 3}
    config = run_config("rl2", "MetaBandit-v0", 1000, 0, None, {"env_kwargs": kwargs, "num_envs": 4})
    Trainer(config, tmp_path / "run")
    assert len(made) == 2, made  # the id alone, then with its kwargs; the vector env is no FamilyEnv
    check_family_id("MetaBandit-v0", env_kwargs=kwargs)
    assert len(made) == 2
    spec = gym.spec("MetaBandit-v0")
    gym.register("MetaBandit-v0", entry_point=spec.entry_point, kwargs=spec.kwargs)
    try:
        check_family_id("MetaBandit-v0", env_kwargs=kwargs)
        assert len(made) == 3
    finally:
        gym.registry["MetaBandit-v0"] = spec
