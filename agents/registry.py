"""Every agent by name: metagym's own and a user's, registered the same way.

An agent is registered as data, like a Gymnasium id: a name, a string entry point (nothing is
imported until the agent is used, so the registry needs no torch), a kind, a display name and
keyword arguments that set variants apart (MAML's four variants are one algorithm)::

    from metagym.agents.registry import register_agent

    register_agent("my-agent", "my_package.agent:MyAlgorithm", kind="memory", title="My agent")

A package can also declare its agents under the ``metagym.agents`` entry-point group (the value
is a ``module:function`` that calls :func:`register_agent`); they are found on first use. The
CLI (``metagym train --agent``, ``metagym list``), presets and sweeps ask this registry; none
keeps a list of its own.

Kinds:

- ``memory``: trained, acts through SB3's ``predict(obs, state, episode_start, deterministic)``
  over whole trials, keeping what it learns about the task in its state (RL²).
- ``gradient``: trained, adapts with ``adapt`` steps between episodes (the MAML family).
- ``baseline``: untrained, a :class:`metagym.policies.Policy` built for a family by the entry
  point ``(family, episodes_per_trial) -> Policy | None`` (None where it does not apply).

The trained kinds' entry point is an :class:`metagym.agents.common.trainer.Algorithm` class.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from metagym.errors import ArgumentError

#: What an agent can be (see the module docstring).
KINDS = ("memory", "gradient", "baseline")
#: The entry-point group where installed packages declare their agents.
ENTRY_POINT_GROUP = "metagym.agents"


@dataclass(frozen=True)
class AgentSpec:
    """One registered agent."""

    name: str
    """The name on the command line (``--agent NAME``) and in run folders' ``agent.txt``."""
    entry_point: str
    """``module:attribute``: an Algorithm class (trained kinds) or a baseline factory."""
    kind: str
    """``memory``, ``gradient`` or ``baseline``."""
    title: str
    """The name in tables and plot legends (``RL²``)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Config fields fixed by the name (MAML's ``variant``); not options of the agent."""

    @property
    def trained(self) -> bool:
        return self.kind != "baseline"

    def load(self) -> Any:
        """The entry point's object, imported now. A missing third-party module raises
        ImportError naming the extra that provides metagym's own agents."""
        module, _, attribute = self.entry_point.partition(":")
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if not error.name or error.name.partition(".")[0] == "metagym":
                raise  # a missing metagym module is a bug, raised as it is
            raise ImportError(
                f"agent {self.name} needs {error.name}, which is not installed"
                + (" (pip install 'metagym-rl[agents]')" if module.startswith("metagym.") else "")
            ) from None
        try:
            return functools.reduce(getattr, attribute.split("."), found)  # "Class.factory" too
        except AttributeError:
            raise ImportError(f"agent {self.name}: {module} has no {attribute!r}") from None


_REGISTRY: dict[str, AgentSpec] = {}
_discovered = False


def register_agent(
    name: str,
    entry_point: str,
    kind: str = "memory",
    title: str | None = None,
    kwargs: dict[str, Any] | None = None,
    replace: bool = False,
) -> AgentSpec:
    """Register an agent under ``name`` (see the module docstring); returns its spec.

    Raises:
        ValueError: a bad name, entry point or kind, or a name already taken (unless
            ``replace``).
    """
    if not isinstance(name, str) or not name or any(c.isspace() or c in "=/:" for c in name):
        raise ArgumentError("name", f"expected a non-empty name without spaces, '=', '/' or ':', got {name!r}")
    module, colon, attribute = entry_point.partition(":") if isinstance(entry_point, str) else ("", "", "")
    if not (module and colon and attribute):
        raise ArgumentError("entry_point", f"expected 'module:attribute', got {entry_point!r}")
    if kind not in KINDS:
        raise ArgumentError("kind", f"expected one of {list(KINDS)}, got {kind!r}")
    if name in _REGISTRY and not replace:
        raise ArgumentError("name", f"an agent called {name!r} is registered already ({_REGISTRY[name].entry_point})")
    spec = AgentSpec(name, entry_point, kind, title or name, dict(kwargs or {}))
    _REGISTRY[name] = spec
    return spec


def _discover() -> None:
    """Register the agents that installed packages declare (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.value.partition(":")[0] != __name__:  # our own are registered below
            point.load()()


def agent_names(kind: str | None = None) -> list[str]:
    """The registered agents' names (of ``kind`` only, if given), in registration order."""
    _discover()
    return [name for name, spec in _REGISTRY.items() if kind is None or spec.kind == kind]


def agent_spec(name: str, argument: str = "agent") -> AgentSpec:
    """The spec of agent ``name``, or an ArgumentError naming ``argument`` and the registered names."""
    _discover()
    if name not in _REGISTRY:
        raise ArgumentError(argument, f"unknown agent {name!r}; allowed: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def register_builtin() -> None:
    """metagym's own agents (called at import; the same calls a user's package makes)."""
    maml = "metagym.agents.maml:MAML"
    register_agent("rl2", "metagym.agents.rl2:RL2", "memory", "RL²", replace=True)
    register_agent("maml", maml, "gradient", "MAML", {"variant": "maml"}, replace=True)
    register_agent("fomaml", maml, "gradient", "FO-MAML", {"variant": "fomaml"}, replace=True)
    register_agent("reptile", maml, "gradient", "Reptile", {"variant": "reptile"}, replace=True)
    register_agent("pretrained", maml, "gradient", "pretrained", {"variant": "pretrained"}, replace=True)
    register_agent("transformer", "metagym.agents.transformer:Transformer", "memory", "transformer", replace=True)
    register_agent("varibad", "metagym.agents.varibad:VariBAD", "memory", "VariBAD", replace=True)
    baselines = {"ucb1": ("UCB1", "UCB1"), "thompson": ("ThompsonSampling", "Thompson sampling")}
    baselines |= {"gittins": ("GittinsIndex", "Gittins index"), "psrl": ("PSRL", "PSRL")}
    for name, (cls, title) in baselines.items():
        register_agent(name, f"metagym.agents.classic:{cls}.for_family", "baseline", title, replace=True)


register_builtin()
