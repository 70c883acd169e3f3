"""``metagym render``: one adaptation trial to a GIF, an MP4 or a window (frames: :mod:`metagym.replay`)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from metagym.cli.common import DEVICE_HELP, CommandError, check_folder_of, gradient, load_agent
from metagym.registration import env_kwargs_of
from metagym.replay import adaptation_frames, trial_frames


def cmd_render(args: argparse.Namespace) -> None:
    from metagym.evaluation import family_for, held_out_tasks
    from metagym.render import Window

    agent = load_agent(args.run_dir, args.device)
    if args.results is not None:  # the results say which trial: a seed or split beside them would be ignored
        for flag, value in (("--seed", args.seed), ("--split", args.split)):
            if value is not None:
                raise CommandError(f"{flag}: not with --results (the results say how their trials were drawn)")
    args.seed = 0 if args.seed is None else args.seed
    if args.seed < 0:
        raise CommandError(f"--seed: expected an integer >= 0, got {args.seed}")
    if args.task_index < 0:
        raise CommandError(f"--task-index: expected an integer >= 0, got {args.task_index}")
    if not args.human and Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        raise CommandError(f"--out: expected a .gif or .mp4 file, got {args.out!r}")
    if not args.human:
        check_folder_of(Path(args.out), "--out")
    if args.every is not None and args.every < 1:
        raise CommandError(f"--every: expected an integer >= 1, got {args.every}")
    if args.results is not None:
        frames = replayed(agent, Path(args.results), args.task_index, args.run_dir)
    else:
        config = agent.config
        task = held_out_tasks(config.env_id, args.split, args.task_index + 1, args.seed, env_kwargs_of(config))[
            args.task_index
        ]
        frames = adaptation_frames(agent, task, args.seed) if gradient(agent) else trial_frames(agent, task, args.seed)
    # Long episodes (Meta-World's 500 steps, CartPole's) show at most about 100 frames each.
    every = args.every or -(-family_for(agent.config.env_id, env_kwargs_of(agent.config)).horizon // 100)
    frames = frames[::every]
    if args.human:
        window = Window("metagym render", 8)
        for frame in frames:
            window.show(frame)
        window.close()
        return
    out = Path(args.out)
    save_video(video_writer(), out, frames, "--out")
    print(f"wrote {out} ({len(frames)} frames{f', every {every} steps' if every > 1 else ''})")


def save_video(imageio: Any, out: Path, frames: list[Any], flag: str) -> None:
    """Write ``frames`` as a GIF or MP4 (by suffix) so that ``out`` is replaced whole or not at
    all: a GIF is encoded in memory, then written atomically; an MP4 (ffmpeg writes a file) goes
    to a temp file beside ``out`` that is renamed over it. A full disk ends in one line naming ``flag``."""
    import io

    from metagym.atomic import replaced_atomically

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp{out.suffix}")
    try:
        if out.suffix.lower() == ".gif":
            buffer = io.BytesIO()
            imageio.mimsave(buffer, frames, format="GIF", duration=125, loop=0)
            with replaced_atomically(out, binary=True) as handle:
                handle.write(buffer.getbuffer())
        else:
            # Even sides (H.264's 4:2:0) and no rescaling to 16-pixel blocks (imageio's default warns and blurs).
            # ffmpeg's log stays quiet: its failure is reported here, in one line.
            imageio.mimsave(temp, [pad_even(f) for f in frames], fps=8, macro_block_size=2, ffmpeg_log_level="quiet")
            # ffmpeg can stop on a full disk without an error reaching imageio: a video that
            # does not read back whole, every frame, never replaces ``out``.
            written = video_frames(imageio, temp)
            if written != len(frames):
                raise OSError(errno.ENOSPC, f"the video written reads back {written} of {len(frames)} frames")
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, out)
    except OSError as error:  # ffmpeg's own errors carry its whole log: its first line says enough
        reason = str(error.strerror or error).strip().splitlines()[0]
        if out.suffix.lower() != ".gif" and shutil.disk_usage(out.parent).free < 1 << 20:
            reason = f"the video encoder stopped: {os.strerror(errno.ENOSPC)}"  # ffmpeg's pipe broke on a full disk
        raise CommandError(f"{flag}: cannot write {out} ({reason}); nothing was replaced") from None
    finally:
        temp.unlink(missing_ok=True)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame to even sides (video encoders need them)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def video_frames(imageio: Any, path: Path) -> int:
    """How many frames the video at ``path`` holds, as read back; 0 where it cannot be read."""
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            return sum(1 for _ in reader)
        finally:
            reader.close()
    except Exception:
        return 0


def replayed(agent: Any, path: Path, index: int, run_dir: str) -> list[Any]:
    """Frames of the trial that the evaluation in ``path`` scored as task ``index``, of the run in
    ``run_dir`` (results of another run folder are refused)."""
    from metagym.evaluation import scored_trial

    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"--results: cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
    if not isinstance(results, dict) or not {"tasks", "seed", "tasks_per_block", "num_tasks"} <= set(results):
        raise CommandError(f"--results: {path} is not the JSON of a metagym evaluation")
    scored = results.get("run_dir")
    if scored is not None and Path(str(scored)).resolve() != Path(run_dir).resolve():
        raise CommandError(f"--results: they score the run in {scored}, not {run_dir} (evaluate this run to render it)")
    task, seed, actions, recorded = scored_trial(agent, results, index)  # an ArgumentError names --task-index
    score = f": scored {sum(recorded):+.2f}" if recorded else ""
    return trial_frames(agent, task, seed, actions, title=f"task {index} of {path.name}{score}")


def video_writer() -> Any:
    """imageio's v2 API, or a CommandError saying which extra provides it."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise CommandError("writing GIF/MP4 needs the video extra: pip install 'metagym-rl[video]'") from None
    return imageio


def add_parser(sub: Any) -> None:
    """``render``."""
    render = sub.add_parser("render", help="render one adaptation trial to a GIF/MP4 or a window")
    render.add_argument("--run-dir", required=True, help="a trained run")
    render.add_argument("--task-index", type=int, default=0, help="which held-out task (default: %(default)s)")
    render.add_argument("--split", default=None, help="split of the task (default: as for evaluate)")
    render.add_argument("--seed", type=int, default=None, help="seed, as for evaluate (default: 0)")
    render.add_argument("--out", default="trial.gif", help="a .gif or .mp4 path (default: %(default)s)")
    render.add_argument("--human", action="store_true", help="show it live in a pygame window instead")
    render.add_argument(
        "--every",
        type=int,
        default=None,
        help="keep every k-th frame (default: 1 up to 100-step episodes, else horizon/100 rounded up)",
    )
    render.add_argument(
        "--results",
        default=None,
        help="an evaluation's JSON: replay the very trial it scored as --task-index (same task, seed, action noise)",
    )
    render.add_argument("--device", default="cpu", help=DEVICE_HELP)
    render.set_defaults(run=cmd_render)
