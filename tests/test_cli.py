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
    assert "horizon 15" in out and "splits train, test, ood" in out


def test_demo_writes_a_gif(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    imageio = pytest.importorskip("imageio.v2")
    assert main(["demo", "--trials", "3", "--out", str(tmp_path)]) == 0
    frames = imageio.mimread(tmp_path / "random_trial.gif")
    assert len(frames) == 4 * 15  # GridNavi: 4 episodes of 15 steps
    assert "| return |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--env", "Nope-v0"], "--env: unknown family id 'Nope-v0'"),
        (["demo", "--trials", "0"], "--trials: expected an integer >= 1"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_fail_clearly(args: list[str], words: str) -> None:
    result = subprocess.run([sys.executable, "-m", "metagym.cli", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert words in result.stderr
