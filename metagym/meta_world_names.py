"""Meta-World's environment lists, read from the installed package's source without importing it.

``import metagym`` registers one id per Meta-World environment; reading the names here costs a
file read, where importing Meta-World costs a second (MuJoCo, SciPy, 50 env classes).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

#: The meta-learning benchmarks metagym registers.
BENCHMARKS = ("ML1", "ML10", "ML45")
INSTALL_HINT = "Meta-World families need the metaworld extra: pip install 'metagym-rl[metaworld]'"


@functools.lru_cache(maxsize=1)
def benchmark_names() -> dict[str, tuple[str, ...]]:
    """Meta-World's own lists, read from the installed package's ``env_dict.py`` without
    importing it (importing Meta-World costs a second): ``"ML1"`` (every v3 environment),
    ``"ML10-train"``, ``"ML10-test"``, ``"ML45-train"``, ``"ML45-test"``. Empty when the
    ``metaworld`` extra is not installed."""
    spec = importlib.util.find_spec("metaworld")
    if spec is None or not spec.submodule_search_locations:
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "env_dict.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):  # pragma: no cover - a broken install
        return {}
    wanted = {"ALL_V3_ENVIRONMENTS": "ML1", "ML10_V3": "ML10", "ML45_V3": "ML45"}
    out: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        target = next((t.id for t in node.targets if isinstance(t, ast.Name) and t.id in wanted), None)
        if target is None:
            continue
        call = node.value
        if wanted[target] == "ML1" and call.args:
            out["ML1"] = _names(call.args[0])
        for keyword in call.keywords:
            split = {"train_env_names": "train", "test_env_names": "test"}.get(keyword.arg or "")
            if split:
                out[f"{wanted[target]}-{split}"] = _names(keyword.value)
    return out


def _names(node: ast.expr) -> tuple[str, ...]:
    if not isinstance(node, ast.List | ast.Tuple):
        return ()
    return tuple(e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))


def ml1_id(env_name: str) -> str:
    """``"pick-place-v3"`` -> ``"MetaWorld-ML1-PickPlace-v0"``."""
    words = env_name.rsplit("-v", 1)[0].split("-")
    return "MetaWorld-ML1-" + "".join(w[:1].upper() + w[1:] for w in words) + "-v0"
