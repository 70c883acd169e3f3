"""Tuned training settings shipped as data, like rl-zoo's hyperparameter files.

Each preset is one JSON file in this folder: the agent, the family id, the step budget, the
agent config fields that differ from its defaults, and what it is expected to score, with the
references, the split it was selected on and the command that measured it.
``metagym presets`` lists them; ``metagym train --preset NAME`` trains with one (options given
on the command line override its values).

Example:
    >>> from metagym.presets import presets
    >>> preset = presets()["rl2-bandit"]
    >>> preset.agent, preset.env, preset.steps
    ('rl2', 'MetaBandit-v0', 8000000)
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from importlib import resources
from typing import Any

from metagym.errors import ArgumentError

#: What every preset file holds.
FIELDS = {"description", "agent", "env", "steps", "config", "expected"}
#: What its ``expected`` block holds (``interval`` is optional).
EXPECTED = {"score", "metric", "scored_on", "references", "paper", "selected_on", "command", "minutes"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """One shipped training setting and the score it is expected to reach."""

    name: str
    description: str
    agent: str
    env: str
    steps: int
    config: dict[str, Any]
    expected: dict[str, Any]

    @property
    def score(self) -> str:
        """The expected score with its 95% interval, e.g. ``"6.62 [6.49, 6.76]"``."""
        low_high = self.expected.get("interval")
        score = f"{self.expected['score']:g}"
        return f"{score} [{low_high[0]:g}, {low_high[1]:g}]" if low_high else score


def _parse(name: str, text: str) -> Preset:
    data = json.loads(text)
    if not isinstance(data, dict) or set(data) != FIELDS:
        raise ValueError(f"preset {name}: expected the fields {sorted(FIELDS)}")
    missing = EXPECTED - set(data["expected"])
    if missing:
        raise ValueError(f"preset {name}: 'expected' lacks {sorted(missing)}")
    if isinstance(data["steps"], bool) or not isinstance(data["steps"], int) or data["steps"] < 1:
        raise ValueError(f"preset {name}: steps must be an integer >= 1")
    return Preset(name=name, **data)


@cache
def presets() -> dict[str, Preset]:
    """Every shipped preset by name (the JSON files of this package), sorted by name."""
    files = sorted(
        (f for f in resources.files(__package__).iterdir() if f.name.endswith(".json")), key=lambda f: f.name
    )
    return {f.name[: -len(".json")]: _parse(f.name[: -len(".json")], f.read_text()) for f in files}


def preset(name: str) -> Preset:
    """The preset called ``name``, or an ArgumentError listing the allowed names."""
    found = presets()
    if name not in found:
        raise ArgumentError("preset", f"unknown preset {name!r}; allowed: {', '.join(found)}")
    return found[name]


def default_for(agent: str, env: str) -> Preset | None:
    """The preset for ``agent`` on ``env``, if one is shipped (its settings are the defaults). A
    preset that sets ``env_kwargs`` changes the env itself, so it is never a default: ``--env``
    means the id as registered (pick such a preset with ``--preset``)."""
    matches = [p for p in presets().values() if p.agent == agent and p.env == env and "env_kwargs" not in p.config]
    # The family's own trial length first (rl2-bandit, not rl2-bandit100, for MetaBandit-v0).
    matches.sort(key=lambda p: "episodes_per_trial" in p.config)
    return matches[0] if matches else None
