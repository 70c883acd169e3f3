"""What the commands share: the one-line error, agents by name, devices, loading a run, training it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from metagym.agents.runs import run_agent
from metagym.backends import BACKENDS
from metagym.errors import ArgumentError
from metagym.policies import GradientActor


class CommandError(Exception):
    """A bad argument: printed as one line, exit status 2."""


def agent_registry() -> Any:
    """The agent registry, metagym.agents.registry (torch-free: importing it needs no extra)."""
    from metagym.agents import registry

    return registry


def agent_spec(name: str, flag: str = "--agent") -> Any:
    """The registered spec of agent ``name``; a CommandError naming ``flag`` and the allowed names."""
    try:
        return agent_registry().agent_spec(name)
    except ArgumentError as error:
        raise CommandError(f"{flag}: {error.detail}") from None


def algorithm_of(name: str, flag: str = "--agent") -> Any:
    """The Algorithm class of trained agent ``name``; a CommandError naming a missing extra."""
    from metagym.agents.common.trainer import algorithm_class

    spec = agent_spec(name, flag)
    try:
        return algorithm_class(spec)
    except ImportError as error:
        raise CommandError(f"{flag}: {error}") from None


def trainable_agent(name: str, flag: str = "--agent") -> str:
    """``name`` if it is a registered agent that trains; else a CommandError naming ``flag`` and
    the agents that do (an untrained baseline says where it is scored instead)."""
    registry = agent_registry()
    trained = [n for n in registry.agent_names() if registry.agent_spec(n).kind != "baseline"]
    if name in trained:
        return name
    if name in registry.agent_names():
        raise CommandError(
            f"{flag}: {name} is an untrained baseline, there is nothing to train (metagym evaluate --compare "
            f"{name} scores it beside a run); trainable agents: {', '.join(trained)}"
        )
    raise CommandError(f"{flag}: unknown agent {name!r}; trainable agents: {', '.join(trained)}")


def title_of(name: str) -> str:
    """How an agent is named in tables and plot legends (its registered title)."""
    return agent_registry().agent_spec(name).title if name in agent_registry().agent_names() else name


#: ``--device``'s help (train, evaluate, render, sweep).
DEVICE_HELP = "cpu, cuda, or auto (cuda where torch sees a GPU); any run loads on any device (default: %(default)s)"


def device_arg(device: str) -> str:
    """``--device``, resolved to ``cpu`` or ``cuda``; a CommandError naming it otherwise."""
    from metagym.agents.common.trainer import resolve_device

    try:
        return resolve_device(device)
    except ArgumentError as error:
        raise CommandError(f"--device: {error.detail}") from None


#: Library arguments set by an option of another name (a run config's ``env_id`` is ``--env``).
OPTION_OF = {"env_id": "env", "total_steps": "steps"}
#: What the parser keeps in the namespace besides options.
_NOT_OPTIONS = {"command", "run", "renamed", "agent_options", "imports"}


def flag_of(argument: str, args: argparse.Namespace | None) -> str | None:
    """The option of the command parsed into ``args`` that sets the library's ``argument``
    (``total_steps`` -> ``--steps``; a command's own names in ``args.renamed``, e.g. demo's run
    folder is ``--out``); None where no option of the command sets it (a file's field, say)."""
    if args is None:
        return None
    name = getattr(args, "renamed", {}).get(argument, OPTION_OF.get(argument, argument))
    if name in vars(args) and name not in _NOT_OPTIONS:
        return "--" + name.replace("_", "-")
    return None


def refusal(error: ArgumentError, args: argparse.Namespace | None) -> str:
    """``error``'s one line, its argument named as the option that sets it where one does."""
    flag = flag_of(error.argument, args)
    return f"{flag}: {error.detail}" if flag else str(error)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The agent's config options given on the command line."""
    return {o.name: getattr(args, o.name) for o in args.agent_options if getattr(args, o.name) is not None}


def load_agent(run_dir: str, device: str = "cpu") -> Any:
    from metagym.agents.runs import load_run

    algorithm_of(run_agent(run_dir), "--run-dir")  # a missing extra, named
    agent = load_run(run_dir, device_arg(device))
    say_config_note(Path(run_dir), agent.config, agent.config.agent)
    return agent


def say_config_note(run_dir: Path, saved: Any, agent: str) -> None:
    """Print, in one line each, where a run's config.json or agent.txt disagrees with its
    checkpoint (its config ``saved``, its agent's name ``agent``)."""
    from metagym.agents.common.trainer import agent_note, config_note

    for note in (agent_note(run_dir, agent), config_note(run_dir, saved)):
        if note:
            print(f"note: {note}", file=sys.stderr)


def trained(trainer: Any, run_dir: Path, checkpoint_seconds: float | None, quiet: bool, hint: str) -> None:
    """Run ``trainer``; an interrupt or a full disk ends the command with one line, not a traceback."""
    from metagym.agents.common.runlog import Interrupted

    try:
        trainer.run(checkpoint_seconds=checkpoint_seconds, progress=not quiet)
    except Interrupted as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving: another Ctrl-C may not cut the message short
        if stop.saved:
            print(f"\ninterrupted: update {stop.update} saved in {run_dir}; {hint}", file=sys.stderr)
        else:
            print(f"\ninterrupted twice: stopped at once; the last checkpoint in {run_dir} is kept", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as error:  # disk full, folder removed or made read-only under the run
        where = error.filename or run_dir
        reason = error.strerror or error
        kept = "the run is as its last checkpoint left it" if (run_dir / "checkpoint.pt").exists() else "no run is left"
        raise CommandError(f"--run-dir: cannot write {where} ({reason}); {kept}") from None


def gradient(agent: Any) -> bool:
    """Whether ``agent`` adapts by gradient steps (a :class:`metagym.policies.GradientActor`)."""
    return isinstance(agent, GradientActor)


def check_folder_of(out: Path, flag: str) -> None:
    """Refuse an output path under a file (a missing folder is created when the output is written)."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CommandError(f"{flag}: {parent} is a file, not a folder; nothing was written")
            return


def check_backend_arg(backend: str) -> None:
    """Refuse a ``--backend`` that is not one of metagym's backends."""
    if backend not in BACKENDS:
        raise CommandError(f"--backend: {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
