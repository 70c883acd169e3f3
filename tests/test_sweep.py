"""metagym sweep: every (env, agent, seed) trained and scored, resumable, the same on Ray."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import metagym.agents.sweep
from metagym.agents.sweep import Run, SweepFailed, cpus_of, run_one, summarize, sweep
from metagym.cli import main

pytest.importorskip("torch")

TINY = ["--steps", "2000", "--tasks", "12"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_local_sweep_writes_runs_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--env", "MetaBandit-v0", "--agents", "rl2", "--seeds", "0", "1", *TINY, "--out", str(out)]
    assert main(argv) == 0
    for seed in (0, 1):
        results = json.loads((out / "MetaBandit-v0" / "rl2" / f"seed-{seed}" / "results.json").read_text())
        assert results["split"] == "test" and results["num_tasks"] == 12
    (row,) = _rows(out / "summary.csv")
    assert (row["env"], row["agent"], row["seeds"]) == ("MetaBandit-v0", "rl2", "2")
    assert float(row["trial_return_ci_low"]) <= float(row["trial_return"]) <= float(row["trial_return_ci_high"])
    assert {f"episode_{k}" for k in range(1, 11)} <= set(row) and "ref_random" in row
    assert (out / "summary.png").stat().st_size > 0
    assert "| MetaBandit-v0 | rl2 | 2,000 | 2 |" in (out / "summary.md").read_text()
    assert "success" not in (out / "summary.md").read_text() and "success_1" not in row  # bandits report none
    # Started again: finished runs are skipped (their results untouched), the summary is the same.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("results.json")} == before
    assert _rows(out / "summary.csv") == [row]


def test_the_summary_keeps_the_success_rate_where_a_family_reports_it(tmp_path: Path) -> None:
    """PointNav reports success: the summary has each episode's success rate with its interval
    over seeds, and the table its first and last."""
    out = tmp_path / "sweep"
    argv = ["sweep", "--env", "PointNav2D-v0", "--agents", "rl2", "--seeds", "0", "1", *TINY, "--out", str(out)]
    assert main(argv) == 0
    (row,) = _rows(out / "summary.csv")
    per_seed = [
        json.loads((out / "PointNav2D-v0" / "rl2" / f"seed-{seed}" / "results.json").read_text())["episode_success"]
        for seed in (0, 1)
    ]
    for k in (1, 2):
        assert float(row[f"success_{k}"]) == pytest.approx(sum(s["mean"][k - 1] for s in per_seed) / 2)
        assert float(row[f"success_{k}_ci_low"]) <= float(row[f"success_{k}"]) <= float(row[f"success_{k}_ci_high"])
    head, rule, line = (out / "summary.md").read_text().splitlines()[:3]
    assert "| success first / last |" in head and head.count("|") == rule.count("|") == line.count("|")


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    run = Run("MetaBandit-v0", "rl2", 3, 4000, None, 12)
    whole = run_one(run, str(tmp_path / "whole"))
    # A run killed after training (no results yet) resumes, finds its training done, and scores it.
    folder = run.folder(tmp_path / "cut")
    assert main(["train", "--agent", "rl2", "--env", "MetaBandit-v0", "--seed", "3", "--steps", "4000",
                 "--run-dir", str(folder / "run"), "--quiet"]) == 0  # fmt: skip
    assert run_one(run, str(tmp_path / "cut"))["trial_return"] == whole["trial_return"]


def test_sweep_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["sweep", "--agents", "rl2", "--seeds", "0", "--out", str(tmp_path)]
    assert main([*base, "--env", "MetaBandit-Trial-v0"]) == 2
    assert "is a trial id" in capsys.readouterr().err
    assert main([*base, "--env", "MetaBandit-v0", "--backend", "slurm"]) == 2
    assert "--backend: 'slurm' is not allowed; allowed: local, ray" in capsys.readouterr().err
    assert main(["sweep", "--env", "MetaBandit-v0", "--agents", "rl3", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--agents: unknown agent 'rl3'; allowed: rl2" in capsys.readouterr().err
    assert main([*base[:4], "1", "1", "--env", "MetaBandit-v0", "--out", str(tmp_path)]) == 2
    assert "--seeds: expected distinct integers >= 0" in capsys.readouterr().err
    assert main([*base, "--env", "MetaBandit-v0", "--steps", "100", "ppo=5"]) == 2
    assert "--steps: 'ppo=5' names 'ppo', not one of --agents (rl2)" in capsys.readouterr().err
    assert main([*base, "--env", "MetaBandit-v0", "--steps", "rl2=0"]) == 2
    assert "--steps: expected N or AGENT=N with an integer N >= 1, got 'rl2=0'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="backend: 'dask' is not allowed"):
        sweep([], tmp_path, backend="dask")


@pytest.mark.ray
def test_ray_sweep_gives_the_local_numbers(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    runs = [Run("MetaBandit-v0", "rl2", seed, 2000, None, 12) for seed in (0, 1)]
    local = sweep(runs, tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = sweep(runs, tmp_path / "ray", backend="ray")
    finally:
        ray.shutdown()
    for a, b in zip(local, remote, strict=True):
        assert a["trial_return"] == b["trial_return"] and a["episode_returns"] == b["episode_returns"]
    assert summarize(runs, local, tmp_path / "local") == summarize(runs, remote, tmp_path / "ray")


def test_classic_baselines_run_once_where_they_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--env", "MetaBandit-v0", "--agents", "ucb1", "thompson", "psrl", "--seeds", "0", "1"]
    assert main([*argv, "--tasks", "20", "--out", str(out)]) == 0
    assert "psrl does not apply to MetaBandit-v0; skipped" in capsys.readouterr().out
    rows = {row["agent"]: row for row in _rows(out / "summary.csv")}
    assert set(rows) == {"ucb1", "thompson"}  # nothing to train: one run each, not one per seed
    for agent, row in rows.items():
        results = json.loads((out / "MetaBandit-v0" / agent / "untrained" / "results.json").read_text())
        assert (row["seeds"], row["interval_over"]) == ("0", "tasks (bootstrap)")
        assert float(row["trial_return_ci_low"]) == pytest.approx(results["trial_return"]["ci_low"][0])
        assert float(row["trial_return"]) > float(row["ref_random"])  # they adapt
    assert main(["sweep", "--env", "PointNav2D-v0", "--agents", "psrl", "--seeds", "0", "--out", str(out)]) == 2
    assert "--agents: none of them applies to any --env" in capsys.readouterr().err


def test_recurrent_ppo_runs_and_resumes_from_its_weights(tmp_path: Path) -> None:
    run = Run("MetaBandit-v0", "recurrentppo", 0, 256, None, 12)
    first = run_one(run, str(tmp_path))
    folder = run.folder(tmp_path)
    assert first["agent"] == "RecurrentPPO" and (folder / "run" / "policy.pt").is_file()
    (folder / "results.json").unlink()  # killed after training, before its results
    again = run_one(run, str(tmp_path))
    assert again["trial_return"] == first["trial_return"] and again["episode_returns"] == first["episode_returns"]


def test_a_failed_run_stops_no_other_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [Run("MetaBandit-v0", "ucb1", None, None, None, 12), Run("MetaBandit-v0", "rl2", 0, 400, None, 0)]
    with pytest.raises(SweepFailed) as failed:
        sweep(runs, tmp_path / "api")
    assert failed.value.results[0] is not None and failed.value.results[1] is None
    # The run's own error travels, whole, in one line.
    assert "1 of 2 runs failed: MetaBandit-v0 rl2 seed 0: ArgumentError: tasks: expected an integer >= 1, got 0" in str(
        failed.value
    )
    out = tmp_path / "cli"
    argv = ["sweep", "--env", "MetaBandit-v0", "--agents", "ucb1", "rl2", "--seeds", "0", "--tasks", "12"]
    assert main([*argv, "--preset", "no-such", "--out", str(out)]) == 2  # refused before any run
    assert "--preset: unknown preset 'no-such'; allowed: maml-pointnav" in capsys.readouterr().err
    real = metagym.agents.sweep.run_one

    def broken(run: Run, where: str) -> dict:  # type: ignore[type-arg]
        if run.agent == "rl2":
            raise OSError("disk full")
        return real(run, where)

    monkeypatch.setattr(metagym.agents.sweep, "run_one", broken)
    assert main([*argv, "--steps", "400", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 runs failed: MetaBandit-v0 rl2 seed 0: OSError: disk full" in err
    assert "the summary covers the others" in err
    assert [row["agent"] for row in _rows(out / "summary.csv")] == ["ucb1"]


def test_a_run_asks_ray_for_the_cpus_its_config_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import metagym.presets

    assert cpus_of(Run("MetaBandit-v0", "rl2", 0, 100)) == 1  # RL2Config's torch_threads
    monkeypatch.setattr(metagym.presets, "preset", lambda name: SimpleNamespace(config={"torch_threads": 3}))
    assert cpus_of(Run("MetaBandit-v0", "rl2", 0, 100, "threaded")) == 3
    assert cpus_of(Run("MetaBandit-v0", "ucb1", None, None)) == 1
