"""An agent's config dataclass, read as command-line options (no torch, no source parsing).

Each field of a config is one ``metagym train`` option: its name (``hidden_size`` ->
``--hidden-size``), its type from the annotations (``typing.get_type_hints``) and its help from
the field's ``metadata["help"]``, which :func:`setting` writes::

    @dataclasses.dataclass(frozen=True)
    class MyConfig:
        hidden_size: int = setting(64, "Width of the GRU.")

``int``, ``float``, ``str`` and ``bool`` fields (and ``X | None``: ``none`` gives None) are
parsed as such; ``Literal`` fields take one of their values; a field of any other type (a tuple,
a list, a dict) takes JSON, which the config's ``validate`` then checks. No field is left out.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from metagym.errors import ArgumentTypeError

#: Fields every trained agent's config has, with options of their own (--env, --steps, --seed).
COMMON_FIELDS = ("env_id", "total_steps", "seed")


def setting(default: Any, help: str) -> Any:
    """A config field with ``default`` and its ``--help`` text."""
    return dataclasses.field(default=default, metadata={"help": help})


# Fields that every shipped agent's config declares alike, written once. A base dataclass would
# put them first in every config (dataclass fields keep their base's order), reordering each
# run's config.json and --help; each config places these where it wants them instead.


def total_steps_setting(default: int) -> Any:
    return setting(default, "Environment steps to train for.")


def env_kwargs_setting() -> Any:
    return setting(
        None,
        "Keyword arguments of gymnasium.make for the family (a JSON object, e.g. '{\"horizon\": 100}' for "
        "Meta-World's episode length), used wherever the run makes its env; none: the id's own.",
    )


def gamma_setting() -> Any:
    return setting(0.99, "Discount.")


def torch_threads_setting(why: str) -> Any:
    return setting(1, f"Threads for torch: {why}.")


def selected_on_setting() -> Any:
    return setting("", 'The split these hyperparameters were selected on ("validation"), empty when unknown.')


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


@dataclasses.dataclass(frozen=True)
class Option:
    """One config field as a command-line option."""

    name: str
    parse: Callable[[str], Any]
    metavar: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _parser(kind: Any, where: str) -> tuple[Callable[[str], Any], str]:
    """(parse, metavar) for a field of type ``kind``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        inner, metavar = _parser(rest[0] if len(rest) == 1 else typing.Union[tuple(rest)], where)  # noqa: UP007

        def optional(text: str) -> Any:
            return None if text.lower() == "none" else inner(text)

        return optional, f"{metavar}|none"
    if kind is bool:
        return parse_bool, "BOOL"
    if kind in (int, float):
        what = "an integer" if kind is int else "a number"

        def number(text: str) -> Any:
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"expected {what}, got {text!r}") from None

        return number, kind.__name__.upper()
    if kind is str:
        return str, "STR"
    if typing.get_origin(kind) is typing.Literal:
        allowed = [str(a) for a in args]

        def choice(text: str) -> Any:
            for value in args:
                if str(value) == text:
                    return value
            raise ValueError(f"expected one of {allowed}, got {text!r}")

        return choice, "{" + ",".join(allowed) + "}"

    def from_json(text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"expected JSON for {where} ({error.msg}), got {text!r}") from None

    return from_json, "JSON"


def options(config_cls: type, fixed: Iterable[str] = ()) -> list[Option]:
    """The options of ``config_cls``'s fields, but the common ones and ``fixed`` (fields an agent's
    name fixes, such as MAML's ``variant``)."""
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise ArgumentTypeError("config", f"expected a dataclass type, got {config_cls!r}")
    hints = typing.get_type_hints(config_cls)
    skip = {*COMMON_FIELDS, *fixed}
    found = []
    for f in dataclasses.fields(config_cls):
        if f.name in skip or not f.init:
            continue
        parse, metavar = _parser(hints[f.name], f.name)
        found.append(Option(f.name, parse, metavar, str(f.metadata.get("help", ""))))
    return found


def missing_fields(config_cls: type) -> list[str]:
    """The common fields (:data:`COMMON_FIELDS`) that ``config_cls`` lacks."""
    names = {f.name for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else set()
    return [name for name in COMMON_FIELDS if name not in names]
