"""The ``metagym`` command: list, presets, train, evaluate, render, sweep, demo.

One module per command (:mod:`metagym.cli.train` also holds ``presets``), each with
``add_parser(sub)`` and its ``cmd_*`` functions; this one builds the parser, imports ``--import``
modules and turns every refusal (a :class:`CommandError`, or the library's
:class:`~metagym.errors.ArgumentError` named as its option) into one line and exit status 2; any
other exception is a bug and keeps its traceback. Agents are imported only by the
commands that need them, so ``metagym list`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import Any, NoReturn

import gymnasium as gym

from metagym.cli import demo, evaluate, listing, render, sweep, train
from metagym.cli.common import CommandError, refusal
from metagym.errors import ArgumentError, error_line

__all__ = ["CommandError", "build_parser", "main"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line naming it (``metagym train: argument --steps:
    invalid int value: 'ten'``), exit status 2, like every other refusal; ``--help`` shows usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser(agent_options: list[Any] | None = None, agent: str | None = None) -> argparse.ArgumentParser:
    """The command's parser; ``metagym train`` takes ``agent_options`` (the fields of ``agent``'s
    config, :func:`metagym.agents.common.settings.options`) besides its own."""
    parser = OneLineParser(prog="metagym", description="meta-RL task families, agents and evaluation")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): your own code that registers families with gymnasium.register",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="with --import: print a failing module's whole traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing.add_parser(sub)
    train.add_parser(sub, agent_options, agent)
    evaluate.add_parser(sub)
    render.add_parser(sub)
    sweep.add_parser(sub)
    demo.add_parser(sub)
    return parser


def _import_modules(argv: list[str]) -> None:
    """Import every ``--import MODULE`` (before the parser is built: they may register agents)."""
    scan = argparse.ArgumentParser(add_help=False)
    scan.add_argument("--import", dest="imports", action="append", default=[])
    scan.add_argument("--traceback", action="store_true")
    known = scan.parse_known_args(argv)[0]
    listing._BEFORE_IMPORTS.update(gym.registry)
    for module in known.imports:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is not None and module.startswith(error.name):  # the module itself is not there
                raise CommandError(f"--import: cannot import {module!r} ({error})") from None
            raise CommandError(failed_import(module, error, known.traceback)) from None
        except (Exception, SystemExit) as error:  # the user's module raised, has a syntax error, or exited
            raise CommandError(failed_import(module, error, known.traceback)) from None


def failed_import(module: str, error: BaseException, traceback: bool) -> str:
    """One line naming ``module`` and what it raised (its whole traceback first, on stderr, with
    ``--traceback``)."""
    import traceback as tb

    if traceback:
        tb.print_exception(error, file=sys.stderr)
    what = error_line(error)
    if isinstance(error, SyntaxError) and error.filename:
        what = f"SyntaxError in {error.filename}, line {error.lineno}: {error.msg}"
    if isinstance(error, SystemExit):
        what = f"it called sys.exit({error.code!r})"
    hint = "" if traceback else "; metagym --traceback --import ... shows where"
    return f"--import: {module!r} failed while importing ({what}){hint}"


def _refuse_unknown(unknown: list[str], args: argparse.Namespace, agent: str | None) -> None:
    """One line for an option the command does not take (an agent's option names the agent)."""
    flag = next((a.split("=")[0] for a in unknown if a.startswith("-")), unknown[0])
    if args.command == "train" and agent is not None:
        hint = f"metagym train --agent {agent} --help lists its options"
        raise CommandError(f"{flag}: not an option of --agent {agent} ({hint})")
    raise CommandError(f"{flag}: not an option of metagym {args.command} (metagym {args.command} --help)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    background: list[BaseException | None] = []  # e.g. TensorBoard's writer thread on a full disk
    hook = threading.excepthook
    threading.excepthook = lambda failed: background.append(failed.exc_value)
    values = {i + 1 for i, a in enumerate(argv) if a == "--import"}  # MODULE after --import
    command = next((a for i, a in enumerate(argv) if not a.startswith("-") and i not in values), "")
    args: argparse.Namespace | None = None
    try:
        _import_modules(argv)
        agent, agent_options = train._train_options(argv)
        args, unknown = build_parser(agent_options, agent).parse_known_args(argv)
        command = args.command
        if unknown:
            _refuse_unknown(unknown, args, agent)
        args.run(args)
        if background:
            print(f"metagym {args.command}: warning: a background writer failed ({background[0]})", file=sys.stderr)
    except ArgumentError as error:  # the library refused an argument: named as the option that sets it
        print(f"metagym {command}: {refusal(error, args)}", file=sys.stderr)
        return 2
    except (CommandError, gym.error.DependencyNotInstalled) as error:
        print(f"metagym {command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside training (which stops between updates, above)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one may not turn this into a traceback
        print(f"\nmetagym {command}: interrupted; files it was writing are left as they were", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`metagym list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a file that cannot be read or written: disk full, read-only, removed
        where = f"{error.filename}: " if error.filename else ""
        print(f"metagym {command}: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    finally:
        threading.excepthook = hook
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
