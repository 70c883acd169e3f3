"""Checks every agent config shares: a known family id, counts, positive and unit numbers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from metagym.errors import ArgumentError
from metagym.registration import check_family_id
from metagym.tasks import SPLITS


def check_config(
    config: Any,
    counts: Iterable[str],
    positive: Iterable[str] = (),
    unit: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> None:
    """Raise ValueError naming the first bad field of ``config``.

    Every float field must be finite, whatever group it is in.

    Args:
        config: A config dataclass with an ``env_id`` field (and optionally ``env_kwargs``).
        counts: Fields that must be integers >= 1.
        positive: Fields that must be numbers > 0.
        unit: Fields that must be numbers in [0, 1].
        non_negative: Fields that must be numbers >= 0.
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ArgumentError(field.name, f"expected a finite number, got {value!r}")
    selected = getattr(config, "selected_on", "")
    if selected not in ("", *SPLITS):
        raise ArgumentError("selected_on", f"expected '' (unknown) or a split {list(SPLITS)}, got {selected!r}")
    for name in non_negative:
        if not getattr(config, name) >= 0:
            raise ArgumentError(name, f"expected a number >= 0, got {getattr(config, name)!r}")
    check_family_id(config.env_id, env_kwargs=getattr(config, "env_kwargs", None))
    seed = getattr(config, "seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ArgumentError("seed", f"expected an integer >= 0, got {seed!r}")
    for name in counts:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(name, f"expected an integer >= 1, got {value!r}")
    for name in positive:
        if not getattr(config, name) > 0:
            raise ArgumentError(name, f"expected a number > 0, got {getattr(config, name)!r}")
    for name in unit:
        if not 0 <= getattr(config, name) <= 1:
            raise ArgumentError(name, f"expected a number in [0, 1], got {getattr(config, name)!r}")
