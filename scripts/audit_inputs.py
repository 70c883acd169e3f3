"""Bad input, tried as a new user would: every case through the ``metagym`` command or the API,
each outcome sorted as a clear error, a traceback, silently wrong, or data lost.

- clear error: exit status 2 (or a ValueError/TypeError from the API) whose one line names the
  argument or file;
- traceback: a Python traceback reached the user;
- silently wrong: the command succeeded (or the API took the value) where it should refuse;
- data lost: a run folder's files changed although the command failed.

Cases that need a full disk mount a small tmpfs (root only; skipped otherwise).

    python scripts/audit_inputs.py            # the table, then any case that is not a clear error
    python scripts/audit_inputs.py render     # only the cases whose name holds "render"
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "metagym.cli"]
TINY = ["--env", "MetaBandit-v0", "--num-envs", "8", "--rollout-steps", "10", "--num-minibatches", "2"]
TINY += ["--hidden-size", "8", "--quiet"]
GRID_ZERO = '{"type":"GridTask","level":"gridnavi","goal":[1,2],"seed":"zero"}'


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def cli(args: list[str], run: Path | None, env: dict[str, str] | None = None) -> tuple[str, str]:
    """(outcome, the command's last line) for a command that should fail."""
    before = files(run) if run is not None and run.exists() else None
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    err = done.stderr.strip()
    if before is not None:
        after = {k: v for k, v in files(run).items() if not k.startswith("tensorboard")}  # type: ignore[arg-type]
        kept = {k: v for k, v in before.items() if not k.startswith("tensorboard")}
        if after != kept and done.returncode != 0:
            return "data lost", err.splitlines()[-1] if err else ""
    if "Traceback" in err:
        return "traceback", err.splitlines()[-1]
    if done.returncode == 0:
        return "silently wrong", (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode == 2 and (err.count("\n") == 0 or (err.count("\n") == 1 and err.startswith("usage:"))):
        return "clear error", err.splitlines()[-1]  # one line (argparse's usage line above its own)
    return "traceback", err.splitlines()[-1] if err else f"exit {done.returncode}"


def noted(args: list[str], words: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """(outcome, line) for a command that should succeed and say ``words`` (a note, not a refusal)."""
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    said = done.stdout + done.stderr
    if "Traceback" in done.stderr:
        return "traceback", done.stderr.strip().splitlines()[-1]
    if done.returncode == 0 and words in said:
        return "clear error", next(line for line in said.splitlines() if words in line)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return "silently wrong", f"exit {done.returncode}, no {words!r}: {last}"


def api(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        call()
    except (ValueError, TypeError) as error:
        return "clear error", f"{type(error).__name__}: {error}"
    except Exception as error:  # anything else reached the user as a traceback
        return "traceback", f"{type(error).__name__}: {error}"
    return "silently wrong", "accepted"


def main() -> None:
    import metagym  # noqa: F401
    from metagym.envs.bandit import BanditTask
    from metagym.envs.metagrid import GridTask
    from metagym.envs.point_nav import NavTask

    root = Path(tempfile.mkdtemp(prefix="metagym-audit-"))
    run = root / "run"
    subprocess.run([*CLI, "train", *TINY, "--steps", "160", "--run-dir", str(run)], check=True, capture_output=True)
    afile = root / "afile"
    afile.write_text("a user's file\n")
    config = json.loads((run / "config.json").read_text())
    cases: list[tuple[str, Callable[[], tuple[str, str]]]] = []

    def command(name: str, args: list[str], watch: Path | None = run) -> None:
        cases.append((name, lambda: cli(args, watch)))

    # -- train --------------------------------------------------------------------------------
    for flag, value in [("--steps", "0"), ("--steps", "-5"), ("--steps", "ten"), ("--seed", "-1"),
                        ("--seed", "1.5"), ("--num-envs", "0"), ("--num-envs", "5"), ("--learning-rate", "nan"),
                        ("--learning-rate", "-1"), ("--gamma", "1.5"), ("--hidden-size", "0"),
                        ("--anneal-lr", "maybe"), ("--episodes-per-trial", "0"), ("--torch-threads", "0"),
                        ("--checkpoint-seconds", "-1"), ("--checkpoint-seconds", "inf"), ("--device", "tpu"),
                        ("--inner-lr", "0.1"), ("--selected-on", "test2")]:  # fmt: skip
        command(f"train {flag} {value}", ["train", *TINY, "--steps", "160", flag, value, "--run-dir", str(root / "x")])
    for env in ("Nope-v0", "MetaBandit-Trial-v0", "CartPole-v1", "nomodule:Id-v0"):
        command(f"train --env {env}", ["train", "--env", env, "--steps", "10", "--run-dir", str(root / "x")])
    command("train --agent dqn", ["train", "--agent", "dqn", "--run-dir", str(root / "x")])
    command("train --agent ucb1 (a baseline)", ["train", "--agent", "ucb1", "--run-dir", str(root / "x")])
    command("train --preset nope", ["train", "--preset", "nope", "--run-dir", str(root / "x")])
    command("train --preset rl2-bandit --agent maml", ["train", "--preset", "rl2-bandit", "--agent", "maml",
                                                       "--run-dir", str(root / "x")])  # fmt: skip
    command("train into a run without --resume", ["train", *TINY, "--steps", "160", "--run-dir", str(run)])
    command("train --run-dir a file", ["train", *TINY, "--steps", "160", "--run-dir", str(afile)])
    command("train --run-dir under a file", ["train", *TINY, "--steps", "160", "--run-dir", str(afile / "sub")])
    command("train --resume --env", ["train", "--resume", "--env", "MetaBandit-v0", "--run-dir", str(run)])
    command("train --resume --steps fewer", ["train", "--resume", "--steps", "80", "--run-dir", str(run)])
    command("train --resume --overwrite", ["train", "--resume", "--overwrite", "--run-dir", str(run)])
    command("train --resume missing run", ["train", "--resume", "--run-dir", str(root / "missing")])
    command("train --import nomodule", ["--import", "nomodule", "train", "--run-dir", str(root / "x")])
    # -- evaluate / render / sweep / demo -----------------------------------------------------
    out = str(root / "r.json")
    for flag, value in [("--tasks", "0"), ("--tasks", "-3"), ("--seed", "-1"), ("--split", "ood"),
                        ("--split", "nope"), ("--backend", "slurm"), ("--tasks-per-block", "0"),
                        ("--inner-lr", "0.1"), ("--device", "tpu"), ("--out", str(root / "r.txt")),
                        ("--out", str(afile / "r.json")), ("--out", str(afile))]:  # fmt: skip
        args = ["evaluate", "--run-dir", str(run), "--tasks", "4", "--out", out, "--quiet", flag, value]
        command(f"evaluate {flag} {Path(value).name}", args)
    command("evaluate --run-dir missing", ["evaluate", "--run-dir", str(root / "missing")])
    command("evaluate --compare missing", ["evaluate", "--run-dir", str(run), "--compare", str(root / "missing")])
    render_cases = [("--task-index", "-1"), ("--seed", "-1"), ("--out", str(root / "t.avi"))]
    render_cases += [("--out", str(afile / "t.gif")), ("--results", str(afile)), ("--results", str(root / "no.json"))]
    for flag, value in render_cases:
        command(f"render {flag} {Path(value).name}", ["render", "--run-dir", str(run), flag, value])
    for flag, value in [("--seeds", "-1"), ("--agents", "rl3"), ("--backend", "dask"), ("--tasks", "0"),
                        ("--steps", "rl2=0"), ("--preset", "nope")]:  # fmt: skip
        base = {"--seeds": "0", "--agents": "rl2", "--backend": "local", "--tasks": "4", "--steps": "160"}
        base[flag] = value
        args = ["sweep", "--env", "MetaBandit-v0", "--out", str(root / "sweep")]
        for k, v in base.items():
            args += [k, v]
        command(f"sweep {flag} {value}", args)
    command("demo --steps 0", ["demo", "--steps", "0", "--out", str(root / "demo")])
    command("demo --seed -1", ["demo", "--seed", "-1", "--out", str(root / "demo")])
    # -- a run folder's files edited by hand ---------------------------------------------------
    for key, value in [("num_envs", "sixteen"), ("hidden_size", 12.5), ("env_id", 5), ("hidden_size", 64)]:
        edited = root / f"edited-{key}-{value}"
        subprocess.run(["cp", "-r", str(run), str(edited)], check=True)
        (edited / "config.json").chmod(0o644)
        (edited / "config.json").write_text(json.dumps({**config, key: value}))
        cases.append((f"config.json {key}={value!r}, evaluate", lambda e=edited: _edited(e, "evaluate")))
        cases.append((f"config.json {key}={value!r}, resume", lambda e=edited: _edited(e, "train")))
    # -- tasks -------------------------------------------------------------------------------
    bad_tasks: list[tuple[str, Callable[[], Any]]] = [
        ("BanditTask NaN prob (JSON)", lambda: BanditTask.from_json('{"type":"BanditTask","probs":[NaN,0.5]}')),
        ("BanditTask inf prob", lambda: BanditTask(probs=(math.inf, 0.5))),
        ("BanditTask prob as text", lambda: BanditTask(probs=("0.5", 0.5))),  # type: ignore[arg-type]
        ("GridTask seed 'zero'", lambda: GridTask.from_json(GRID_ZERO)),
        ("GridTask seed True", lambda: GridTask("gridnavi", (1, 2), seed=True)),
        ("GridTask goal of 3", lambda: GridTask("gridnavi", (1, 2, 3))),  # type: ignore[arg-type]
        ("NavTask goal NaN", lambda: NavTask(goal=(math.nan, 0.0))),
        ("NavTask goal text", lambda: NavTask.from_json('{"type":"NavTask","goal":["a",0]}')),
    ]  # fmt: skip
    for name, make in bad_tasks:
        cases.append((name, lambda make=make: api(make)))
    # -- round 2: the newer surfaces ------------------------------------------------------------
    first_round = len(cases)
    cases += _round_two(root, run, command)
    second_round = {name for name, _ in cases[first_round:]}
    # -- a full disk ---------------------------------------------------------------------------
    cases += _full_disk(root)

    counts: dict[str, int] = {}
    counts_two: dict[str, int] = {}
    notes = []
    only = sys.argv[1] if len(sys.argv) > 1 else ""  # a part of the cases' names: run those only
    cases = [(name, case) for name, case in cases if only in name]
    try:
        for name, case in cases:
            outcome, line = case()
            counts[outcome] = counts.get(outcome, 0) + 1
            if name in second_round:
                counts_two[outcome] = counts_two.get(outcome, 0) + 1
            if outcome != "clear error":
                notes.append(f"- {outcome}: {name}: {line}")
    finally:
        subprocess.run(["umount", "-l", str(root / "disk")], capture_output=True)
    print("| cases | tried | clear | traceback | silently wrong | data lost | skipped |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    kinds = ("clear error", "traceback", "silently wrong", "data lost", "skipped")
    for label, tally in (("all", counts), ("the newer surfaces (round 2)", counts_two)):
        print(f"| {label} | {sum(tally.values())} | " + " | ".join(str(tally.get(k, 0)) for k in kinds) + " |")
    print("(clear: refused in one line naming the input, or, where the input is fine, done with a note)")
    print("\n".join(notes))


USER_MODULES = {
    "raises_at_import": "raise RuntimeError('broken on purpose')\n",
    "bad_syntax": "def f(:\n",
    "exits": "import sys\nsys.exit(3)\n",
    "broken_family": (
        "import gymnasium as gym\n"
        "def make(**kwargs):\n    raise RuntimeError('cannot build')\n"
        "gym.register('Broken-v0', entry_point=make)\n"
    ),
    "missing_agent": (
        "from metagym.agents.registry import register_agent\n"
        "register_agent('ghost', 'no_such_module:Ghost', 'memory')\n"
    ),
    "seam_agents": """import dataclasses
from typing import Any, ClassVar

import numpy as np

from metagym.agents.registry import register_agent
from metagym.agents.rl2 import RL2, RL2Config


@dataclasses.dataclass(frozen=True)
class KeepsConfig(RL2Config):
    agent: ClassVar[str] = "keeps"


class Keeps(RL2):  # a state that weights_only cannot read back
    Config = KeepsConfig

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"rng": np.random.default_rng(0)}


@dataclasses.dataclass(frozen=True)
class ListsConfig(RL2Config):
    agent: ClassVar[str] = "lists"


class Lists(RL2):  # learn returns a list
    Config = ListsConfig

    def learn(self, update: int) -> Any:
        return list(super().learn(update).values())


register_agent("keeps", "seam_agents:Keeps", "memory")
register_agent("lists", "seam_agents:Lists", "memory")
register_agent("misnamed", "seam_agents:Keeps", "memory")  # its config says "keeps"
""",
}


def _round_two(root: Path, run: Path, command: Callable[..., None]) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    """The newer surfaces: render --results, run records, user modules and agents, sizes,
    checkpoints, MuJoCo's OpenGL, Ctrl-C."""
    import torch

    cases: list[tuple[str, Callable[[], tuple[str, str]]]] = []
    modules = root / "modules"
    modules.mkdir()
    for name, text in USER_MODULES.items():
        (modules / f"{name}.py").write_text(text)
    env = os.environ | {"PYTHONPATH": str(modules)}
    x = str(root / "y")
    tiny = ["--steps", "160", "--run-dir", x, *TINY]
    # render --results: the run's own results, then edited or another run's
    results = root / "results.json"
    scored = ["evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(results), "--quiet"]
    subprocess.run([*CLI, *scored], check=True)
    other = root / "other"
    subprocess.run([*CLI, "train", *TINY, "--steps", "160", "--seed", "1", "--run-dir", str(other)], check=True)
    written = json.loads(results.read_text())
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "seed": lambda r: r.update(seed=r["seed"] + 1),
        "returns": lambda r: r["task_returns"][0].__setitem__(0, r["task_returns"][0][0] + 1),
        "task count": lambda r: r.update(tasks=r["tasks"][:1]),
        "tasks_per_block": lambda r: r.update(tasks_per_block=0),
    }
    for name, edit in edits.items():
        edited = json.loads(json.dumps(written))
        try:
            edit(edited)
        except (KeyError, IndexError, TypeError):
            cases.append((f"render --results edited {name}", lambda: ("skipped", "field not in this results file")))
            continue
        path = root / f"results-{name.replace(' ', '-')}.json"
        path.write_text(json.dumps(edited))
        command(f"render --results edited {name}", ["render", "--run-dir", str(run), "--results", str(path)])
    command("render --results of another run", ["render", "--run-dir", str(other), "--results", str(results)])
    for flag, value in (("--seed", "3"), ("--split", "test"), ("--task-index", "99")):
        args = ["render", "--run-dir", str(run), "--results", str(results), flag, value]
        command(f"render --results with {flag} {value}", args)
    # records edited by hand, silent acceptance
    relabelled = root / "relabelled"
    subprocess.run(["cp", "-r", str(run), str(relabelled)], check=True)
    (relabelled / "agent.txt").write_text("maml\n")
    args = ["evaluate", "--run-dir", str(relabelled), "--tasks", "2", "--out", str(root / "a.json"), "--quiet"]
    cases.append(("agent.txt edited to maml, evaluate", lambda a=args: noted(a, "the checkpoint's agent is used")))
    command("train --agent ''", ["train", "--agent", "", *tiny])
    command("train --agent nope --help", ["train", "--agent", "nope", "--help"])
    maml = ["train", "--agent", "maml", "--env", "MetaBandit-v0", "--steps", "1000", "--run-dir", str(root / "m")]
    cases.append(("maml --steps not a whole number of updates", lambda: noted([*maml, "--quiet"], "note:")))
    other_family = ["train", "--preset", "rl2-bandit", "--env", "MetaTabularMDP-v0", "--steps", "100"]
    other_family += ["--num-envs", "8", "--rollout-steps", "10", "--run-dir", str(root / "p"), "--quiet"]
    cases.append(("train --preset of another family", lambda: noted(other_family, "rl2-bandit")))
    sweep = ["sweep", "--env", "MetaTabularMDP-v0", "--agents", "rl2", "--preset", "rl2-bandit", "--seeds", "0"]
    sweep += ["--steps", "1600", "--tasks", "2", "--out", str(root / "sw")]
    cases.append(("sweep --preset of another family", lambda: noted(sweep, "rl2-bandit")))
    command("presets --verbose --markdown", ["presets", "--verbose", "--markdown"], None)
    cases.append(("gym.make MetaWorld-ML10-v0 env_name=", lambda: _metaworld_env_name()))
    # sizes that cannot be allocated
    command("train --episodes-per-trial 1e9", ["train", "--env", "MetaBandit-v0", "--episodes-per-trial",
                                               "1000000000", *tiny[:4]])  # fmt: skip
    command("train transformer --context 1e8", ["train", "--agent", "transformer", "--env", "MetaBandit-v0",
                                                "--context", "100000000", *tiny[:4]])  # fmt: skip
    # user modules and agents
    for name in ("raises_at_import", "bad_syntax", "exits"):
        cases.append((f"--import {name}", lambda n=name: cli(["--import", n, "list"], None, env)))
    cases.append(("list with a broken user family", lambda: noted(["--import", "broken_family", "list"],
                                                                  "Broken-v0  (unavailable", env)))  # fmt: skip
    for agent in ("ghost", "keeps", "lists", "misnamed"):
        module = "missing_agent" if agent == "ghost" else "seam_agents"
        args = ["--import", module, "train", "--agent", agent, "--env", "MetaBandit-v0", *tiny[:4], *TINY[2:]]
        cases.append((f"user agent {agent}", lambda a=args: _stopped_early(a, env, root / "y")))
    # checkpoints damaged
    for name, damage in (("NaN weights", "nan"), ("global_step -5", "step")):
        damaged = root / f"damaged-{damage}"
        subprocess.run(["cp", "-r", str(run), str(damaged)], check=True)
        state = torch.load(damaged / "checkpoint.pt", weights_only=True)
        if damage == "nan":
            nets = [v for v in state.values() if isinstance(v, dict) and any(torch.is_tensor(t) for t in v.values())]
            weights = nets[0]
            tensor = next(t for t in weights.values() if torch.is_tensor(t) and t.is_floating_point())
            tensor.fill_(float("nan"))
        else:
            state["global_step"] = -5
        torch.save(state, damaged / "checkpoint.pt")
        args = ["evaluate", "--run-dir", str(damaged), "--tasks", "2", "--out", str(root / "d.json"), "--quiet"]
        command(f"checkpoint with {name}, evaluate", args, damaged)
    # MuJoCo's OpenGL, Ctrl-C
    cases.append(("Meta-World render, no display, no MUJOCO_GL", lambda: _headless_render(root)))
    cases.append(
        (
            "Ctrl-C twice in train",
            lambda: _ctrl_c(
                ["train", "--env", "MetaBandit-v0", "--steps", "128000000", "--run-dir", str(root / "cc"), "--quiet"]
            ),
        )
    )
    cases.append(
        (
            "Ctrl-C twice in evaluate",
            lambda: _ctrl_c(["evaluate", "--run-dir", str(run), "--tasks", "1000000", "--out", str(root / "cc.json")]),
        )
    )
    return cases


def _stopped_early(args: list[str], env: dict[str, str], run: Path) -> tuple[str, str]:
    """A user agent that breaks the seam: refused in one line, before a checkpoint is written."""
    import shutil

    shutil.rmtree(run, ignore_errors=True)
    outcome = cli(args, None, env)
    if (run / "checkpoint.pt").exists():
        return "silently wrong", "trained and saved a checkpoint first"
    return outcome


def _metaworld_env_name() -> tuple[str, str]:
    import gymnasium as gym

    try:
        import metaworld  # noqa: F401
    except ImportError:
        return "skipped", "metaworld not installed"
    return api(lambda: gym.make("MetaWorld-ML10-v0", env_name="reach-v3"))


def _headless_render(root: Path) -> tuple[str, str]:
    try:
        import metaworld  # noqa: F401
    except ImportError:
        return "skipped", "metaworld not installed"
    run = root / "mw"
    train = ["train", "--env", "MetaWorld-ML1-Reach-v0", "--steps", "1000", "--num-envs", "2", "--rollout-steps", "500"]
    subprocess.run([*CLI, *train, "--num-minibatches", "1", "--run-dir", str(run), "--quiet"], check=True)
    dropped = ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return noted(["render", "--run-dir", str(run), "--out", str(root / "mw.gif")], "wrote", env)


def _ctrl_c(args: list[str]) -> tuple[str, str]:
    import signal
    import time

    cli = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    cli.send_signal(signal.SIGINT)
    time.sleep(0.02)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=120)
    if "Traceback" in err:
        return "traceback", err.strip().splitlines()[-1]
    if cli.returncode == 130 and len(err.strip().splitlines()) <= 2:
        return "clear error", err.strip().splitlines()[-1]
    return "silently wrong", f"exit {cli.returncode}"


def _edited(run: Path, command: str) -> tuple[str, str]:
    """A hand-edited config.json must be reported (the checkpoint's settings are used) or refused."""
    if command == "evaluate":
        args = ["evaluate", "--run-dir", str(run), "--tasks", "2", "--out", str(run / "r.json"), "--quiet"]
    else:
        args = ["train", "--resume", "--steps", "240", "--run-dir", str(run), "--quiet"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if "Traceback" in done.stderr:
        return "traceback", done.stderr.strip().splitlines()[-1]
    if done.returncode == 0 and "config.json says" in done.stderr:
        return "clear error", done.stderr.strip().splitlines()[0]  # reported in one line; the checkpoint's used
    if done.returncode == 2 and done.stderr.count("\n") == 1:
        return "clear error", done.stderr.strip()
    return "silently wrong", "the edit was neither reported nor refused"


def _full_disk(root: Path) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    disk = root / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        return [("full disk (cannot mount a tmpfs here)", lambda: ("skipped", "not root"))]
    run = disk / "run"
    subprocess.run([*CLI, "train", *TINY, "--steps", "160", "--run-dir", str(run)], check=True, capture_output=True)

    def filled(leave: int, args: list[str], watch: Path | None) -> tuple[str, str]:
        stats = os.statvfs(disk)
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - leave))
        try:
            outcome = cli(args, watch)
            if watch is not None and (watch / ".lock").exists():
                return "data lost", "a .lock was left"
            return outcome
        finally:
            filler.unlink()

    resume = ["train", "--resume", "--steps", "8000", "--checkpoint-seconds", "0", "--run-dir", str(run), "--quiet"]
    new = ["train", *TINY, "--steps", "160", "--run-dir", str(disk / "new")]
    evaluate = ["evaluate", "--run-dir", str(run), "--tasks", "4", "--out", str(disk / "r.json"), "--quiet"]
    render = ["render", "--run-dir", str(run), "--out", str(disk / "t.gif")]
    mp4 = disk / "t.mp4"

    def over_a_good_mp4() -> tuple[str, str]:
        subprocess.run([*CLI, "render", "--run-dir", str(run), "--out", str(mp4)], check=True, capture_output=True)
        good = mp4.read_bytes()
        outcome = filled(4096, ["render", "--run-dir", str(run), "--out", str(mp4)], None)
        if mp4.read_bytes() != good:
            return "data lost", f"{mp4.name} was replaced ({len(good)} -> {mp4.stat().st_size} bytes)"
        return outcome

    def evaluate_png() -> tuple[str, str]:
        outcome = filled(4096, evaluate, None)
        left = [p.name for p in disk.glob("r*.png") if p.stat().st_size == 0]
        return ("data lost", f"left empty: {left}") if left else outcome

    cases = [
        ("full disk: train --resume", lambda: filled(8192, resume, run)),
        ("full disk: a first train", lambda: _first(filled, new, disk / "new")),
        ("full disk: evaluate --out", evaluate_png),
        ("full disk: render --out", lambda: filled(4096, render, None)),
        ("full disk: render --out over a good MP4", over_a_good_mp4),
    ]
    return cases


def _first(filled: Callable[..., tuple[str, str]], args: list[str], folder: Path) -> tuple[str, str]:
    outcome = filled(2048, args, None)
    if folder.exists() and any(p.is_file() for p in folder.rglob("*")):
        return "data lost", f"a half run was left: {sorted(p.name for p in folder.rglob('*'))}"
    return outcome


if __name__ == "__main__":
    main()
