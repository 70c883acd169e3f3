"""The docs site: every page's Python runs as written (the tutorial included), and the family
catalogue has a picture of every family."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import package_modules

import metagym

DOCS = Path(__file__).parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "```python" in p.read_text())


def python_of(page: Path) -> str:
    """The page's Python blocks, in order, as one script."""
    return "\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))


def test_pages_with_code_are_found() -> None:
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"tutorial.md", "getting-started.md", "howto/add-a-family.md", "howto/evaluate-your-agent.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_python_block_runs_as_written(page: Path, tmp_path: Path) -> None:
    code = python_of(page)
    if "sb3_contrib" in code or "metagym.agents" in code:
        pytest.importorskip("torch")
    script = tmp_path / "page.py"
    script.write_text(code)
    env = {"SDL_VIDEODRIVER": "dummy", "PATH": "", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_catalogue_shows_every_family() -> None:
    catalogue = (DOCS / "families.md").read_text()
    for env_id in metagym.env_ids(trials=False):
        picture = DOCS / "images" / "families" / f"{env_id}.png"
        assert picture.is_file(), f"{env_id} has no picture: run python scripts/family_pictures.py"
        assert f"images/families/{env_id}.png" in catalogue and f"`{env_id}`" in catalogue


def _modules() -> list[str]:
    """Every module of the installed package but the command line's."""
    return sorted(n for n in package_modules() if n != "metagym.cli" and not n.startswith("metagym.cli."))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """Every ``>>>`` example in the package's docstrings runs and prints what it shows."""
    import doctest
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError as error:  # an optional extra (torch, mujoco) is not installed
        pytest.skip(str(error))
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failed == 0, f"{name}: {failed} docstring example(s) failed (python -m doctest -v)"


def test_every_family_docstring_ends_with_an_example() -> None:
    import gymnasium as gym

    for env_id in metagym.env_ids(trials=False):
        env = gym.make(env_id, disable_env_checker=True)
        doc = type(env.unwrapped).__doc__ or ""
        assert "## Example" in doc and ">>>" in doc.split("## Example")[-1], env_id
