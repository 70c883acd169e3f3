"""Run folders as library calls: configure, train, resume and load a run of any registered agent.

``metagym train`` and ``metagym sweep`` are both made of these calls, so a run trained from
Python, the command line or a sweep is the same run::

    from metagym.agents.runs import run_config, train_run, load_run

    config = run_config("rl2", "MetaBandit-v0", steps=100_000, options={"hidden_size": 64})
    train_run(config, "runs/bandit")
    agent = load_run("runs/bandit")

The agents are imported only when a call needs one (``import metagym.agents.runs`` imports no torch).
Errors are :class:`metagym.errors.ArgumentError` naming the argument (the command line turns it into its option).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from metagym.errors import ArgumentError, ArgumentTypeError
from metagym.registration import check_family_id

#: What a run folder holds; ``overwrite`` deletes exactly these.
RUN_FILES = ("checkpoint.pt", "config.json", "progress.csv", "agent.txt", "tensorboard")


def run_config(
    agent: str,
    env_id: str,
    steps: int,
    seed: int = 0,
    preset: Any = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """The validated config of a new run of the registered ``agent`` on family ``env_id``.

    Fields come from the agent's defaults, then ``preset``'s config (a
    :class:`metagym.presets.Preset`), then ``options``; the agent's name fixes its own
    (MAML's ``variant``). An option the agent's config does not have is refused by name.
    """
    from metagym.agents.common.trainer import algorithm_class
    from metagym.agents.registry import agent_spec

    spec = agent_spec(agent)
    config_cls = algorithm_class(spec).Config
    check_family_id(env_id, "env")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ArgumentError("steps", f"expected an integer >= 1, got {steps!r}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    given = dict(options or {})
    for name in sorted(set(given) - fields):
        raise ArgumentError(name, f"not an option of agent {agent}")
    for name in sorted(set(given) & set(spec.kwargs)):
        raise ArgumentError(name, f"agent {agent} fixes it to {spec.kwargs[name]!r}")
    values = dict(preset.config) if preset is not None else {}
    values |= given | spec.kwargs | {"env_id": env_id, "total_steps": steps, "seed": seed}
    try:
        config = config_cls(**values).validate()
    except ArgumentError:
        raise
    except ValueError as error:  # a config of a user's agent that raises plain ValueErrors ("field: why")
        field, colon, detail = str(error).partition(": ")
        if colon and field in fields:
            raise ArgumentError(field, detail) from None
        raise ArgumentError(agent, str(error)) from None
    except TypeError as error:  # a field's value of a type the config cannot take
        raise ArgumentTypeError("options", f"{agent} config: {error}") from None
    said = getattr(config, "agent", None)
    if said != spec.name:  # the trainer finds the agent by its config's name: they must agree
        raise ArgumentError(
            "agent",
            f"{agent} is registered with {spec.entry_point}, whose config "
            f"{config_cls.__name__} names agent {said!r}; register it as {said!r} or set "
            f"{config_cls.__name__}.agent = {spec.name!r}",
        )
    return config


def prepare_run_dir(folder: Path, overwrite: bool, extra: tuple[str, ...] = ()) -> None:
    """Refuse a folder that already holds a run unless ``overwrite``; then delete only that run's files."""
    if folder.exists() and not folder.is_dir():
        raise ArgumentError("run_dir", f"{folder} is a file, not a folder")
    if not any((folder / name).exists() for name in RUN_FILES[:4]):
        return
    if not overwrite:
        raise ArgumentError(
            "run_dir",
            f"{folder} already holds a run; continue it with --resume (train), "
            "or start it over with --overwrite, which deletes its checkpoint and logs",
        )
    from metagym.agents.common.runlog import run_lock

    with run_lock(folder):  # never clear a folder that another trainer is using
        for name in RUN_FILES + extra:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def writable(folder: Path) -> None:
    """Create ``folder`` if needed, or raise an ArgumentError naming ``run_dir`` if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ArgumentError("run_dir", f"cannot create {folder} ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArgumentError("run_dir", f"{folder} is not writable")


def new_run(
    config: Any,
    run_dir: str | Path,
    overwrite: bool = False,
    extra: tuple[str, ...] = (),
    device: str = "cpu",
) -> Any:
    """A :class:`~metagym.agents.common.trainer.Trainer` for a new run of ``config`` in ``run_dir``,
    built (everything checked) before the folder is touched; not run yet."""
    from metagym.agents.common.trainer import Trainer

    folder = Path(run_dir)
    prepare_run_dir(folder, overwrite, extra)
    trainer = Trainer(config, folder, device)
    writable(folder)
    return trainer


def resumed_run(run_dir: str | Path, steps: int | None = None, device: str = "cpu") -> Any:
    """The trainer of the run in ``run_dir``, as it was saved (on ``device``); ``steps`` may extend it."""
    from metagym.agents.common.trainer import Trainer

    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ArgumentError("steps", f"expected an integer >= 1, got {steps!r}")
    return Trainer.resume(run_dir, total_steps=steps, device=device)


def train_run(
    config: Any,
    run_dir: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    steps: int | None = None,
    checkpoint_seconds: float | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> Any:
    """Train a new run of ``config`` in ``run_dir`` (or, with ``resume``, continue the run there,
    to ``steps`` if given; ``config`` is then ignored and may be None) on ``device`` (``cpu``,
    ``cuda`` or ``auto``); the trainer, trained."""
    if resume:
        trainer = resumed_run(run_dir, steps, device)
    else:
        trainer = new_run(config, run_dir, overwrite, device=device)
    trainer.run(checkpoint_seconds=checkpoint_seconds, progress=progress)
    return trainer


def run_agent(run_dir: str | Path) -> str:
    """The registered name of the agent that trained the run in ``run_dir``."""
    from metagym.agents.common.trainer import run_agent as name

    return name(run_dir)


def load_run(run_dir: str | Path, device: str = "cpu") -> Any:
    """The trained agent of the run in ``run_dir``, on ``device`` (read without running any code of the file)."""
    from metagym.agents.common.trainer import load_agent

    return load_agent(run_dir, device)
