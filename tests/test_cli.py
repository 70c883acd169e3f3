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
