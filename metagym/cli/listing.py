"""``metagym list``: every family (metagym's and those ``--import`` registered), then every agent."""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym

import metagym
from metagym.cli.common import agent_registry
from metagym.errors import error_line
from metagym.registration import family_of

#: Ids registered before ``--import`` ran (what is registered after is the user's).
_BEFORE_IMPORTS: set[str] = set()


def user_env_ids() -> list[str]:
    """Family ids that ``--import``ed modules registered (their trial ids left out)."""
    return [i for i in gym.registry if i not in _BEFORE_IMPORTS and "-Trial-" not in i]


def cmd_list(args: argparse.Namespace) -> None:
    """Print every family (metagym's and those ``--import`` registered), then every agent."""
    for env_id in [*metagym.env_ids(trials=False), *user_env_ids()]:
        try:
            family = family_of(gym.make(env_id, disable_env_checker=True))
        except (ImportError, gym.error.DependencyNotInstalled) as error:  # an extra, or OpenGL, is missing
            print(f"{env_id}  (unavailable: {error})")
            continue
        except TypeError:  # a user's id that is not a metagym family
            continue
        except Exception as error:  # a user's family that fails to build is listed, not fatal
            if env_id not in user_env_ids():
                raise
            print(f"{env_id}  (unavailable: making it raised {error_line(error)})")
            continue
        print(f"{env_id}  (trial: {metagym.trial_id(env_id)}, {family.episodes_per_trial} episodes per trial)")
        print("  " + family.describe().replace("\n", "\n  "))
    core = set(metagym.env_ids(trials=False))
    metaworld = [i for i in metagym.env_ids(trials=False, metaworld=True) if i not in core]
    print(
        f"\nMeta-World (the metaworld extra; each id builds its benchmark's tasks when made, each has a -Trial- id):"
        f"\n  {', '.join(metaworld)}"
    )
    registry = agent_registry()
    print("\nagents (metagym train --agent NAME; NAME --help lists its options):")
    for name in registry.agent_names():
        spec = registry.agent_spec(name)
        print(f"  {name:<12} {spec.kind:<9} {spec.title}  ({spec.entry_point})")


def add_parser(sub: Any) -> None:
    """``list``."""
    sub.add_parser("list", help="list every task family").set_defaults(run=cmd_list)
