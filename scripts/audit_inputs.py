"""Bad input, tried as a new user would: every case through the ``metagym`` command or the API,
each outcome sorted as a clear error, a traceback, silently wrong, or data lost.

- clear error: exit status 2 (or a ValueError/TypeError from the API) whose one line names the
  argument or file;
- traceback: a Python traceback reached the user;
- silently wrong: the command succeeded (or the API took the value) where it should refuse;
- data lost: a run folder's files changed although the command failed.

Cases that need a full disk mount a small tmpfs (root only; skipped otherwise).

    python scripts/audit_inputs.py            # the table, then any case that is not a clear error
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


def cli(args: list[str], run: Path | None) -> tuple[str, str]:
    """(outcome, the command's last line) for a command that should fail."""
    before = files(run) if run is not None and run.exists() else None
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tempfile.gettempdir())
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
    # -- a full disk ---------------------------------------------------------------------------
    cases += _full_disk(root)

    counts: dict[str, int] = {}
    notes = []
    try:
        for name, case in cases:
            outcome, line = case()
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome != "clear error":
                notes.append(f"- {outcome}: {name}: {line}")
    finally:
        subprocess.run(["umount", "-l", str(root / "disk")], capture_output=True)
    print("| tried | clear error | traceback | silently wrong | data lost | skipped |\n|---:|---:|---:|---:|---:|---:|")
    kinds = ("clear error", "traceback", "silently wrong", "data lost", "skipped")
    print(f"| {len(cases)} | " + " | ".join(str(counts.get(k, 0)) for k in kinds) + " |")
    print("\n".join(notes))


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
    cases = [
        ("full disk: train --resume", lambda: filled(8192, resume, run)),
        ("full disk: a first train", lambda: _first(filled, new, disk / "new")),
        ("full disk: evaluate --out", lambda: filled(4096, evaluate, None)),
        ("full disk: render --out", lambda: filled(4096, render, None)),
    ]
    return cases


def _first(filled: Callable[..., tuple[str, str]], args: list[str], folder: Path) -> tuple[str, str]:
    outcome = filled(2048, args, None)
    if folder.exists() and any(p.is_file() for p in folder.rglob("*")):
        return "data lost", f"a half run was left: {sorted(p.name for p in folder.rglob('*'))}"
    return outcome


if __name__ == "__main__":
    main()
