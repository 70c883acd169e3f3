"""The package's layers import in one direction: the command line reaches everything, agents reach
families and the core, families reach the core, and the core (tasks, wrappers, evaluation,
registration, rendering) reaches none of them, not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import package_modules

#: Each layer is a module prefix; a module belongs to the longest prefix it starts with.
LAYERS = ("metagym.cli", "metagym.agents", "metagym.envs", "metagym")
#: Who may import whom (every import inside the package, module level or in a function).
ALLOWED = {
    "metagym.cli": {"metagym.agents", "metagym.envs", "metagym"},
    "metagym.agents": {"metagym.envs", "metagym"},
    "metagym.envs": {"metagym"},
    "metagym": set(),
}


def layer_of(module: str) -> str | None:
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports_of(module: str, path: Path, is_package: bool) -> set[str]:
    """The metagym modules that ``module`` imports anywhere in its source."""
    package = module if is_package else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 steps
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}  # `from metagym import cli`
    return {name for name in out if name == "metagym" or name.startswith("metagym.")}


def test_layers_import_in_one_direction() -> None:
    modules = package_modules()
    crossings: dict[tuple[str, str], list[str]] = {}
    for module, (path, is_package) in modules.items():
        source = layer_of(module)
        assert source is not None
        for target in imports_of(module, path, is_package):
            if target not in modules:  # a name imported from a module, not a module
                continue
            layer = layer_of(target)
            if layer is not None and layer != source:
                crossings.setdefault((source, layer), []).append(f"{module} -> {target}")
    print({edge: len(found) for edge, found in sorted(crossings.items())})
    wrong = [line for (source, layer), found in crossings.items() if layer not in ALLOWED[source] for line in found]
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))
    # The check reads real edges (the CLI reaches the agents; the agents the core).
    assert ("metagym.cli", "metagym.agents") in crossings and ("metagym.agents", "metagym") in crossings


def test_the_layering_check_sees_a_lazy_import(tmp_path: Path) -> None:
    """An import inside a function, relative or absolute, counts."""
    source = tmp_path / "evaluation.py"
    source.write_text("def f():\n    from .agents.common import trainer\n    import metagym.cli\n")
    found = imports_of("metagym.evaluation", source, False)
    assert {"metagym.agents.common", "metagym.agents.common.trainer", "metagym.cli"} <= found
