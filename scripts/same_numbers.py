"""Does a change leave every number alone? Short runs of every shipped preset, recorded, then compared.

A refactor should change no number: record ``progress.csv`` (every column but steps/s) and the
final checkpoint's tensors of a few updates of each preset before the change, and compare after:

    python scripts/same_numbers.py record ~/same/before            # at the old commit
    python scripts/same_numbers.py compare ~/same/before           # at the new one: exit 1 on a difference

Each preset trains ``--updates`` updates (its own batch, its own seed) in a fresh folder; Meta-World
presets are left out where the extra is not installed (said so). Nothing here is timed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TIMED = {"steps_per_sec"}  # wall-clock columns: never equal twice


def steps_of(preset: object, updates: int) -> int:
    """Env steps of ``updates`` updates of ``preset`` (its config's batch, or MAML's meta-batch)."""
    try:
        from metagym.agents.runs import run_config
    except ImportError:  # before 94a94a3 it was metagym.runs: a record of an older commit still runs
        from metagym.runs import run_config  # type: ignore[no-redef]

    config = run_config(preset.agent, preset.env, preset.steps, 0, preset)  # type: ignore[attr-defined]
    if hasattr(config, "rollout_steps"):
        return updates * config.num_envs * config.rollout_steps
    return updates * config.meta_batch_size * config.fast_batch_size * 100 * 2  # at most: episodes end early


def short_run(name: str, updates: int, folder: Path) -> dict[str, object]:
    """Train ``updates`` updates of preset ``name`` in ``folder``; its log and tensors, as JSON-able data."""
    import torch

    from metagym.presets import presets

    preset = presets()[name]
    steps = steps_of(preset, updates)
    command = [sys.executable, "-m", "metagym.cli", "train", "--preset", name, "--steps", str(steps)]
    subprocess.run([*command, "--run-dir", str(folder), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    with (folder / "progress.csv").open() as handle:
        rows = [{k: v for k, v in row.items() if k not in TIMED} for row in csv.DictReader(handle)]
    state = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)
    tensors = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            tensors[prefix] = value.double().sum().item() if value.is_floating_point() else int(value.sum())
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)

    walk("", state)
    return {"steps": steps, "progress": rows, "tensor_sums": tensors}


def presets_here() -> list[str]:
    from metagym.presets import presets

    names = []
    for name, preset in presets().items():
        if preset.env.startswith("MetaWorld") and importlib.util.find_spec("metaworld") is None:
            print(f"{name}: skipped (the metaworld extra is not installed)")
            continue
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["record", "compare"])
    parser.add_argument("folder", help="where the record is (one JSON per preset)")
    parser.add_argument("--updates", type=int, default=2, help="updates per preset (default: %(default)s)")
    parser.add_argument("--presets", nargs="*", help="only these (default: every shipped preset)")
    args = parser.parse_args()
    folder = Path(args.folder).expanduser()
    names = args.presets or presets_here()
    if args.command == "compare":
        missing = [name for name in names if not (folder / f"{name}.json").is_file()]
        for name in missing:
            print(f"{name}: skipped (no record of it in {folder})")
        names = [name for name in names if name not in missing]
    if args.command == "record":
        folder.mkdir(parents=True, exist_ok=True)
    differences = 0
    for name in names:
        with tempfile.TemporaryDirectory() as scratch:
            got = short_run(name, args.updates, Path(scratch) / "run")
        path = folder / f"{name}.json"
        if args.command == "record":
            path.write_text(json.dumps(got, indent=1) + "\n")
            print(f"{name}: recorded {len(got['progress'])} updates")  # type: ignore[arg-type]
            continue
        want = json.loads(path.read_text())
        same = want == json.loads(json.dumps(got))
        differences += not same
        if same:
            print(f"{name}: identical ({len(got['progress'])} updates, {len(got['tensor_sums'])} tensors)")  # type: ignore[arg-type]
            continue
        for key in ("steps", "progress", "tensor_sums"):
            if want[key] != json.loads(json.dumps(got[key])):
                print(f"{name}: {key} differs")
    if args.command == "compare":
        print("every number the same" if not differences else f"{differences} preset(s) differ")
        raise SystemExit(1 if differences else 0)


if __name__ == "__main__":
    main()
