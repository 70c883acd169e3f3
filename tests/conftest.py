"""Test settings: headless pygame and MuJoCo, one torch thread (if torch is present)."""

import os
import tempfile

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo rendering
# hypothesis caches (unicode tables, constants) outside the checkout, not in ./.hypothesis
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="metagym-hypothesis-"))

try:  # the agents extra is optional; envs tests run without it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


def pytest_report_header() -> str:
    import metagym

    return f"metagym {metagym.__version__} from {os.path.dirname(metagym.__file__)}"


@pytest.fixture(autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in a fresh folder: ``python -m`` and ``python -c`` subprocesses then
    import the installed package, not the checkout's folders, and nothing lands in the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
