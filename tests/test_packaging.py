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


def test_every_source_package_is_installed() -> None:
    """Every folder of the three source trees (they map into metagym.*) is importable from the
    package under test: the installed wheel in CI, the editable install on a developer's machine."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).parents[1]
    folders = {"metagym": "metagym", "envs": "metagym.envs", "agents": "metagym.agents"}
    names = {
        ".".join((name, *init.parent.relative_to(root / folder).parts))
        for folder, name in folders.items()
        for init in (root / folder).rglob("__init__.py")
    }
    assert {"metagym.agents.common", "metagym.presets"} <= names
    missing = sorted(name for name in names if importlib.util.find_spec(name) is None)
    assert not missing, f"not installed: {missing}"
    # Data folders ship too (GridNavi's search plans, the presets).
    assert resources.files("metagym.envs").joinpath("data", "bayes_plans.json").is_file()
    assert any(f.name.endswith(".json") for f in resources.files("metagym.presets").iterdir())


def test_version_has_one_source() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        assert version("metagym-rl") == metagym.__version__
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        pass
