"""The metagym command: list, demo (GIF written headless), bad arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

import metagym
from metagym.cli import main


def test_list_prints_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in metagym.env_ids(trials=False):
        assert env_id in out and metagym.trial_id(env_id) in out
    assert "horizon 15" in out and "splits train, validation, test, ood" in out


def test_demo_runs_the_main_job_end_to_end(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("torch")
    assert main(["demo", "--steps", "3000", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| RL² |" in out and "| random |" in out and "| oracle |" in out and "| bayes_optimal |" in out
    assert "210 tasks of MetaGrid-GridNavi-v0 (its prior" in out
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.png").stat().st_size > 1000
    assert len(imageio.mimread(tmp_path / "trial.gif")) == 4 * 15  # GridNavi: 4 episodes of 15 steps
    every = tmp_path / "every.gif"
    assert main(["render", "--run-dir", str(tmp_path), "--out", str(every), "--every", "3"]) == 0
    assert len(imageio.mimread(every)) == 4 * 15 // 3 and "(20 frames, every 3 steps)" in capsys.readouterr().out
    assert main(["render", "--run-dir", str(tmp_path), "--every", "0"]) == 2
    assert "--every: expected an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--steps", "0"], "--steps: expected an integer >= 1"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_fail_clearly(args: list[str], words: str) -> None:
    result = subprocess.run([sys.executable, "-m", "metagym.cli", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert words in result.stderr


def test_every_shipped_preset_is_complete_and_builds_a_valid_config() -> None:
    import dataclasses

    import gymnasium as gym

    from metagym.agents.registry import agent_names
    from metagym.agents.runs import run_config
    from metagym.presets import presets

    assert {"rl2-gridnavi", "rl2-bandit", "rl2-tabular", "maml-pointnav"} <= set(presets())
    for name, preset in presets().items():
        assert preset.agent in agent_names() and preset.env in gym.registry, name
        assert "test" not in preset.expected["selected_on"].split(":")[0], name  # never selected on test
        assert preset.expected["command"].startswith("metagym "), name
        config = run_config(preset.agent, preset.env, preset.steps, 0, preset)
        assert dataclasses.asdict(config)["total_steps"] == preset.steps


def test_presets_lists_each_with_its_expected_score(capsys: pytest.CaptureFixture[str]) -> None:
    from metagym.presets import presets

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, preset in presets().items():
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert preset.env in line and f"{preset.steps:,}" in line and preset.score in line


def test_train_with_a_preset_and_an_override(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    pytest.importorskip("torch")
    run = tmp_path / "run"
    args = ["train", "--preset", "rl2-tabular", "--steps", "100", "--num-envs", "4", "--num-minibatches", "2"]
    assert main([*args, "--learning-rate", "0.01", "--run-dir", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["env_id"] == "MetaTabularMDP-v0" and config["reward_scale"] == 0.05  # from the preset
    assert config["learning_rate"] == 0.01 and config["num_envs"] == 4  # from the command line
    assert "trains whole updates of 400 steps" in capsys.readouterr().err  # 100 asked: the difference is said
    plain = tmp_path / "plain"
    assert main(["train", "--env", "MetaBandit-v0", "--steps", "100", "--run-dir", str(plain), "--quiet"]) == 0
    assert "settings of preset rl2-bandit" in capsys.readouterr().out
    assert json.loads((plain / "config.json").read_text())["rollout_steps"] == 50


def test_readme_results_table_is_the_presets_table(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    assert main(["presets", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert table in readme, "README's results table is stale: paste `metagym presets --markdown`"


def test_the_default_preset_keeps_the_familys_trial_length() -> None:
    from metagym.presets import default_for

    assert default_for("rl2", "MetaBandit-v0").name == "rl2-bandit"  # not rl2-bandit100
    assert default_for("rl2", "PointNav2D-v0").name == "rl2-pointnav"
    assert default_for("maml", "PointNav2D-v0").name == "maml-pointnav"
    assert default_for("reptile", "MetaBandit-v0") is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--agent", "", "--run-dir", "{tmp}/x"], "--agent: unknown agent ''; trainable agents: rl2,"),
        (["train", "--agent", "nope", "--help"], "--agent: unknown agent 'nope'"),
        (["train", "--agent", "rl22", "--hidden-size", "3", "--run-dir", "{tmp}/x"], "unknown agent 'rl22'"),
        (["train", "--agent", "ucb1", "--run-dir", "{tmp}/x"], "--agent: ucb1 is an untrained baseline"),
        (["presets", "--verbose", "--markdown"], "--verbose: not with --markdown"),
        (
            ["train", "--env", "MetaBandit-v0", "--env-kwargs", '{"pulls_per_trial": 1000000}', "--run-dir", "{tmp}/x"],
            "--env-kwargs: 1,000,000 episodes per trial (MetaBandit-v0's trial length as made) would take about",
        ),
        (
            [
                "train",
                "--agent",
                "transformer",
                "--env",
                "MetaBandit-v0",
                "--context",
                "100000000",
                "--run-dir",
                "{tmp}/x",
            ],
            "--context: 100,000,000 tokens of key/value cache for 256 envs would take 12,207.0 GiB",
        ),
    ],
)
def test_what_was_taken_silently_is_refused_naming_the_flag(
    args: list[str],
    words: str,
    tmp_path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    """Each of these once ran (the default agent for '', the general help for an unknown agent,
    a table without the asked-for detail), named the wrong flag, or ran out of memory (a log
    column per pull of a million-pull trial, a key/value cache of terabytes); now one line, exit 2."""
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err
    assert "trainable agents:" not in err or "ucb1" not in err.split("trainable agents:")[1]
    assert not (tmp_path / "x").exists()


def test_a_preset_of_another_family_and_rounded_maml_steps_say_so(
    tmp_path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    pytest.importorskip("torch")
    bandit = ["--num-envs", "8", "--rollout-steps", "10", "--num-minibatches", "2", "--quiet"]
    argv = ["train", "--preset", "rl2-bandit", "--env", "MetaBandit-v0", "--steps", "80", *bandit]
    assert main([*argv, "--run-dir", str(tmp_path / "same")]) == 0
    assert "tuned on" not in capsys.readouterr().err
    argv[argv.index("MetaBandit-v0")] = "MetaTabularMDP-v0"
    assert main([*argv, "--run-dir", str(tmp_path / "other")]) == 0
    err = capsys.readouterr().err
    assert "note: preset rl2-bandit was tuned on MetaBandit-v0; its settings" in err and "MetaTabularMDP-v0" in err
    maml = ["--agent", "maml", "--env", "PointNav2D-v0", "--meta-batch-size", "2", "--fast-batch-size", "2"]
    maml += ["--hidden-size", "8", "--quiet"]
    assert main(["train", *maml, "--steps", "50", "--run-dir", str(tmp_path / "m")]) == 0
    assert "up to 800 steps, not the 50 asked for" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback_and_a_bad_argument_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only an ArgumentError (or the CLI's own refusal) is exit 2: a ValueError or TypeError from a
    bug reaches the user whole, not dressed as a bad argument."""
    from metagym.cli import listing
    from metagym.errors import ArgumentError

    for bug in (ValueError("a bug, not a bad argument"), TypeError("a bug, not a bad argument")):

        def broken(args: object, error: Exception = bug) -> None:
            raise error

        monkeypatch.setattr(listing, "cmd_list", broken)
        with pytest.raises(type(bug), match="a bug"):
            main(["list"])

    def refuses(args: object) -> None:
        raise ArgumentError("total_steps", "expected an integer >= 1, got 0")

    monkeypatch.setattr(listing, "cmd_list", refuses)
    assert main(["list"]) == 2  # list has no --steps: the library's name stays
    assert capsys.readouterr().err == "metagym list: total_steps: expected an integer >= 1, got 0\n"


