"""Packaging: registration routes, a light import, the installed layout."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import gymnasium as gym

import metagym


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_registers_without_torch() -> None:
    code = (
        "import sys, gymnasium as gym, metagym\n"
        "env = gym.make('MetaGrid-v0'); env.reset(seed=0); env.step(0)\n"
        "gym.make_vec('MetaGrid-Trial-v0', num_envs=2).reset(seed=0)\n"
        "print('torch' in sys.modules, 'metagym.envs.metagrid' in sys.modules)"
    )
    assert run_python(code) == "False True"
    assert run_python("import sys, metagym; print('metagym.envs.metagrid' in sys.modules)") == "False"


def test_module_prefix_form_in_fresh_interpreter() -> None:
    code = "import gymnasium as gym; env = gym.make('metagym:MetaGrid-v0'); print(env.reset(seed=0)[0].shape)"
    assert run_python(code) == "(11,)"


def test_every_family_has_a_trial_id() -> None:
    for env_id in metagym.env_ids(trials=False):
        assert metagym.trial_id(env_id) in gym.registry
    assert metagym.trial_id("MetaGrid-GridNavi-v0") == "MetaGrid-GridNavi-Trial-v0"


def test_installed_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert resources.files("metagym").joinpath("py.typed").is_file()
    import metagym.agents
    import metagym.envs

    assert metagym.envs.__name__ == "metagym.envs" and metagym.agents.__name__ == "metagym.agents"
    # No top-level `envs` or `agents` is installed (run outside the repo, whose folders shadow).
    code = "import importlib.util as u; print(u.find_spec('envs'), u.find_spec('agents'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "None None"


def test_readme_quick_start_runs_as_written() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "gym.make_vec" in snippet
    run_python(snippet + "\nprint('ok')")


def test_every_source_package_is_in_the_wheel() -> None:
    """pyproject lists packages by hand (the folders map into metagym.*): none may be left out."""
    from pathlib import Path

    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).parents[1]
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {folder: name for name, folder in setup["package-dir"].items()}
    found = set()
    for folder, name in folders.items():
        for init in (root / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(root / folder).parts
            found.add(".".join((name, *parts)))
    assert found == set(setup["packages"])
