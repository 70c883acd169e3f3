"""Evaluation in blocks of tasks: the numbers depend on (seed, task index, block size), never on
where a block runs; on Ray they are exactly the local ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from metagym.agents.maml import MAMLConfig  # noqa: E402
from metagym.agents.maml import Trainer as MAMLTrainer  # noqa: E402
from metagym.agents.rl2 import RL2Config  # noqa: E402
from metagym.agents.rl2 import Trainer as RL2Trainer  # noqa: E402
from metagym.backends import map_calls  # noqa: E402
from metagym.cli import main  # noqa: E402
from metagym.evaluation import _Plan, _score, _score_block, evaluate, held_out_tasks  # noqa: E402


def rl2_agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = RL2Config(env_id="MetaBandit-v0", num_envs=8, rollout_steps=10, hidden_size=16, num_minibatches=2)
    return RL2Trainer(config, tmp_path / "rl2").agent


def maml_agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = MAMLConfig(meta_batch_size=3, fast_batch_size=4, eval_batch_size=4, hidden_size=16)
    return MAMLTrainer(config, tmp_path / "maml").agent


def test_a_block_scores_the_same_alone_or_among_others(tmp_path: Path) -> None:
    agent = rl2_agent(tmp_path)
    tasks = held_out_tasks("MetaBandit-v0", None, 25, seed=3)
    plan = _Plan("MetaBandit-v0", "test", 10, 3, False, None)
    whole = _score(agent, None, plan, tasks, 10, "local", None, progress=False)
    assert whole["agent"].shape == (25, 10) and set(whole) == {"agent", "random", "oracle", "bayes_optimal"}
    torch.manual_seed(12345)  # the global RNG's state before a block does not matter
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # nor the thread count: a block plays on one thread, then restores it
    try:
        alone = _score_block(agent, None, plan, 10, tasks[10:20])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    for key, value in alone.items():
        np.testing.assert_array_equal(value, whole[key][10:20])
    # The references are per trial: blocks of any size give the same numbers.
    other = _score(agent, None, plan, tasks, 7, "local", None, progress=False)
    for key in ("random", "oracle", "bayes_optimal"):
        np.testing.assert_array_equal(other[key], whole[key])


def test_results_record_the_block_size_and_refuse_bad_arguments(tmp_path: Path) -> None:
    agent = rl2_agent(tmp_path)
    results = evaluate(agent, num_tasks=12, seed=1, tasks_per_block=5)
    assert results["tasks_per_block"] == 5 and results["num_tasks"] == 12
    with pytest.raises(ValueError, match="tasks_per_block: expected an integer >= 1, got 0"):
        evaluate(agent, num_tasks=12, tasks_per_block=0)
    with pytest.raises(ValueError, match="seed: expected an integer >= 0, got -1"):
        evaluate(agent, num_tasks=12, seed=-1)
    with pytest.raises(ValueError, match="backend: 'dask' is not allowed; allowed: local, ray"):
        evaluate(agent, num_tasks=12, backend="dask")


def test_evaluate_command_refuses_bad_backend_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--env", "MetaBandit-v0", "--steps", "400", "--run-dir", str(run), "--quiet"]) == 0
    base = ["evaluate", "--run-dir", str(run), "--out", str(tmp_path / "r.json"), "--tasks", "6"]
    assert main([*base, "--backend", "slurm"]) == 2
    assert "--backend: 'slurm' is not allowed; allowed: local, ray" in capsys.readouterr().err
    assert main([*base, "--tasks-per-block", "0"]) == 2
    assert "--tasks-per-block: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert main([*base, "--seed", "-2"]) == 2
    assert "--seed: expected an integer >= 0, got -2" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_map_calls_keeps_the_order_and_reports_each_call() -> None:
    seen: list[int] = []
    assert map_calls(pow, [(2, 3), (3, 2)], shared=(), done=lambda i, _: seen.append(i)) == [8, 9]
    assert seen == [0, 1]
    with pytest.raises(ValueError, match="backend: 'mpi' is not allowed"):
        map_calls(pow, [(2, 3)], backend="mpi")


@pytest.mark.ray
def test_ray_evaluation_gives_the_local_results(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    import metagym
    from metagym.evaluation import evaluate_agent

    memory, gradient = rl2_agent(tmp_path), maml_agent(tmp_path)
    theirs = RecurrentPPO("MlpLstmPolicy", make_vec_env(metagym.trial_id("MetaBandit-v0"), n_envs=2, seed=0), seed=0)
    local = [
        evaluate(memory, num_tasks=23, seed=5, tasks_per_block=8),
        evaluate(gradient, num_tasks=6, seed=5, tasks_per_block=4),
        evaluate_agent(theirs, "MetaBandit-v0", num_tasks=12, seed=5),  # an SB3 agent, shipped as it is
    ]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = [
            evaluate(memory, num_tasks=23, seed=5, tasks_per_block=8, backend="ray"),
            evaluate(gradient, num_tasks=6, seed=5, tasks_per_block=4, backend="ray"),
            evaluate_agent(theirs, "MetaBandit-v0", num_tasks=12, seed=5, backend="ray"),
        ]
    finally:
        ray.shutdown()
    assert remote == local
