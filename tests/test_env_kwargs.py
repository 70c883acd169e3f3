"""A run's ``env_kwargs`` (make kwargs of its family env) reach every env the run makes: training,
evaluation and its references, rendering, resuming, sweeps; bad ones are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

import metagym.presets  # noqa: E402
from metagym.agents.runs import load_run, run_config, train_run  # noqa: E402
from metagym.agents.sweep import Run, run_one  # noqa: E402
from metagym.evaluation import evaluate  # noqa: E402
from metagym.results import table  # noqa: E402

CLI = [sys.executable, "-m", "metagym.cli"]
TINY = {"num_envs": 8, "rollout_steps": 10, "hidden_size": 8, "num_minibatches": 2}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def three_arms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RL² run on 3-armed bandits (MetaBandit-v0 registers 5 arms)."""
    folder = tmp_path_factory.mktemp("kwargs") / "run"
    config = run_config("rl2", "MetaBandit-v0", 160, options={**TINY, "env_kwargs": {"arms": 3}})
    train_run(config, folder, progress=False)
    return folder


def test_training_evaluation_and_references_use_the_run_env_kwargs(three_arms: Path) -> None:
    agent = load_run(three_arms)
    assert agent.config.env_kwargs == {"arms": 3}
    assert json.loads((three_arms / "config.json").read_text())["env_kwargs"] == {"arms": 3}
    results = evaluate(agent, num_tasks=6, seed=0)
    assert results.env_kwargs == {"arms": 3}
    assert all(len(task["probs"]) == 3 for task in results.tasks)  # tasks of the 3-armed family
    assert set(results.references) >= {"random", "oracle", "bayes_optimal"}  # played on the same family
    assert "tasks of MetaBandit-v0 arms=3" in table(results)


def test_render_and_resume_use_the_run_env_kwargs(three_arms: Path, tmp_path: Path) -> None:
    gif = tmp_path / "trial.gif"
    rendered = cli("render", "--run-dir", str(three_arms), "--out", str(gif))
    assert rendered.returncode == 0, rendered.stderr
    assert gif.stat().st_size > 0
    resumed = cli("train", "--run-dir", str(three_arms), "--resume", "--steps", "320", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "edited" not in resumed.stderr  # the checkpoint's config, env kwargs included, is unchanged
    assert load_run(three_arms).config.env_kwargs == {"arms": 3}


def test_runs_compared_must_share_the_family_env(three_arms: Path, tmp_path: Path) -> None:
    five = tmp_path / "five"
    train_run(run_config("rl2", "MetaBandit-v0", 160, options=TINY), five, progress=False)
    out = tmp_path / "both.json"
    result = cli("evaluate", "--run-dir", str(three_arms), "--compare", str(five), "--tasks", "4", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "--compare" in result.stderr and "share the family env" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("env_kwargs", "words"),
    [
        ({"arms": 1}, "arms: expected an integer from 2 to 100"),
        ({"colour": "red"}, "colour"),
        ({"render_mode": "human"}, "'render_mode' is set by metagym itself"),
        ([1], "expected an object of make kwargs"),
    ],
)
@pytest.mark.parametrize("agent", ["rl2", "maml"])
def test_bad_env_kwargs_are_refused_by_name(agent: str, env_kwargs: object, words: str) -> None:
    with pytest.raises(ValueError, match="env_kwargs") as error:
        run_config(agent, "MetaBandit-v0", 160, options={"env_kwargs": env_kwargs})
    assert words in str(error.value)


def test_every_cell_of_a_sweep_plays_the_presets_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A classic baseline's cell is scored on the env the preset's agents train on."""
    fake = SimpleNamespace(config={"env_kwargs": {"arms": 3}}, agent="rl2", steps=160)
    monkeypatch.setattr(metagym.presets, "preset", lambda name: fake)
    results = run_one(Run("MetaBandit-v0", "ucb1", None, None, "three-arms", tasks=4), str(tmp_path))
    assert results.env_kwargs == {"arms": 3}
    assert all(len(task["probs"]) == 3 for task in results.tasks)


def test_a_preset_that_changes_the_env_is_never_a_default() -> None:
    """``--env X`` means X as registered: presets with env kwargs are picked by name only."""
    from metagym.presets import default_for, presets

    changing = [p for p in presets().values() if "env_kwargs" in p.config]
    assert changing, "no shipped preset sets env_kwargs any more: this test checks nothing"
    for chosen in changing:
        default = default_for(chosen.agent, chosen.env)
        assert default is None or "env_kwargs" not in default.config, chosen.name