def test_the_librarys_argument_is_named_as_the_option_that_sets_it() -> None:
    """One mapping from a library argument to a flag: the config's name where it differs
    (total_steps is --steps), a command's own name (demo's run folder is --out), none for what no
    option sets (a field of a file)."""
    import pickle

    from metagym.cli import build_parser
    from metagym.cli.common import flag_of, refusal
    from metagym.errors import ArgumentError, ArgumentTypeError

    parser = build_parser()
    evaluate = parser.parse_args(["evaluate", "--run-dir", "r"])
    demo = parser.parse_args(["demo"])
    assert flag_of("tasks", evaluate) == "--tasks" and flag_of("run_dir", evaluate) == "--run-dir"
    assert flag_of("run_dir", demo) == "--out" and flag_of("total_steps", demo) == "--steps"
    assert flag_of("checkpoint", evaluate) is None and flag_of("command", evaluate) is None
    assert flag_of("tasks", None) is None
    error = ArgumentTypeError("run_dir", "r is a file, not a folder")
    assert refusal(error, demo) == "--out: r is a file, not a folder"
    assert isinstance(error, TypeError) and isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))  # a Ray worker's error reaches the driver whole
    assert (type(again), again.argument, again.detail, str(again)) == (
        ArgumentTypeError,
        "run_dir",
        "r is a file, not a folder",
        "run_dir: r is a file, not a folder",
    )
    assert str(ArgumentError("task.goal", "expected a cell")) == "task.goal: expected a cell"
    # one message, as gymnasium.make re-raises an env constructor's TypeError: type(e)(text)
    remade = ArgumentTypeError("dynamics: expected a BatchedDynamics was raised from the creator")
    assert (remade.argument, remade.detail) == ("dynamics", "expected a BatchedDynamics was raised from the creator")
    assert (ArgumentError("no name").argument, str(ArgumentError("no name"))) == ("", "no name")
