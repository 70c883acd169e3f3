"""The seam every trained agent plugs into: an :class:`Algorithm` supplies one update and the
state it depends on; the :class:`Trainer` owns everything else about a run.

The Trainer holds the run folder's lock, writes ``config.json`` and ``agent.txt``, the CSV and
TensorBoard logs and the progress bar, stops between updates on Ctrl-C/SIGTERM, saves atomic
checkpoints on a timer and resumes them bit for bit. An algorithm (RL²'s on-policy memory
learner, MAML's meta-update, a user's) is a config dataclass and four methods:

- ``__init__(config)``: build envs, networks, optimisers and generators from ``config.seed``
  alone (a resumed run is built the same way, then its state is written into it);
- ``learn(update) -> dict[str, float]``: one update; the numbers are logged (each key listed in
  ``log_fields``, the CSV's columns);
- ``state_dict()`` / ``load_state_dict(state, path)``: what the next update depends on, as
  tensors, arrays, numbers, strings and JSON (``torch.load(weights_only=True)`` reads it back).

The trainer checks the seam where a mistake would otherwise surface late: after a run's first
update, what ``learn`` returned and that ``state_dict()`` reads back from a checkpoint (a state
holding any other object stops the run then, not when it is resumed or evaluated after training);
a registered name whose config names another agent is refused before anything is built.
- ``agent``: the object that acts (``predict``) and is evaluated, with ``kind`` declared.

A user's agent registers its Algorithm class by name (:mod:`metagym.agents.registry`) and then
trains, evaluates, sweeps and renders from the CLI like metagym's own (``docs/api.md`` shows one).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from metagym.agents.common.checkpoint import (
    CHECKPOINT_SECONDS,
    check_interval,
    check_loadable,
    config_from,
    extended,
    field,
    load,
    restored,
    save_atomic,
    saved,
)
from metagym.agents.common.runlog import (
    Interrupted,
    append_log,
    check_finite,
    run_lock,
    stop_between_updates,
    tensorboard,
    truncate_log,
)
from metagym.agents.registry import AgentSpec, agent_spec
from metagym.atomic import replaced_atomically
from metagym.errors import ArgumentError, ArgumentTypeError


class Algorithm(ABC):
    """One agent's learning, driven by :class:`Trainer` (see the module docstring)."""

    #: The config dataclass: ``env_id``, ``total_steps``, ``seed`` and the agent's own fields.
    Config: ClassVar[type]

    @property
    def log_fields(self) -> list[str]:
        """Logged numbers that :meth:`learn` returns, in the CSV's column order."""
        return []

    config: Any
    agent: Any
    global_step: int

    @abstractmethod
    def __init__(self, config: Any, device: str = "cpu") -> None:
        """Build everything from ``config`` (validated) and its seed alone, the networks on
        ``device`` (``cpu`` or ``cuda``: :func:`resolve_device`)."""

    @property
    def planned_steps(self) -> int:
        """Environment steps the run trains for (an agent that trains in whole updates may
        round ``total_steps``; :attr:`note` says so)."""
        return int(self.config.total_steps)

    @property
    def note(self) -> str | None:
        """Something the user should know about the config before training (or None)."""
        return None

    @abstractmethod
    def learn(self, update: int) -> dict[str, float]:
        """Run update number ``update`` (0-based): collect, learn; the numbers to log."""

    #: Attributes saved under their own names and restored by their type (SB3's
    #: ``_get_torch_save_params``, kept weights-only): torch modules and optimizers, torch and
    #: numpy generators, objects with ``state_dict()`` and ``load_state_dict(state, path)``.
    stateful: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        """Everything the next update depends on (beyond the config and the counters): the
        :attr:`stateful` attributes; an algorithm adds what is not saved by type."""
        return {name: saved(getattr(self, name)) for name in self.stateful}

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        """Write a saved state into this freshly built algorithm; an ArgumentError naming ``path``."""
        for name in self.stateful:
            setattr(self, name, restored(getattr(self, name), state, name, path))

    @abstractmethod
    def tensors(self) -> Iterable[Any]:
        """The trained tensors (checked to be finite after every update)."""

    def progress(self, stats: dict[str, float]) -> str:
        """The progress bar's text after an update (besides steps/s)."""
        return "  ".join(f"{k} {v:.3g}" for k, v in stats.items())

    @classmethod
    @abstractmethod
    def agent_from(cls, config: Any, state: dict[str, Any], path: str | Path, device: str = "cpu") -> Any:
        """The acting agent of a checkpoint's state (no envs to train, no optimiser), on ``device``."""


#: What ``--device`` takes: ``auto`` is ``cuda`` where torch sees a GPU, else ``cpu``.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` value; a ValueError naming ``device`` otherwise.

    Every run trains and loads on any device (checkpoints are read onto the CPU, then moved).
    The CPU is the default and the tests' device; numbers on a GPU differ from the CPU's in the
    last float digits (other kernels), so a run is reproducible on the device it ran on.
    """
    import torch

    if name not in DEVICES:
        raise ArgumentError("device", f"expected one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(
            "device", "cuda is not available here (torch.cuda.is_available() is False); use cpu or auto"
        )
    return name


def name_of(config: Any) -> str:
    """The registered agent a config belongs to (its ``agent`` attribute: a class constant, or
    MAML's ``variant``)."""
    name = getattr(config, "agent", None)
    if not isinstance(name, str):
        raise ArgumentTypeError(
            "config", f"{type(config).__name__} does not say which agent it configures (no 'agent' name)"
        )
    return name


def algorithm_class(spec: AgentSpec) -> type[Algorithm]:
    """The Algorithm class a trained agent's spec names."""
    if not spec.trained:
        raise ArgumentError("agent", f"{spec.name} is an untrained baseline; there is nothing to train")
    cls = spec.load()
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ArgumentTypeError("agent", f"{spec.name}'s entry point {spec.entry_point} is not an Algorithm class")
    return cls


class Trainer:
    """Trains one algorithm in one run folder; see the module docstring.

    Args:
        config: A trained agent's config (its ``agent`` names the registered agent), or an
            :class:`Algorithm` built already.
        run_dir: The run folder (created at :meth:`run`).
        device: ``cpu``, ``cuda`` or ``auto`` (:func:`resolve_device`; a built Algorithm keeps its own).
    """

    def __init__(self, config: Any, run_dir: str | Path, device: str = "cpu") -> None:
        if isinstance(config, Algorithm):
            self.algorithm = config
        else:
            algorithm = algorithm_class(agent_spec(name_of(config)))
            self.algorithm = algorithm(config.validate(), resolve_device(device))
        self.name = name_of(self.algorithm.config)
        self.run_dir = Path(run_dir)
        self.update, self.elapsed = 0, 0.0
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self.saved_config: dict[str, Any] | None = None  # a resumed run's config, as its checkpoint held it

    @property
    def config(self) -> Any:
        return self.algorithm.config

    @property
    def agent(self) -> Any:
        return self.algorithm.agent

    @property
    def global_step(self) -> int:
        return self.algorithm.global_step

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: the agent's name, config and counters, and the algorithm's state."""
        return {
            "agent": self.name,
            "config": dataclasses.asdict(self.config),
            "update": self.update,
            "global_step": self.global_step,
            "elapsed": self.elapsed,
            "checkpoint_seconds": self.checkpoint_seconds,
            **self.algorithm.state_dict(),
        }

    def save(self) -> None:
        save_atomic(self.state_dict(), self.run_dir / "checkpoint.pt")

    @classmethod
    def resume(cls, run_dir: str | Path, total_steps: int | None = None, device: str = "cpu") -> Trainer:
        """The trainer saved in ``run_dir``, to continue bit for bit (to ``total_steps`` if given).

        The algorithm is built from the saved config exactly as a new run is (same envs,
        networks, optimisers), then the saved state is written into it.
        """
        path = Path(run_dir) / "checkpoint.pt"
        state = load(path)
        algorithm = algorithm_class(agent_spec(saved_agent(state, run_dir), "checkpoint"))
        config = config_from(algorithm.Config, state, path)
        done = field(state, "global_step", int, path)
        if total_steps is not None:
            config = extended(config, total_steps, done, path)
        built = algorithm(config, resolve_device(device))
        built.load_state_dict(state, path)
        built.global_step = done
        trainer = cls(built, run_dir)
        trainer.update = field(state, "update" if "update" in state else "iteration", int, path)
        trainer.elapsed = float(field(state, "elapsed", (int, float), path))
        trainer.checkpoint_seconds = check_interval(state.get("checkpoint_seconds", CHECKPOINT_SECONDS), path)
        trainer.saved_config = state["config"]  # as the checkpoint holds it (before --steps extends it)
        return trainer

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self, checkpoint_seconds: float | None = None, progress: bool = True, stop_after: int | None = None
    ) -> None:
        """Train to the planned steps (or ``stop_after`` more updates), logging and checkpointing."""
        with run_lock(self.run_dir):  # one trainer per run folder
            if checkpoint_seconds is not None:  # kept in the checkpoint: a resumed run saves as often
                self.checkpoint_seconds = check_interval(checkpoint_seconds)
            self._run(self.checkpoint_seconds, progress, stop_after)

    def _run(self, checkpoint_seconds: float, progress: bool, stop_after: int | None) -> None:
        """The loop, as one transaction: config, log and checkpoint always agree on disk.

        ``config.json`` and ``agent.txt`` describe the last checkpoint: a new run writes them at
        once, a resumed one after its first save (an extended ``--steps`` is recorded only once
        a checkpoint holds it). If the loop fails (a full disk, an error, a second Ctrl-C), the
        log is cut back to the last checkpoint's update, and a run that never saved one has its
        files removed: the folder is left as the last good checkpoint describes it.
        """
        from tqdm import tqdm

        algorithm, planned = self.algorithm, self.algorithm.planned_steps
        self.run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint, log_path = self.run_dir / "checkpoint.pt", self.run_dir / "progress.csv"
        created = [
            name
            for name in ("config.json", "agent.txt", "progress.csv", "tensorboard")
            if not (self.run_dir / name).exists()
        ]
        saved_before = checkpoint.exists()
        fields = ["update", "global_step", "steps_per_sec", *algorithm.log_fields]
        good_log: int | None = None  # the log's size when the last checkpoint was saved
        try:
            if not saved_before:
                self._write_record()
            truncate_log(log_path, self.update, fields)
            good_log = log_path.stat().st_size if log_path.exists() else 0
            writer = tensorboard(self.run_dir, self.global_step)
            last_save, done = time.monotonic(), 0
            bar = tqdm(total=planned, initial=min(self.global_step, planned), disable=not progress, unit="step")
            with stop_between_updates(bar, writer) as stop:
                stop.update = self.update
                while self.global_step < planned and (stop_after is None or done < stop_after):
                    tic, before = time.perf_counter(), self.global_step
                    stats = algorithm.learn(self.update)
                    check_stats(self.name, type(algorithm).__name__, stats, algorithm.log_fields)
                    check_finite(self.run_dir, self.update + 1, stats, algorithm.tensors())
                    if done == 0:  # a state that cannot be loaded stops the run now, not after it
                        check_loadable(self.state_dict(), f"{self.name}'s {type(algorithm).__name__}.state_dict")
                    self.update, done = self.update + 1, done + 1
                    seconds = time.perf_counter() - tic
                    self.elapsed += seconds
                    row: dict[str, float] = {"update": self.update, "global_step": self.global_step}
                    row |= {"steps_per_sec": (self.global_step - before) / seconds, **stats}
                    append_log(log_path, row, fields)
                    if writer is not None:
                        for key, value in row.items():
                            writer.add_scalar(f"{self.name}/{key}", value, self.global_step)
                    bar.update(min(self.global_step, planned) - bar.n)
                    bar.set_postfix_str(f"{row['steps_per_sec']:,.0f} steps/s  {algorithm.progress(stats)}")
                    stop.update = self.update
                    if stop.requested or time.monotonic() - last_save >= checkpoint_seconds:
                        good_log = self._save_with_record(log_path)
                        last_save = time.monotonic()
                    if stop.requested:
                        raise Interrupted(saved=True, update=self.update)
                good_log = self._save_with_record(log_path)
        except BaseException as error:
            if not (isinstance(error, Interrupted) and error.saved):
                self._roll_back(log_path, good_log, created)
            raise

    def _write_record(self) -> dict[str, str | None]:
        """Write ``config.json`` (read-only: the checkpoint is the source; an edit is reported,
        not used) and ``agent.txt`` where they differ from the run's, each atomically; return
        what each changed file held before (None: it did not exist), to restore on a failure."""
        config = json.dumps(dataclasses.asdict(self.config), indent=2) + "\n"
        texts = {"config.json": config, "agent.txt": self.name + "\n"}
        changed: dict[str, str | None] = {}
        for name, text in texts.items():
            path = self.run_dir / name
            old = path.read_text() if path.is_file() else None
            if old != text:
                with replaced_atomically(path, mode=0o444 if name == "config.json" else None) as handle:
                    handle.write(text)
                changed[name] = old
        return changed

    def _save_with_record(self, log_path: Path) -> int:
        """The record, then the checkpoint it describes (the commit); the log's size now. If the
        checkpoint cannot be written, the record is put back as it was."""
        changed = self._write_record()
        try:
            self.save()
        except BaseException:
            for name, old in changed.items():
                path = self.run_dir / name
                if old is None:
                    path.unlink(missing_ok=True)
                else:
                    with replaced_atomically(path, mode=0o444 if name == "config.json" else None) as handle:
                        handle.write(old)
            raise
        return log_path.stat().st_size if log_path.exists() else 0

    def _roll_back(self, log_path: Path, good_log: int | None, created: list[str]) -> None:
        """After a failed loop: cut the log to the last checkpoint, or, if this run never saved
        one, remove the files it created. Truncating needs no free space, so it works on a full disk."""
        if not (self.run_dir / "checkpoint.pt").exists():
            for name in created:
                path = self.run_dir / name
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            return
        if good_log is not None and log_path.exists() and log_path.stat().st_size > good_log:
            os.truncate(log_path, good_log)


def check_stats(name: str, cls: str, stats: Any, fields: list[str]) -> None:
    """An ArgumentTypeError naming the agent unless ``learn`` returned what the seam asks: a dict of
    the numbers named in ``log_fields`` (logged as the CSV's columns)."""
    where = f"{name}'s {cls}.learn"
    if not isinstance(stats, dict):
        expected = "expected a dict of str to float (the numbers to log)"
        raise ArgumentTypeError("agent", f"{where} returned {type(stats).__name__}; {expected}")
    for key, value in stats.items():
        if not isinstance(key, str):
            raise ArgumentTypeError("agent", f"{where} returned the key {key!r}; expected strings (the log_fields)")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            what = f"{key} = {value!r} ({type(value).__name__}); expected a float"
            raise ArgumentTypeError("agent", f"{where} returned {what}")
    unknown = [key for key in stats if key not in fields]
    if unknown:
        raise ArgumentTypeError(
            "agent",
            f"{where} returned {', '.join(map(repr, unknown))}, not in its log_fields {fields}; "
            "list every number learn returns in log_fields",
        )


def saved_agent(state: dict[str, Any], run_dir: str | Path) -> str:
    """The agent that wrote a checkpoint: its ``agent`` entry, or (checkpoints of metagym 0.1)
    the run folder's ``agent.txt``; a ValueError when neither says."""
    name = state.get("agent")
    if isinstance(name, str):
        return name
    marker = Path(run_dir) / "agent.txt"
    if marker.is_file():
        return marker.read_text().strip()
    raise ArgumentError(
        "checkpoint", f"{Path(run_dir) / 'checkpoint.pt'} does not say which agent wrote it (no agent.txt)"
    )


def config_note(run_dir: str | Path, saved: Any) -> str | None:
    """One line if the run's ``config.json`` does not say what its checkpoint holds (``saved``,
    the checkpoint's config: a dataclass or its dict), edited by hand or unreadable; None when
    they agree. The checkpoint is the one source of a run's settings: ``config.json`` is a
    read-only record of it, rewritten at the next checkpoint."""
    record = Path(run_dir) / "config.json"
    if not record.is_file():
        return None
    defaults: dict[str, Any] = {}
    if dataclasses.is_dataclass(saved) and not isinstance(saved, type):
        fields = dataclasses.fields(saved)
        defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        saved = dataclasses.asdict(saved)
    saved = json.loads(json.dumps(saved))  # tuples as lists, as config.json holds them
    rule = "the checkpoint's settings are used (config.json is a record of them; start a new run to change them)"
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        return f"{record} is not readable JSON; {rule}"
    if not isinstance(recorded, dict):
        return f"{record} is not a JSON object; {rule}"

    def added_later(key: str) -> bool:
        """A setting added after the run was recorded is missing from its config.json; the
        checkpoint holds its default then, which is no disagreement."""
        return key not in recorded and key in defaults and saved.get(key) == json.loads(json.dumps(defaults[key]))

    differ = [
        key
        for key in sorted(set(recorded) | set(saved))
        if recorded.get(key, ...) != saved.get(key, ...) and not added_later(key)
    ]
    if not differ:
        return None
    key, more = differ[0], f" and {len(differ) - 1} more" if len(differ) > 1 else ""
    said = "missing" if key not in recorded else repr(recorded[key])
    return f"{record} says {key} {said}, the checkpoint {saved.get(key, 'nothing')!r}{more}; {rule}"


def run_agent(run_dir: str | Path) -> str:
    """The name of the agent that trained the run in ``run_dir``: its checkpoint's own record
    (``agent.txt`` is a copy of it, read only for checkpoints of metagym 0.1 that lack one); a
    ValueError naming the folder when there is no run."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").is_file():
        raise ArgumentError("run_dir", f"no checkpoint.pt in {run_dir}")
    return saved_agent(load(run_dir / "checkpoint.pt"), run_dir)


def agent_note(run_dir: str | Path, name: str) -> str | None:
    """One line if the run's ``agent.txt`` does not name the agent its checkpoint holds (``name``),
    edited by hand; None when they agree or there is none."""
    marker = Path(run_dir) / "agent.txt"
    try:
        recorded = marker.read_text().strip() if marker.is_file() else name
    except (OSError, UnicodeDecodeError):
        recorded = "something unreadable"
    if recorded == name:
        return None
    return (
        f"{marker} says {recorded!r}, the checkpoint {name!r}; the checkpoint's agent is used "
        "(agent.txt is a record of it; start a new run to change it)"
    )


def load_agent(run_dir: str | Path, device: str = "cpu") -> Any:
    """The trained agent saved in ``run_dir``, on ``device`` (read without running any code of the file)."""
    path = Path(run_dir) / "checkpoint.pt"
    state = load(path)
    algorithm = algorithm_class(agent_spec(saved_agent(state, run_dir), "checkpoint"))
    config = config_from(algorithm.Config, state, path)
    return algorithm.agent_from(config, state, path, resolve_device(device))
